package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

func TestLogin_ManualPrintsTheAuthorizationURLAloneOnStdoutAndExchangesThePastedRedirect(t *testing.T) {
	e := newEnv(t, envOptions{})
	// Play the admin: read the URL the command prints, "log in" at the
	// simulator (which approves at once) and paste the redirect back.
	pr, pw := newPipe()
	out, errb := newBuf(), newBuf()
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"login", "--carrier", "main", "--manual", "--config", e.cfgPath}, pr, out, errb)
	}()
	var authURL string
	waitFor(t, func() bool {
		authURL = strings.TrimSpace(out.String())
		return strings.HasSuffix(out.String(), "\n")
	}, "the authorization URL on stdout")
	u, err := url.Parse(authURL)
	if err != nil || !strings.HasSuffix(u.Path, "/security/v1/oauth/authorize") || u.Query().Get("state") == "" {
		t.Fatalf("stdout is not just the authorization URL: %q", out.String())
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	redirect := resp.Header.Get("Location")
	if _, err := pw.Write([]byte(redirect + "\n")); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != 0 {
		t.Fatalf("login exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "Logged in") {
		t.Fatalf("no success line: %q", out.String())
	}
	if _, err := e.store.Get(context.Background(), "main", ups.Test); err != nil {
		t.Fatalf("nothing stored: %v", err)
	}
	e.rememberStoredTokens("main", ups.Test)
}

func TestLogin_BadPastedInputGivesOneClearLineAndStoresNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	cases := []struct {
		name, url, want string
	}{
		{"redirect without a code", "https://127.0.0.1/upscallback?scope=read", "code"},
		{"user denied access", "https://127.0.0.1/upscallback?error=access_denied&error_description=User+denied", "access_denied"},
		{"garbage", "%%%not a url at all\x00", ""},
		{"code UPS does not know", "https://127.0.0.1/upscallback?code=123abc&scope=read", "UPS"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.run("", "login", "--carrier", "main", "--url", c.url)
			if r.code == 0 {
				t.Fatalf("login succeeded on %q", c.url)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "upsproxy: ") || !strings.Contains(last, c.want) {
				t.Fatalf("stderr %q lacks a clear reason containing %q", r.stderr, c.want)
			}
			if _, err := e.store.Get(context.Background(), "main", ups.Test); !errors.Is(err, vaultstore.ErrNotFound) {
				t.Fatalf("something was stored: %v", err)
			}
		})
	}
}

