package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// chromiumPath finds headless Chromium: $UPSPROXY_CHROMIUM, else the
// Debian package's binary (`apt-get install chromium`, which .ci/run does).
func chromiumPath() (string, error) {
	if p := os.Getenv("UPSPROXY_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no chromium found: install it (Debian: apt-get install -y chromium) or set UPSPROXY_CHROMIUM")
}

// TestConsoleInARealBrowser drives headless Chromium against a real
// `upsproxy serve`, the dev Vault and the simulator, as a shipping manager
// would: sign in, see the expiring carrier stand out, log in to UPS through
// the console's callback, finish a second carrier's login by pasting the
// redirect URL, and refresh a third. It never skips: without Chromium it
// fails. UPSPROXY_UPDATE_SCREENSHOTS=1 writes the README's screenshots to
// docs/.
func TestConsoleInARealBrowser(t *testing.T) {
	started := time.Now()
	chromium, err := chromiumPath()
	if err != nil {
		t.Fatal(err)
	}
	const consolePassword = "browser-test console password"
	rememberSecret(consolePassword)
	hash, err := bcrypt.GenerateFromPassword([]byte(consolePassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}

	// Where the paste carrier's redirect lands: a page on another host,
	// as when UPS sends the browser to a redirect URI the console does not own.
	landing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!DOCTYPE html><title>Redirect</title><p id="landed">Copy this address into the console.</p>`)
	}))
	t.Cleanup(landing.Close)

	// The console's public_url (and so the carriers' redirect_uri) must be
	// known before serve starts.
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	public := "http://" + addr
	callback := public + "/callback"
	e := newEnv(t, envOptions{
		extra: fmt.Sprintf(`
reminders {
  warn_before = "168h"
}
console {
  listen     = %q
  public_url = %q
  user "Maria Shipping" {
    password_hash = %q
  }
}
`, addr, public, hash),
		carriers: fmt.Sprintf(`
carrier "alpha" {
  environment   = "test"
  default       = true
  client_id     = "test-client-id"
  client_secret = file("ups-secret")
  redirect_uri  = %q
}
carrier "beta" {
  environment  = "test"
  client_id    = "pkce-client"
  redirect_uri = %q
}
carrier "gamma" {
  environment   = "test"
  client_id     = "test-client-id"
  client_secret = file("ups-secret")
  redirect_uri  = %q
}
carrier "delta" {
  environment   = "test"
  grant         = "client_credentials"
  client_id     = "test-client-id"
  client_secret = file("ups-secret")
}
`, callback, landing.URL+"/landed", callback),
	})
	// alpha's refresh token expires in 3 days (and half an hour, so the
	// page says 3 whatever the test's pace); gamma is fine; beta was never
	// logged in.
	for _, c := range []string{"alpha", "gamma"} {
		if r := e.run("", "login", "--carrier", c, "--code", e.sim.IssueCode(e.clientID, callback, "")); r.code != 0 {
			t.Fatalf("login %s: %s", c, r.stderr)
		}
		e.rememberStoredTokens(c, ups.Test)
	}
	e.editRecord("alpha", ups.Test, func(r *vaultstore.Record) { r.Token.RefreshExpiresAt = time.Now().Add(3*24*time.Hour + 30*time.Minute) })
	e.editRecord("gamma", ups.Test, func(r *vaultstore.Record) { r.Token.RefreshExpiresAt = time.Now().Add(45 * 24 * time.Hour) })
	srv := e.serve()
	srv.waitLog(t, "info", "console listening")

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // CI runs as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1440, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v\nserve log:\n%s", what, err, srv.logs.String())
		}
	}
	get := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return strings.TrimSpace(v)
	}
	text := func(sel string) string {
		t.Helper()
		return get("read "+sel, chromedp.Text(chromedp.CSS(sel)))
	}
	class := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), "class"))
		if err != nil {
			t.Fatalf("class of %s: %v", sel, err)
		}
		return v.Value
	}
	shotDir := t.TempDir()
	if os.Getenv("UPSPROXY_UPDATE_SCREENSHOTS") == "1" {
		shotDir = filepath.Join("..", "..", "docs")
	}
	screenshot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shotDir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Sign in.
	run("sign in",
		chromedp.Navigate(public+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#signin`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=user]`), "Maria Shipping"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), consolePassword),
		chromedp.Click(chromedp.CSS(`#signin`)),
		chromedp.WaitVisible(chromedp.CSS(`table.tokens`)),
	)
	// The carrier whose refresh token expires in 3 days stands out.
	if c := class("#row-alpha-test"); c != "level-warn" {
		t.Errorf("alpha's row has class %q, want level-warn", c)
	}
	if d := text("#row-alpha-test .days"); d != "3" {
		t.Errorf("alpha has %q days left, want 3", d)
	}
	if c := class("#row-beta-test"); c != "level-bad" {
		t.Errorf("beta (never logged in) has class %q, want level-bad", c)
	}
	screenshot("console-overview.png")

	// Log in to UPS: the simulator approves and redirects to the callback.
	run("log in alpha",
		chromedp.Navigate(public+"/carriers/alpha/test"),
		chromedp.Click(chromedp.CSS(`#login`)),
		chromedp.WaitVisible(chromedp.CSS(`#back`)),
	)
	if n := text(".notice"); !strings.Contains(n, "Logged in to UPS: carrier alpha") {
		t.Fatalf("after the callback: %q", n)
	}
	rec, err := e.store.Get(context.Background(), "alpha", ups.Test)
	if err != nil || rec.UpdatedBy != "console:Maria Shipping" {
		t.Fatalf("alpha's record after the console login: %v %v", rec, err)
	}
	e.rememberStoredTokens("alpha", ups.Test)
	run("overview", chromedp.Navigate(public+"/"), chromedp.WaitVisible(chromedp.CSS(`table.tokens`)))
	want := rec.Token.RefreshExpiresAt.UTC().Format("2006-01-02 15:04 UTC")
	if got := text("#row-alpha-test .refresh-expires"); got != want {
		t.Errorf("overview shows alpha's refresh expiry %q, want the new %q", got, want)
	}
	if c := class("#row-alpha-test"); c != "level-ok" {
		t.Errorf("alpha's row after the login has class %q", c)
	}

	// beta's redirect does not come back: paste the address instead.
	run("log in beta",
		chromedp.Navigate(public+"/carriers/beta/test"),
		chromedp.Click(chromedp.CSS(`#login`)),
		chromedp.WaitVisible(chromedp.CSS(`#landed`)),
	)
	landed := get("location", chromedp.Location())
	lu, err := url.Parse(landed)
	if err != nil || lu.Query().Get("code") == "" {
		t.Fatalf("beta landed on %q", lu.Redacted())
	}
	rememberSecret(lu.Query().Get("code"))
	rememberSecret(lu.Query().Get("state"))
	run("paste beta",
		chromedp.Navigate(public+"/carriers/beta/test"),
		chromedp.SendKeys(chromedp.CSS(`#redirect_url`), landed),
		chromedp.Click(chromedp.CSS(`#paste`)),
		chromedp.WaitVisible(chromedp.CSS(`#back`)),
	)
	if n := text(".notice"); !strings.Contains(n, "Logged in to UPS: carrier beta") {
		t.Fatalf("after pasting: %q", n)
	}
	e.rememberStoredTokens("beta", ups.Test)

	// Refresh now bumps the refresh count.
	run("gamma", chromedp.Navigate(public+"/carriers/gamma/test"), chromedp.WaitVisible(chromedp.CSS(`#refresh`)))
	if c := text("dd.count"); c != "0" {
		t.Fatalf("gamma's refresh count before: %q", c)
	}
	before := e.sim.Stats().Refreshes
	run("refresh gamma", chromedp.Click(chromedp.CSS(`#refresh`)), chromedp.WaitVisible(chromedp.CSS(`.notice`)))
	if c := text("dd.count"); c != "1" {
		t.Errorf("gamma's refresh count after Refresh now: %q, want 1", c)
	}
	if n := e.sim.Stats().Refreshes - before; n < 1 {
		t.Errorf("UPS saw %d refreshes", n)
	}
	e.rememberStoredTokens("gamma", ups.Test)
	screenshot("console-carrier.png")

	for _, l := range []string{"console: signed in", "console: UPS login completed", "console: tokens refreshed"} {
		if line := srv.findLog("info", l); line == nil || line["user"] != "Maria Shipping" {
			t.Errorf("no log line %q naming the console user", l)
		}
	}
	t.Logf("browser test took %s", time.Since(started).Round(100*time.Millisecond))
}
