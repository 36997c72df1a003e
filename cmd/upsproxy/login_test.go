package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// freePort returns a loopback port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// portFree reports whether the port can be bound again.
func portFree(port int) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// carrierHCL is a test carrier block; secret false makes it a PKCE client.
func carrierHCL(name, clientID string, secret bool, redirect string) string {
	s := ""
	if secret {
		s = `client_secret = file("ups-secret")`
	}
	return fmt.Sprintf(`
carrier %q {
  environment  = "test"
  client_id    = %q
  %s
  redirect_uri = %q
}
`, name, clientID, s, redirect)
}

// loginRun is an `upsproxy login` running in the background.
type loginRun struct {
	out, errb *syncBuffer
	done      chan int
	cancel    context.CancelFunc
}

func startLogin(t *testing.T, e *env, stdin io.Reader, args ...string) *loginRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &loginRun{out: newBuf(), errb: newBuf(), done: make(chan int, 1), cancel: cancel}
	go func() {
		l.done <- run(ctx, append(append([]string{"login"}, args...), "--config", e.cfgPath), stdin, l.out, l.errb)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-l.done:
		case <-time.After(10 * time.Second):
			t.Error("login did not end after its context was cancelled")
		}
	})
	return l
}

// authURL waits for the authorization URL on the login's stdout.
func (l *loginRun) authURL(t *testing.T) string {
	t.Helper()
	var line string
	waitFor(t, func() bool {
		s := l.out.String()
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			return false
		}
		line = s[:i]
		return true
	}, "the authorization URL on stdout")
	u, err := url.Parse(line)
	if err != nil || !strings.HasSuffix(u.Path, ups.AuthorizePath) {
		t.Fatalf("the first stdout line is not the authorization URL: %q", line)
	}
	return line
}

// exit waits for the login to end and returns its exit code.
func (l *loginRun) exit(t *testing.T) int {
	t.Helper()
	select {
	case code := <-l.done:
		l.done <- code // for the cleanup
		return code
	case <-time.After(20 * time.Second):
		t.Fatalf("login did not end; stderr:\n%s", l.errb.String())
		return -1
	}
}