func TestTokenInfo_PrintsTheAccessTokenInformationTableAndNeverTheTokens(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.login("main")
	rec, err := e.store.Get(context.Background(), "main", ups.Test)
	if err != nil {
		t.Fatal(err)
	}
	r := e.run("", "token", "info", "--carrier", "main")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, label := range []string{"Token Type:", "Token Status:", "Token Issued:", "Token Expires:", "Token Scope:",
		"Refresh Token Status:", "Refresh Token Issued:", "Refresh Token Expires:", "Refresh Count:"} {
		if !strings.Contains(r.stdout, label) {
			t.Errorf("table lacks %q:\n%s", label, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "Bearer") || !strings.Contains(r.stdout, "approved") {
		t.Errorf("table lacks values:\n%s", r.stdout)
	}
	j := e.run("", "token", "info", "--carrier", "main", "--json")
	var m map[string]any
	if err := json.Unmarshal([]byte(j.stdout), &m); err != nil || m["token_type"] != "Bearer" {
		t.Fatalf("--json output %q: %v", j.stdout, err)
	}
	for _, out := range []string{r.stdout, r.stderr, j.stdout, j.stderr} {
		if strings.Contains(out, rec.Token.AccessToken) || strings.Contains(out, rec.Token.RefreshToken) {
			t.Fatal("token info printed a token value")
		}
	}
}

func TestConfigValidate_ReportsFileLineAndExitsOneOnErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.hcl")
	writeFile(t, bad, "carrier \"a\" {\n  environment = \"staging\"\n  client_id = \"x\"\n  redirect_uri = \"https://127.0.0.1/cb\"\n}\n")
	out, errb := newBuf(), newBuf()
	code := run(context.Background(), []string{"config", "validate", "--config", bad}, strings.NewReader(""), out, errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(errb.String(), "bad.hcl:2") || !strings.Contains(errb.String(), "staging") {
		t.Fatalf("diagnostic lacks file:line or snippet:\n%s", errb.String())
	}
}

func TestCAInit_WritesAPrivateKeyOnlyTheOwnerCanRead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	out, errb := newBuf(), newBuf()
	if code := run(context.Background(), []string{"ca", "init", "--out", dir}, strings.NewReader(""), out, errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	st, err := os.Stat(filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", st.Mode().Perm())
	}
	if !strings.Contains(out.String(), "ca.pem") {
		t.Fatalf("no trust instructions: %s", out.String())
	}
	// A second init must not overwrite the CA clients already trust.
	if code := run(context.Background(), []string{"ca", "init", "--out", dir}, strings.NewReader(""), newBuf(), newBuf()); code == 0 {
		t.Fatal("ca init overwrote an existing CA")
	}
}

func TestVersion_PrintsVersionCommitAndGo(t *testing.T) {
	out := newBuf()
	if code := run(context.Background(), []string{"version"}, strings.NewReader(""), out, newBuf()); code != 0 {
		t.Fatal(code)
	}
	if !strings.HasPrefix(out.String(), "upsproxy ") || !strings.Contains(out.String(), "commit") || !strings.Contains(out.String(), "go1.") {
		t.Fatalf("version output %q", out.String())
	}
}

func TestSandbox_RejectsBadFlagsWithOneLine(t *testing.T) {
	for _, args := range [][]string{
		{"sandbox", "--client", "nocolon"},
		{"sandbox", "--client", "a:b", "--fault", "ship:503"},
		{"sandbox", "--client", "a:b", "--access-ttl", "0s"},
		{"sandbox"},
	} {
		errb := newBuf()
		if code := run(context.Background(), args, strings.NewReader(""), newBuf(), errb); code != 1 {
			t.Fatalf("%v: exit %d", args, code)
		}
		if n := strings.Count(strings.TrimSpace(errb.String()), "\n"); n != 0 || !strings.HasPrefix(errb.String(), "upsproxy: ") {
			t.Fatalf("%v: stderr %q", args, errb.String())
		}
	}
}

func TestSandbox_ServesUPSAndInjectsTheFaultsItWasGiven(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out, errb := newBuf(), newBuf()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"sandbox", "--listen", "127.0.0.1:0", "--client", "id:sec ret", "--fault", "refresh:html"}, strings.NewReader(""), out, errb)
	}()
	var base string
	waitFor(t, func() bool {
		_, base, _ = strings.Cut(strings.TrimSpace(out.String()), "listening on ")
		return base != ""
	}, "the simulator to listen")
	resp, err := directClient().PostForm(base+"/security/v1/oauth/refresh", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("refresh answered %d %s, want the injected HTML 503", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp, err = directClient().Post(base+"/api/rating/v2409/Rate", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("API without a token answered %d, want 401", resp.StatusCode)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("sandbox exit %d: %s", code, errb.String())
	}
}

// filesConfig names the MITM CA, ups.ca_file, vault's ca_cert and an
// email channel's ca_file, relative to the config's directory.
const filesConfig = `
vault {
  address = "https://127.0.0.1:8200"
  ca_cert = "vault-ca.pem"
}
ups {
  ca_file = "ups-ca.pem"
}
mitm {
  ca_cert = "ca/ca.pem"
  ca_key  = "ca/ca-key.pem"
}
carrier "main" {
  environment   = "test"
  client_id     = "id"
  client_secret = "s"
  redirect_uri  = "https://127.0.0.1/upscallback"
}
notify "mail" {
  email {
    host    = "127.0.0.1"
    port    = 2525
    tls     = "starttls"
    ca_file = "smtp-ca.pem"
    from    = "upsproxy <upsproxy@example.com>"
    to      = ["shipping@example.com"]
  }
}
`

func TestConfigValidate_LoadsTheCertificateFilesServeWouldLoad(t *testing.T) {
	dir := t.TempDir()
	if code := run(context.Background(), []string{"ca", "init", "--out", filepath.Join(dir, "ca")}, strings.NewReader(""), newBuf(), newBuf()); code != 0 {
		t.Fatal("ca init failed")
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "upsproxy.hcl")
	writeFile(t, cfg, filesConfig)
	for _, n := range []string{"vault-ca.pem", "ups-ca.pem", "smtp-ca.pem"} {
		writeFile(t, filepath.Join(dir, n), string(caPEM))
	}
	validate := func() (int, string) {
		errb := newBuf()
		code := run(context.Background(), []string{"config", "validate", "--config", cfg}, strings.NewReader(""), newBuf(), errb)
		return code, errb.String()
	}
	if code, errs := validate(); code != 0 {
		t.Fatalf("valid files: exit %d:\n%s", code, errs)
	}

	// Each file broken in its own way: serve would stop at the first.
	writeFile(t, filepath.Join(dir, "ups-ca.pem"), "not a certificate")
	writeFile(t, filepath.Join(dir, "vault-ca.pem"), "-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----\n")
	if err := os.Remove(filepath.Join(dir, "smtp-ca.pem")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "ca", "ca-key.pem"), string(caPEM)) // a certificate where the key belongs
	code, errs := validate()
	if code != 1 {
		t.Fatalf("broken files: exit %d, want 1:\n%s", code, errs)
	}
	for _, want := range []string{"mitm:", "ca-key.pem", "ups:", "ups-ca.pem", "vault-ca.pem", `notify "mail": ca_file`, "smtp-ca.pem", "4 file(s) that serve could not load"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
}
