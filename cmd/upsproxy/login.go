package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/upsproxy/upsproxy/internal/config"
	"github.com/upsproxy/upsproxy/internal/tokens"
	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

type loginFlags struct {
	carrier, env    string
	manual          bool
	pastedURL, code string
	noBrowser       bool
}

func (c *cli) loginCmd() *cobra.Command {
	var f loginFlags
	cmd := &cobra.Command{
		Use:   "login --carrier NAME [--env test|production]",
		Short: "Authorization-code login for a carrier; stores the tokens in Vault",
		Long: `Runs UPS's authorization-code flow for a carrier and stores the tokens in Vault.

  --manual     print the authorization URL, then read the redirect URL you paste
  --url URL    exchange the code of an already pasted redirect URL
  --code CODE  exchange a bare authorization code`,
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
	if car.Grant == config.GrantClientCredentials {
		return fmt.Errorf("carrier %q uses client_credentials: the proxy mints its tokens itself, no login needed", car.Name)
	}
	log, _, err := newLogger(cfg.Log, c.errOut)
	if err != nil {
		return err
	}
	store, err := c.tokenStore(cfg, log)
	if err != nil {
		return err
	}
	tr, err := upstreamTransport(cfg)
	if err != nil {
		return err
	}
	oc, err := oauthClient(cfg, car, env, &http.Client{Transport: tr, Timeout: 60 * time.Second})
	if err != nil {
		return err
	}

	// Make sure Vault takes our writes before spending a single-use code.
	if _, err := store.Get(ctx, car.Name, env); err != nil && !errors.Is(err, vaultstore.ErrNotFound) {
		return fmt.Errorf("checking Vault before the login: %w", err)
	}

	var code, verifier string
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
	case f.manual || f.noBrowser:
		if code, verifier, err = c.manualCode(oc); err != nil {
			return err
		}
	default:
		return errors.New("choose how to pass the code: --manual (paste the redirect URL), --url URL or --code CODE")
	}

	tok, err := oc.Exchange(ctx, code, verifier)
	if err != nil {
		return fmt.Errorf("exchanging the authorization code with UPS (%s): %w", env, err)
	}
	if err := saveLogin(ctx, store, car, env, tok); err != nil {
		return err
	}
	now := time.Now()
	fmt.Fprintf(c.out, "Logged in: carrier %q (%s). Access token expires %s; refresh token expires %s (%d days).\n",
		car.Name, env, tok.ExpiresAt.UTC().Format(time.RFC3339), tok.RefreshExpiresAt.UTC().Format(time.RFC3339),
		tokens.DaysLeft(tok.RefreshExpiresAt, now))
	_ = log.Sync()
	return nil
}

// manualCode prints the authorization URL on a line of its own and reads
// the pasted redirect URL from stdin.
func (c *cli) manualCode(oc *ups.Client) (code, verifier string, err error) {
	state, err := ups.NewState()
	if err != nil {
		return "", "", err
	}
	challenge := ""
	if oc.UsesPKCE() {
		if verifier, challenge, err = ups.NewPKCE(); err != nil {
			return "", "", err
		}
	}
	fmt.Fprintln(c.errOut, "Open this URL in a browser, log in to UPS, then paste the address you were redirected to:")
	fmt.Fprintln(c.out, oc.AuthorizeURL(state, challenge))
	fmt.Fprint(c.errOut, "Redirect URL: ")
	line, err := bufio.NewReaderSize(c.stdin, 16<<10).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", "", fmt.Errorf("reading the redirect URL from stdin: %w", err)
	}
	code, err = ups.ParseRedirect(line, state)
	return code, verifier, err
}

// saveLogin stores a freshly minted pair, replacing whatever was stored
// (check-and-set against the version just read, so a concurrent refresh by
// a proxy is not silently overwritten).
func saveLogin(ctx context.Context, store *vaultstore.Store, car *config.Carrier, env ups.Environment, tok ups.Token) error {
	rec := vaultstore.Record{Carrier: car.Name, Environment: env, Grant: car.Grant, Token: tok, UpdatedAt: time.Now(), UpdatedBy: "login"}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 500 * time.Millisecond)
		}
		old, err := store.Get(ctx, car.Name, env)
		switch {
		case errors.Is(err, vaultstore.ErrNotFound):
			rec.Version = 0
		case err != nil:
			lastErr = err
			continue
		default:
			rec.Version = old.Version
		}
		if _, err = store.Put(ctx, rec); err == nil {
			return nil
		}
		lastErr = err
	}
	return fmt.Errorf("storing the new tokens in Vault failed (the authorization code is spent; run the login again once Vault is back): %w", lastErr)
}