// browser plays the admin's browser: it follows nothing by itself and
// accepts the login listener's self-signed certificate.
func browser() *http.Client {
	return &http.Client{
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
}

// loginAtUPS "logs in" at the simulator, which approves at once, and
// returns where UPS sends the browser back to.
func loginAtUPS(t *testing.T, authURL string) *url.URL {
	t.Helper()
	resp, err := browser().Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize answered %d, want a 302 back to the redirect URI", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

type page struct {
	status int
	body   string
	tls    *tls.ConnectionState
}

func visit(t *testing.T, target string) page {
	t.Helper()
	resp, err := browser().Get(target)
	if err != nil {
		t.Fatalf("the browser could not reach the login listener: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, body: string(b), tls: resp.TLS}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func assertNothingStored(t *testing.T, e *env, carrier string) {
	t.Helper()
	if _, err := e.store.Get(context.Background(), carrier, ups.Test); !errors.Is(err, vaultstore.ErrNotFound) {
		t.Fatalf("something was stored for %s (err %v)", carrier, err)
	}
}

func TestLogin_LoopbackHTTPSRedirectIsCaughtOnASelfSignedListenerAndTheTokensLandInVault(t *testing.T) {
	port := freePort(t)
	redirect := fmt.Sprintf("https://127.0.0.1:%d/upscallback", port)
	e := newEnv(t, envOptions{carriers: carrierHCL("main", "test-client-id", true, redirect)})

	l := startLogin(t, e, strings.NewReader(""), "--carrier", "main", "--no-browser")
	authURL := l.authURL(t)
	back := loginAtUPS(t, authURL)
	if back.Host != fmt.Sprintf("127.0.0.1:%d", port) || back.Path != "/upscallback" {
		t.Fatalf("UPS sent the browser to %s, not to the redirect URI", back.Redacted())
	}
	p := visit(t, back.String())
	if p.status != http.StatusOK || !strings.Contains(p.body, "Login complete, you can close this tab") {
		t.Fatalf("the browser got %d: %s", p.status, p.body)
	}
	cert := p.tls.PeerCertificates[0]
	if cert.PublicKeyAlgorithm != x509.ECDSA || len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("the listener's certificate is not an ECDSA certificate for 127.0.0.1: %v %v", cert.PublicKeyAlgorithm, cert.IPAddresses)
	}
	if code := l.exit(t); code != 0 {
		t.Fatalf("login exit %d: %s", code, l.errb.String())
	}
	rec, err := e.store.Get(context.Background(), "main", ups.Test)
	if err != nil {
		t.Fatalf("nothing stored: %v", err)
	}
	e.rememberStoredTokens("main", ups.Test)
	if rec.UpdatedBy != "login" || rec.Token.RefreshToken == "" {
		t.Errorf("stored record %v", rec)
	}
	if !strings.Contains(l.errb.String(), "Your browser will warn about a self-signed certificate for 127.0.0.1: that is this login listener; continue.") {
		t.Errorf("no self-signed certificate notice on stderr:\n%s", l.errb.String())
	}
	if !strings.Contains(l.out.String(), "Logged in") || !strings.Contains(l.out.String(), "refresh token expires") {
		t.Errorf("no success line with the refresh token's expiry: %q", l.out.String())
	}
	waitFor(t, func() bool { return portFree(port) }, "the login listener to release its port")
}

func TestLogin_PKCEClientLogsInThroughAnHTTPLocalhostListenerWithItsCodeVerifier(t *testing.T) {
	port := freePort(t)
	redirect := fmt.Sprintf("http://localhost:%d/cb", port)
	e := newEnv(t, envOptions{carriers: carrierHCL("public", "pkce-client", false, redirect)})

	l := startLogin(t, e, strings.NewReader(""), "--carrier", "public", "--no-browser")
	authURL := l.authURL(t)
	if u, _ := url.Parse(authURL); u.Query().Get("code_challenge") == "" {
		t.Fatalf("a PKCE client's authorization URL has no code_challenge: %s", authURL)
	}
	back := loginAtUPS(t, authURL)
	back.Host = fmt.Sprintf("127.0.0.1:%d", port) // what localhost resolves to here
	if p := visit(t, back.String()); p.status != http.StatusOK {
		t.Fatalf("the browser got %d: %s", p.status, p.body)
	}
	if code := l.exit(t); code != 0 {
		t.Fatalf("login exit %d: %s", code, l.errb.String())
	}
	if _, err := e.store.Get(context.Background(), "public", ups.Test); err != nil {
		t.Fatalf("nothing stored: %v", err)
	}
	e.rememberStoredTokens("public", ups.Test)
	if e.sim.Stats().AuthorizationCodeGrants != 1 {
		t.Errorf("UPS granted %d codes, want 1", e.sim.Stats().AuthorizationCodeGrants)
	}
}

func TestLogin_LoopbackRedirectsThatDoNotCompleteTheLoginStoreNothingAndFailWithOneLine(t *testing.T) {
	cases := []struct {
		name string
		// tamper turns UPS's redirect into what reaches the listener.
		tamper     func(q url.Values)
		wantStatus int
		wantPage   string
		wantLine   string
	}{
		{
			name:       "state does not match this login",
			tamper:     func(q url.Values) { q.Set("state", "forged-state-value") },
			wantStatus: http.StatusBadRequest,
			wantPage:   "does not match",
			wantLine:   "state",
		},
		{
			name:       "state missing",
			tamper:     func(q url.Values) { q.Del("state") },
			wantStatus: http.StatusBadRequest,
			wantPage:   "does not match",
			wantLine:   "state",
		},
		{
			name: "admin denied access at UPS",
			tamper: func(q url.Values) {
				q.Del("code")
				q.Set("error", "access_denied")
				q.Set("error_description", "User denied <script>")
			},
			wantStatus: http.StatusBadRequest,
			wantPage:   "User denied &lt;script&gt;",
			wantLine:   "access_denied",
		},
		{
			name:       "code UPS does not know",
			tamper:     func(q url.Values) { q.Set("code", "not-a-code-ups-issued") },
			wantStatus: http.StatusBadGateway,
			wantPage:   "Login failed",
			wantLine:   "exchanging the authorization code",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			port := freePort(t)
			e := newEnv(t, envOptions{carriers: carrierHCL("main", "test-client-id", true, fmt.Sprintf("https://127.0.0.1:%d/upscallback", port))})
			l := startLogin(t, e, strings.NewReader(""), "--carrier", "main", "--no-browser")
			back := loginAtUPS(t, l.authURL(t))
			q := back.Query()
			c.tamper(q)
			back.RawQuery = q.Encode()
			p := visit(t, back.String())
			if p.status != c.wantStatus || !strings.Contains(p.body, c.wantPage) {
				t.Errorf("the browser got %d %q, want %d with %q", p.status, p.body, c.wantStatus, c.wantPage)
			}
			if code := l.exit(t); code == 0 {
				t.Fatal("login succeeded")
			}
			if last := lastLine(l.errb.String()); !strings.HasPrefix(last, "upsproxy: ") || !strings.Contains(last, c.wantLine) {
				t.Errorf("last stderr line %q does not say %q", last, c.wantLine)
			}
			assertNothingStored(t, e, "main")
			waitFor(t, func() bool { return portFree(port) }, "the port to be free")
		})
	}
}

func TestLogin_LoopbackListenerAnswersStrayRequestsWithoutEndingTheLogin(t *testing.T) {
	port := freePort(t)
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	e := newEnv(t, envOptions{carriers: carrierHCL("main", "test-client-id", true, base+"/upscallback")})
	l := startLogin(t, e, strings.NewReader(""), "--carrier", "main", "--no-browser")
	authURL := l.authURL(t)
	for target, want := range map[string]int{
		base + "/favicon.ico":       http.StatusNotFound,
		base + "/upscallback":       http.StatusBadRequest,
		base + "/upscallback?x=1":   http.StatusBadRequest,
		base + "/other?code=abc123": http.StatusNotFound,
	} {
		if p := visit(t, target); p.status != want {
			t.Errorf("GET %s: %d, want %d", target, p.status, want)
		}
	}
	back := loginAtUPS(t, authURL)
	if p := visit(t, back.String()); p.status != http.StatusOK {
		t.Fatalf("the real redirect got %d: %s", p.status, p.body)
	}
	if code := l.exit(t); code != 0 {
		t.Fatalf("login exit %d: %s", code, l.errb.String())
	}
	e.rememberStoredTokens("main", ups.Test)
}

func TestLogin_NoRedirectWithinTheTimeoutOrCtrlCClosesTheListenerAndStoresNothing(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		cancel   bool
		wantLine string
	}{
		{"timeout", []string{"--timeout", "300ms"}, false, "no redirect came back within 300ms"},
		{"ctrl-c", nil, true, "login cancelled: nothing was stored"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			port := freePort(t)
			e := newEnv(t, envOptions{carriers: carrierHCL("main", "test-client-id", true, fmt.Sprintf("https://127.0.0.1:%d/upscallback", port))})
			l := startLogin(t, e, strings.NewReader(""), append([]string{"--carrier", "main", "--no-browser"}, c.args...)...)
			l.authURL(t)
			if portFree(port) {
				t.Fatal("nothing listens on the redirect URI's port while the login waits")
			}
			if c.cancel {
				l.cancel()
			}
			if code := l.exit(t); code == 0 {
				t.Fatal("login succeeded")
			}
			if last := lastLine(l.errb.String()); !strings.Contains(last, c.wantLine) {
				t.Errorf("last stderr line %q, want %q", last, c.wantLine)
			}
			if !portFree(port) {
				t.Error("the login listener still holds its port after the login ended")
			}
			assertNothingStored(t, e, "main")
		})
	}
}

