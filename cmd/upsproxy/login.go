package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/login"
	"github.com/upsproxy/upsproxy/internal/tokens"
	"github.com/upsproxy/upsproxy/internal/ups"
)

type loginFlags struct {
	carrier, env    string
	manual          bool
	pastedURL, code string
	noBrowser       bool
	timeout         time.Duration
}

func (c *cli) loginCmd() *cobra.Command {
	var f loginFlags
	cmd := &cobra.Command{
		Use:   "login --carrier NAME [--env test|production]",
		Short: "Authorization-code login for a carrier; stores the tokens in Vault",
		Long: `Runs UPS's authorization-code flow for a carrier and stores the tokens in Vault.

By default it opens your browser at UPS's login page. When the carrier's
redirect_uri points at this machine (http or https on 127.0.0.1, ::1 or
localhost, any port), upsproxy listens there for UPS's redirect and finishes
the login by itself; for https it uses a throwaway self-signed certificate
your browser will warn about. Any other redirect_uri: paste the address the
browser lands on.

  --no-browser print the authorization URL (on stdout) instead of opening a browser
  --manual     print the authorization URL, then read the redirect URL you paste
  --url URL    exchange the code of an already pasted redirect URL
  --code CODE  exchange a bare authorization code
  --timeout D  how long to wait for the redirect or the paste (default 5m)

Ports below 1024 (the usual https://127.0.0.1/upscallback means port 443)
need root: use --manual otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.login(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.carrier, "carrier", "", "carrier name from the config")
	fl.StringVar(&f.env, "env", "", "test or production (default: the carrier's environment)")
	fl.BoolVar(&f.manual, "manual", false, "print the authorization URL and read the pasted redirect URL from stdin")
	fl.StringVar(&f.pastedURL, "url", "", "redirect URL (with ?code=...) to exchange")
	fl.StringVar(&f.code, "code", "", "authorization code to exchange")
	fl.BoolVar(&f.noBrowser, "no-browser", false, "print the authorization URL instead of opening a browser")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Minute, "how long to wait for the browser's redirect or the pasted URL")
	cmd.MarkFlagsMutuallyExclusive("manual", "url", "code")
	return cmd
}

func (c *cli) login(ctx context.Context, f loginFlags) error {
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	car, env, err := carrierEnv(cfg, f.carrier, f.env)
	if err != nil {
		return err
	}
	if car.Grant == ups.GrantClientCredentials {
		return fmt.Errorf("carrier %q uses client_credentials: the proxy mints its tokens itself, no login needed", car.Name)
	}
	if f.timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, not %s", f.timeout)
	}
	log, _, err := newLogger(cfg.Log, c.errOut)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	store, err := c.tokenStore(cfg, log)
	if err != nil {
		return err
	}
	oc, err := standaloneOAuth(ctx, cfg, car, env, store)
	if err != nil {
		return err
	}

	// Ctrl-C while waiting for the browser ends the login cleanly: the
	// listener is closed and nothing is stored.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	svc, err := login.New(login.Options{Store: store})
	if err != nil {
		return err
	}
	target := login.Target{Carrier: car.Name, Environment: env, Grant: car.Grant}
	// Make sure Vault takes our writes before spending a single-use code.
	if err := svc.CheckStore(ctx, target); err != nil {
		return err
	}

	var code, verifier string
	var catcher *redirectCatcher
	waitCtx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	switch {
	case f.pastedURL != "" || f.code != "":
		if oc.UsesPKCE() {
			return fmt.Errorf("carrier %q uses PKCE (no client_secret): the code verifier lives only in the process that printed the authorization URL; use --manual", car.Name)
		}
		pasted := f.pastedURL
		if pasted == "" {
			pasted = f.code
		}
		if code, err = ups.ParseRedirect(pasted, ""); err != nil {
			return err
		}
	case f.manual:
		if code, verifier, err = c.pastedCode(waitCtx, oc, false); err != nil {
			return waitError(ctx, err, f.timeout)
		}
	default:
		target, ok := parseLoopback(car.RedirectURI)
		if !ok {
			fmt.Fprintf(c.errOut, "The redirect URI %s is not on this machine, so upsproxy cannot catch the redirect itself.\n", car.RedirectURI)
			if code, verifier, err = c.pastedCode(waitCtx, oc, !f.noBrowser); err != nil {
				return waitError(ctx, err, f.timeout)
			}
			break
		}
		catcher, code, verifier, err = c.caughtCode(waitCtx, oc, target, !f.noBrowser, f.timeout, log.Named("login-listener"))
		if catcher != nil {
			defer catcher.close()
		}
		if err != nil {
			return waitError(ctx, err, f.timeout)
		}
	}

	tok, err := svc.Complete(ctx, oc, target, code, verifier, "login")
	if catcher != nil {
		catcher.finish(err)
		catcher.close()
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "Logged in: carrier %q (%s). Access token expires %s; refresh token expires %s (%d days).\n",
		car.Name, env, tok.ExpiresAt.UTC().Format(time.RFC3339), tok.RefreshExpiresAt.UTC().Format(time.RFC3339),
		tokens.DaysLeft(tok.RefreshExpiresAt, time.Now()))
	return nil
}

// waitError turns the end of a wait for the admin into one clear line.
// ctx is the login's own context: ended means Ctrl-C, otherwise the
// --timeout ran out.
func waitError(ctx context.Context, err error, timeout time.Duration) error {
	if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if ctx.Err() != nil {
		return errors.New("login cancelled: nothing was stored")
	}
	return fmt.Errorf("no redirect came back within %s (--timeout): nothing was stored; run the login again", timeout)
}

// showAuthorizeURL opens the browser at the authorization URL, or prints
// the URL on stdout on a line of its own when that is not wanted or fails.
func (c *cli) showAuthorizeURL(authURL string, browser bool, instructions string) {
	if browser {
		err := openBrowser(authURL, c.getenv)
		if err == nil {
			fmt.Fprintf(c.errOut, "Opened your browser at UPS's login page. %s\nIf no browser appeared, open this URL:\n%s\n", instructions, authURL)
			return
		}
		fmt.Fprintf(c.errOut, "Could not open a browser: %v.\n", err)
	}
	fmt.Fprintf(c.errOut, "Open this URL in a browser and log in to UPS. %s\n", instructions)
	fmt.Fprintln(c.out, authURL)
}

// caughtCode runs the loopback flow: listen on the redirect URI, show the
// authorization URL, wait for the browser to come back. The returned
// catcher (non-nil once listening) must be told the outcome and closed.
func (c *cli) caughtCode(ctx context.Context, oc *ups.Client, target loopbackTarget, browser bool, timeout time.Duration, log *zap.Logger) (*redirectCatcher, string, string, error) {
	a, err := login.Authorize(oc, nil)
	if err != nil {
		return nil, "", "", err
	}
	catcher, err := startCatcher(target, a.State, time.Now, log)
	if err != nil {
		return nil, "", "", err
	}
	if target.scheme == "https" {
		fmt.Fprintf(c.errOut, "Your browser will warn about a self-signed certificate for %s: that is this login listener; continue.\n", target.host)
	}
	c.showAuthorizeURL(a.URL, browser, fmt.Sprintf("upsproxy waits up to %s for the redirect to %s.", timeout, target.uri))
	code, err := catcher.wait(ctx)
	if err != nil {
		return catcher, "", "", err
	}
	return catcher, code, a.Verifier, nil
}

// pastedCode shows the authorization URL and reads the pasted redirect URL
// from stdin.
func (c *cli) pastedCode(ctx context.Context, oc *ups.Client, browser bool) (code, verifier string, err error) {
	a, err := login.Authorize(oc, nil)
	if err != nil {
		return "", "", err
	}
	c.showAuthorizeURL(a.URL, browser, "Then paste the address you were redirected to.")
	fmt.Fprint(c.errOut, "Redirect URL: ")
	line, err := readLine(ctx, c.stdin)
	if err != nil {
		return "", "", err
	}
	code, err = ups.ParseRedirect(line, a.State)
	return code, a.Verifier, err
}

// readLine reads one line from r, giving up when ctx ends. A read blocked
// on a terminal cannot be interrupted, so it is left behind: the process
// is about to exit.
func readLine(ctx context.Context, r io.Reader) (string, error) {
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := bufio.NewReaderSize(r, 16<<10).ReadString('\n')
		ch <- result{line, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil && !(errors.Is(res.err, io.EOF) && res.line != "") {
			return "", fmt.Errorf("reading the redirect URL from stdin: %w", res.err)
		}
		return res.line, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}