func TestLogin_PortThatCannotBeBoundSuggestsManual(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	redirect := fmt.Sprintf("https://%s/upscallback", busy.Addr())
	e := newEnv(t, envOptions{carriers: carrierHCL("main", "test-client-id", true, redirect)})
	r := e.run("", "login", "--carrier", "main", "--no-browser")
	if r.code == 0 {
		t.Fatal("login succeeded without a listener")
	}
	last := lastLine(r.stderr)
	if !strings.Contains(last, busy.Addr().String()) || !strings.Contains(last, "--manual") {
		t.Errorf("stderr %q does not name the address and suggest --manual", last)
	}
	if r.stdout != "" {
		t.Errorf("an authorization URL was printed although nothing can catch the redirect: %q", r.stdout)
	}
	assertNothingStored(t, e, "main")
}

func TestLogin_RedirectURIOnAnotherHostFallsBackToPastingTheRedirect(t *testing.T) {
	e := newEnv(t, envOptions{carriers: carrierHCL("main", "test-client-id", true, "https://shipping.example.com/upscallback")})
	pr, pw := newPipe()
	l := startLogin(t, e, pr, "--carrier", "main", "--no-browser")
	back := loginAtUPS(t, l.authURL(t))
	if back.Host != "shipping.example.com" {
		t.Fatalf("UPS redirected to %s", back.Redacted())
	}
	if _, err := pw.Write([]byte(back.String() + "\n")); err != nil {
		t.Fatal(err)
	}
	if code := l.exit(t); code != 0 {
		t.Fatalf("login exit %d: %s", code, l.errb.String())
	}
	if !strings.Contains(l.errb.String(), "not on this machine") {
		t.Errorf("stderr does not say why the redirect must be pasted:\n%s", l.errb.String())
	}
	if _, err := e.store.Get(context.Background(), "main", ups.Test); err != nil {
		t.Fatalf("nothing stored: %v", err)
	}
	e.rememberStoredTokens("main", ups.Test)
}

func TestParseLoopback_AcceptsOnlyHTTPRedirectURIsOnThisMachine(t *testing.T) {
	cases := []struct {
		uri       string
		ok        bool
		addrs     []string
		path      string
		tlsNeeded bool
	}{
		{"https://127.0.0.1/upscallback", true, []string{"127.0.0.1:443"}, "/upscallback", true},
		{"http://127.0.0.1/cb", true, []string{"127.0.0.1:80"}, "/cb", false},
		{"https://127.0.0.1:8443/a/b?x=1", true, []string{"127.0.0.1:8443"}, "/a/b", true},
		{"http://localhost:8085", true, []string{"127.0.0.1:8085", "[::1]:8085"}, "/", false},
		{"http://LOCALHOST.:8085/cb", true, []string{"127.0.0.1:8085", "[::1]:8085"}, "/cb", false},
		{"https://[::1]:9443/cb", true, []string{"[::1]:9443"}, "/cb", true},
		{"http://127.0.0.2:8080/cb", true, []string{"127.0.0.2:8080"}, "/cb", false},
		{"https://shipping.example.com/upscallback", false, nil, "", false},
		{"https://10.1.2.3/upscallback", false, nil, "", false},
		{"https://0.0.0.0/upscallback", false, nil, "", false},
		{"https://127.0.0.1.nip.io/upscallback", false, nil, "", false},
		{"https://localhost.example.com/cb", false, nil, "", false},
		{"ftp://127.0.0.1/cb", false, nil, "", false},
		{"https://127.0.0.1:0/cb", false, nil, "", false},
		{"127.0.0.1/cb", false, nil, "", false},
		{"", false, nil, "", false},
	}
	for _, c := range cases {
		t.Run(c.uri, func(t *testing.T) {
			got, ok := parseLoopback(c.uri)
			if ok != c.ok {
				t.Fatalf("loopback = %v, want %v", ok, c.ok)
			}
			if !ok {
				return
			}
			if fmt.Sprint(got.listenAddrs()) != fmt.Sprint(c.addrs) || got.path != c.path || (got.scheme == "https") != c.tlsNeeded {
				t.Errorf("listens on %v path %q scheme %s; want %v %q tls=%v", got.listenAddrs(), got.path, got.scheme, c.addrs, c.path, c.tlsNeeded)
			}
		})
	}
}

func TestBrowserCommand_PassesTheWholeAuthorizationURLAsOneArgumentOnEachOS(t *testing.T) {
	const u = "https://wwwcie.ups.com/security/v1/oauth/authorize?client_id=a&redirect_uri=https%3A%2F%2F127.0.0.1%2Fcb&state=s"
	cases := []struct{ goos, name string }{{"linux", "xdg-open"}, {"freebsd", "xdg-open"}, {"darwin", "open"}, {"windows", "rundll32"}}
	for _, c := range cases {
		t.Run(c.goos, func(t *testing.T) {
			name, args := browserCommand(c.goos, u)
			if name != c.name || len(args) == 0 || args[len(args)-1] != u {
				t.Errorf("%s %q", name, args)
			}
		})
	}
}

// FuzzRedirectCatcher feeds the login listener arbitrary callback
// queries: it must never panic, and it must hand a code to the login only
// when every state in the request is this login's.
func FuzzRedirectCatcher(f *testing.F) {
	const state = "the-state-of-this-login"
	for _, s := range []string{
		"code=abc123&state=" + state,
		"code=abc123&state=other",
		"code=abc123",
		"state=" + state + "&state=other&code=x",
		"error=access_denied&error_description=No&state=" + state,
		"code=%ZZ&state=" + state,
		"code=a+b&state=" + state,
		"code=" + strings.Repeat("x", 9000) + "&state=" + state,
		"",
		"x=1",
		";;;&&&==",
	} {
		f.Add(s)
	}
	target, _ := parseLoopback("https://127.0.0.1:1/cb")
	f.Fuzz(func(t *testing.T, rawQuery string) {
		c := &redirectCatcher{target: target, state: state, got: make(chan callback, 1), outcome: make(chan error, 1), done: make(chan struct{})}
		close(c.done) // no exchange runs here: the page must not wait for one
		req := httptest.NewRequest(http.MethodGet, "https://127.0.0.1:1/cb", nil)
		req.URL.RawQuery = rawQuery
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, req)
		select {
		case cb := <-c.got:
			if cb.err != nil {
				if rec.Code != http.StatusBadRequest {
					t.Fatalf("refused redirect answered %d", rec.Code)
				}
				return
			}
			q, _ := url.ParseQuery(rawQuery)
			for _, s := range q["state"] {
				if s != state {
					t.Fatalf("a code was accepted with state %q", s)
				}
			}
			if len(q["state"]) == 0 || cb.code == "" {
				t.Fatalf("a code %q was accepted without this login's state", cb.code)
			}
		default:
			if rec.Code == http.StatusOK {
				t.Fatal("answered 200 without delivering anything to the login")
			}
		}
	})
}

// FuzzParseLoopback: whatever redirect_uri the config holds, the login
// listens only on a loopback address, on a real port, at an absolute path.
func FuzzParseLoopback(f *testing.F) {
	for _, s := range []string{
		"https://127.0.0.1/upscallback", "http://localhost:8085", "https://[::1]:9443/cb", "https://[::1%25lo]:1/cb",
		"https://127.0.0.1.nip.io/cb", "http://0x7f.1/cb", "https://127.1/cb", "https://localhost:99999/cb",
		"https://user@127.0.0.1/cb", "https://127.0.0.1:-1/cb", "//127.0.0.1/cb", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		tg, ok := parseLoopback(uri)
		if !ok {
			return
		}
		if tg.scheme != "http" && tg.scheme != "https" || !strings.HasPrefix(tg.path, "/") {
			t.Fatalf("%q: scheme %q path %q", uri, tg.scheme, tg.path)
		}
		for _, addr := range tg.listenAddrs() {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				t.Fatalf("%q: listen address %q: %v", uri, addr, err)
			}
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				t.Fatalf("%q: would listen on non-loopback %q", uri, host)
			}
			if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
				t.Fatalf("%q: port %q", uri, port)
			}
		}
	})
}

// TestLogin_TheBrowserIsToldWhyTheExchangeFailedEvenWhenTheLoginHasAlreadyClosed:
// the login tells the catcher the exchange's outcome and then closes it;
// a browser request still waiting then sees both at once, and must show
// the outcome (502 with the reason), never the neutral "Login ended" (it
// did in about one run of a few hundred).
func TestLogin_TheBrowserIsToldWhyTheExchangeFailedEvenWhenTheLoginHasAlreadyClosed(t *testing.T) {
	for i := 0; i < 64; i++ {
		c := &redirectCatcher{
			target:  loopbackTarget{path: "/upscallback"},
			state:   "the-state",
			got:     make(chan callback, 1),
			outcome: make(chan error, 1),
			done:    make(chan struct{}),
		}
		c.finish(errors.New("UPS refused the code."))
		close(c.done)
		w := httptest.NewRecorder()
		c.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/upscallback?code=abc&state=the-state", nil))
		if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), "UPS refused the code.") {
			t.Fatalf("run %d: the browser got %d %q, want 502 with the exchange's error", i+1, w.Code, w.Body.String())
		}
	}
}
