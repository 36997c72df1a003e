package console_test

import (
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/bcrypt"

	"github.com/upsproxy/upsproxy/internal/console"
	"github.com/upsproxy/upsproxy/internal/login"
	"github.com/upsproxy/upsproxy/internal/notify"
	"github.com/upsproxy/upsproxy/internal/proxy"
	"github.com/upsproxy/upsproxy/internal/testutil/fakeclock"
	"github.com/upsproxy/upsproxy/internal/testutil/vaultdevtest"
	"github.com/upsproxy/upsproxy/internal/tokens"
	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/upssim"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// These tests drive the console over HTTP against a real Vault and the UPS
// simulator, with two replicas behind a pretend load balancer: the public
// URL names the balancer, and the test sends each request to the replica
// it chooses (cookies are per host, not per port, so one cookie jar serves
// both replicas as a browser's would serve the balancer).

const (
	secretID  = "ConsoleApp"
	secret    = "console-client-s3cret"
	publicID  = "ConsolePublicApp"
	password  = "correct horse battery staple"
	publicURL = "http://upsproxy.lb.test"
	pasteURI  = "https://127.0.0.1/upscallback"
)

type rig struct {
	t        *testing.T
	clock    *fakeclock.Clock
	vault    *vaultdevtest.Server
	store    *vaultstore.Store
	sim      *upssim.Server
	simURL   *url.URL
	hash     string
	logs     *observer.ObservedLogs
	log      *zap.Logger // what the replicas log to
	replicas []*httptest.Server
	secrets  []string
}

func newRig(t *testing.T, replicas int, tune func(*console.Options)) *rig {
	t.Helper()
	r := &rig{t: t, clock: fakeclock.New(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))}
	r.vault = vaultdevtest.Start(t)
	var err error
	r.store, err = vaultstore.New(vaultstore.Options{Client: r.vault.Client(t), Mount: "secret", Prefix: "console-test"})
	if err != nil {
		t.Fatal(err)
	}
	r.sim = upssim.New(upssim.Options{Clients: map[string]string{secretID: secret, publicID: ""}, Clock: r.clock.Now,
		AccessTTL: 4 * time.Hour, RefreshTTL: 60 * 24 * time.Hour})
	simSrv := httptest.NewServer(r.sim)
	t.Cleanup(simSrv.Close)
	r.simURL, _ = url.Parse(simSrv.URL)
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	r.hash = string(h)
	core, logs := observer.New(zapcore.DebugLevel)
	r.logs = logs
	r.log = zap.New(core)
	r.secrets = []string{secret, password, r.hash}
	for i := 0; i < replicas; i++ {
		r.replicas = append(r.replicas, r.replica(r.log, tune))
	}
	t.Cleanup(r.scanLogs)
	return r
}

func (r *rig) oauth(id, sec, redirect string) *ups.Client {
	oc, err := ups.NewClient(ups.Config{BaseURL: r.simURL, ClientID: id, ClientSecret: sec, RedirectURI: redirect,
		HTTPClient: &http.Client{Timeout: 10 * time.Second}, Clock: r.clock.Now})
	if err != nil {
		r.t.Fatal(err)
	}
	return oc
}

// carriers: "main" comes back to the console, "pub" is a PKCE client that
// comes back too, "paste" redirects elsewhere, "machine" is
// client_credentials.
func (r *rig) carriers() []console.Carrier {
	cb := publicURL + "/callback"
	return []console.Carrier{
		{Name: "main", Environment: ups.Test, Grant: ups.GrantAuthorizationCode, RedirectURI: cb, OAuth: r.oauth(secretID, secret, cb)},
		{Name: "pub", Environment: ups.Test, Grant: ups.GrantAuthorizationCode, RedirectURI: cb, OAuth: r.oauth(publicID, "", cb)},
		{Name: "paste", Environment: ups.Test, Grant: ups.GrantAuthorizationCode, RedirectURI: pasteURI, OAuth: r.oauth(secretID, secret, pasteURI)},
		{Name: "machine", Environment: ups.Test, Grant: ups.GrantClientCredentials, OAuth: r.oauth(secretID, secret, "")},
	}
}

// replica is one `upsproxy serve`'s console: its own broker and key read,
// sharing Vault and the simulator.
func (r *rig) replica(log *zap.Logger, tune func(*console.Options)) *httptest.Server {
	t := r.t
	key, err := r.store.SharedKey(context.Background(), "console")
	if err != nil {
		t.Fatal(err)
	}
	cars := r.carriers()
	var bc []tokens.Carrier
	for _, c := range cars {
		bc = append(bc, tokens.Carrier{Name: c.Name, Environment: c.Environment, Grant: c.Grant, OAuth: c.OAuth.(*ups.Client)})
	}
	broker, err := tokens.New(tokens.Options{Store: r.store, Carriers: bc, Logger: log.Named("tokens"), Clock: r.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	svc, err := login.New(login.Options{Store: r.store, Clock: r.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := url.Parse(publicURL)
	opts := console.Options{
		Logger: log.Named("console"), Clock: r.clock.Now, PublicURL: pub, Key: key, Store: r.store,
		Login: svc, Refresher: broker, ErrorCode: proxy.TokenErrorCode,
		Settings: console.Settings{Users: []console.User{{Name: "alice", PasswordHash: r.hash}}, Carriers: cars, WarnBefore: 7 * 24 * time.Hour},
	}
	if tune != nil {
		tune(&opts)
	}
	c, err := console.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return srv
}

// scanLogs fails the test if any secret, token, code or state reached the
// logs.
func (r *rig) scanLogs() {
	for _, e := range r.logs.All() {
		line := e.Message
		for k, v := range e.ContextMap() {
			line += " " + k + "=" + strings.ReplaceAll(strings.ReplaceAll(toString(v), "\n", " "), "\t", " ")
		}
		for _, s := range r.secrets {
			if s != "" && strings.Contains(line, s) {
				r.t.Errorf("a secret reached the log: %q", e.Message)
			}
		}
	}
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case error:
		return x.Error()
	}
	return ""
}

// secretOf remembers a value that must never appear in logs or pages.
func (r *rig) secretOf(vals ...string) { r.secrets = append(r.secrets, vals...) }

// browser is a cookie jar and a client that does not follow redirects.
type browser struct {
	t    *testing.T
	jar  *cookiejar.Jar
	hc   *http.Client
	addr string // remote address the replicas see: always 127.0.0.1
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, jar: jar, hc: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type answer struct {
	status   int
	body     string
	location string
	header   http.Header
}

func (b *browser) do(method, u string, form url.Values) answer {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: string(data), location: resp.Header.Get("Location"), header: resp.Header}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, a answer) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(a.body)
	if m == nil {
		t.Fatalf("no CSRF token in the page (%d): %.300s", a.status, a.body)
	}
	return html.UnescapeString(m[1])
}

func (b *browser) signIn(base, user, pw string) answer {
	b.t.Helper()
	page := b.do("GET", base+"/login", nil)
	return b.do("POST", base+"/login", url.Values{"csrf": {csrfOf(b.t, page)}, "user": {user}, "password": {pw}})
}

// mustSignIn signs in and checks it worked.
func (b *browser) mustSignIn(base string) {
	b.t.Helper()
	if a := b.signIn(base, "alice", password); a.status != http.StatusSeeOther || a.location != "/" {
		b.t.Fatalf("sign-in: %d %q %.300s", a.status, a.location, a.body)
	}
}

// action posts a carrier action with the CSRF token of the carrier page.
func (b *browser) action(base, carrier, what string, extra url.Values) answer {
	b.t.Helper()
	page := b.do("GET", base+"/carriers/"+carrier+"/test", nil)
	form := url.Values{"csrf": {csrfOf(b.t, page)}}
	for k, v := range extra {
		form[k] = v
	}
	return b.do("POST", base+"/carriers/"+carrier+"/test/"+what, form)
}

// authorize follows the console's redirect to the simulator's login page,
// which approves at once and redirects to the carrier's redirect URI.
func (b *browser) authorize(a answer) *url.URL {
	b.t.Helper()
	if a.status != http.StatusSeeOther || a.location == "" {
		b.t.Fatalf("Log in to UPS: want 303 to UPS, got %d %q %.300s", a.status, a.location, a.body)
	}
	sim := b.do("GET", a.location, nil)
	if sim.status != http.StatusFound {
		b.t.Fatalf("simulator authorize: %d %.300s", sim.status, sim.body)
	}
	u, err := url.Parse(sim.location)
	if err != nil {
		b.t.Fatal(err)
	}
	return u
}

// atReplica sends the callback UPS addressed to the balancer to a replica.
func atReplica(srv *httptest.Server, cb *url.URL) string {
	return srv.URL + cb.Path + "?" + cb.RawQuery
}

func (r *rig) record(carrier string) (vaultstore.Record, error) {
	return r.store.Get(context.Background(), carrier, ups.Test)
}

// seed stores a logged-in pair for carrier whose refresh token expires in
// refreshLeft.
func (r *rig) seed(carrier string, refreshLeft time.Duration) vaultstore.Record {
	r.t.Helper()
	oc := r.oauth(secretID, secret, pasteURI)
	tok, err := oc.Exchange(context.Background(), r.sim.IssueCode(secretID, pasteURI, ""), "")
	if err != nil {
		r.t.Fatal(err)
	}
	tok.RefreshExpiresAt = r.clock.Now().Add(refreshLeft)
	svc, _ := login.New(login.Options{Store: r.store, Clock: r.clock.Now})
	if err := svc.Save(context.Background(), login.Target{Carrier: carrier, Environment: ups.Test, Grant: ups.GrantAuthorizationCode}, tok, "login"); err != nil {
		r.t.Fatal(err)
	}
	r.secretOf(tok.AccessToken, tok.RefreshToken)
	rec, _ := r.record(carrier)
	return rec
}

func TestConsole_LoginStartedOnOneReplicaCompletesOnTheOther(t *testing.T) {
	r := newRig(t, 2, nil)
	a, b := r.replicas[0], r.replicas[1]
	for _, carrier := range []string{"main", "pub"} { // client secret, then PKCE
		t.Run(carrier, func(t *testing.T) {
			br := newBrowser(t)
			br.mustSignIn(a.URL)
			before := r.sim.Stats().AuthorizationCodeGrants
			start := br.action(a.URL, carrier, "login", nil)
			authURL, _ := url.Parse(start.location)
			if got := authURL.Query().Get("code_challenge") != ""; got != (carrier == "pub") {
				t.Errorf("code_challenge sent = %v for %s", got, carrier)
			}
			cb := br.authorize(start)
			if cb.String()[:len(publicURL)] != publicURL || cb.Path != "/callback" {
				t.Fatalf("UPS redirected to %s, want the console's callback", cb.Redacted())
			}
			r.secretOf(cb.Query().Get("code"), cb.Query().Get("state"))
			done := br.do("GET", atReplica(b, cb), nil)
			if done.status != http.StatusOK || !strings.Contains(done.body, "Logged in to UPS: carrier "+carrier) {
				t.Fatalf("callback on the other replica: %d %.500s", done.status, done.body)
			}
			if n := r.sim.Stats().AuthorizationCodeGrants - before; n != 1 {
				t.Fatalf("%d code exchanges at UPS, want 1", n)
			}
			rec, err := r.record(carrier)
			if err != nil || rec.UpdatedBy != "console:alice" || rec.Token.RefreshToken == "" {
				t.Fatalf("stored record = %v, %v; want a pair written by console:alice", rec, err)
			}
			r.secretOf(rec.Token.AccessToken, rec.Token.RefreshToken)
			// Both replicas now show the new expiry.
			for _, srv := range []*httptest.Server{a, b} {
				ov := br.do("GET", srv.URL+"/", nil)
				if !strings.Contains(ov.body, rec.Token.RefreshExpiresAt.UTC().Format("2006-01-02 15:04 UTC")) {
					t.Errorf("overview of %s does not show the new refresh expiry", srv.URL)
				}
			}
		})
	}
}

func TestConsole_PastedRedirectURLCompletesTheLogin(t *testing.T) {
	r := newRig(t, 2, nil)
	br := newBrowser(t)
	br.mustSignIn(r.replicas[0].URL)
	landed := br.authorize(br.action(r.replicas[0].URL, "paste", "login", nil))
	if !strings.HasPrefix(landed.String(), pasteURI+"?") {
		t.Fatalf("landed on %s, want the carrier's own redirect URI", landed.Redacted())
	}
	r.secretOf(landed.Query().Get("code"), landed.Query().Get("state"))
	// A typo costs nothing: the login stays pending.
	bad := br.action(r.replicas[1].URL, "paste", "paste", url.Values{"redirect_url": {pasteURI + "?state=x"}})
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.body, "Nothing was stored") {
		t.Fatalf("garbage paste: %d %.300s", bad.status, bad.body)
	}
	done := br.action(r.replicas[1].URL, "paste", "paste", url.Values{"redirect_url": {"  " + landed.String() + "\n"}})
	if done.status != http.StatusOK || !strings.Contains(done.body, "Logged in to UPS: carrier paste") {
		t.Fatalf("paste: %d %.500s", done.status, done.body)
	}
	if _, err := r.record("paste"); err != nil {
		t.Fatal(err)
	}
	again := br.action(r.replicas[1].URL, "paste", "paste", url.Values{"redirect_url": {landed.String()}})
	if again.status != http.StatusBadRequest || !strings.Contains(again.body, "No login of this carrier is pending") {
		t.Fatalf("second paste of the same URL: %d %.300s", again.status, again.body)
	}
	if n := r.sim.Stats().AuthorizationCodeGrants; n != 1 {
		t.Fatalf("%d code exchanges, want 1", n)
	}
}

func TestConsole_RefusesForgedReplayedForeignAndExpiredStateAndChangesNothing(t *testing.T) {
	r := newRig(t, 2, nil)
	a, b := r.replicas[0], r.replicas[1]
	br := newBrowser(t)
	br.mustSignIn(a.URL)
	cb := br.authorize(br.action(a.URL, "main", "login", nil))
	r.secretOf(cb.Query().Get("code"), cb.Query().Get("state"))
	q := cb.Query()

	check := func(name string, ans answer, want string) {
		t.Helper()
		if ans.status != http.StatusBadRequest || !strings.Contains(ans.body, want) || !strings.Contains(ans.body, "nothing was changed") {
			t.Errorf("%s: %d, want 400 %q and 'nothing was changed': %.400s", name, ans.status, want, ans.body)
		}
		if n := r.sim.Stats().AuthorizationCodeGrants; n > 1 {
			t.Errorf("%s: UPS received %d code exchanges", name, n)
		}
	}

	forged := url.Values{"code": {q.Get("code")}, "state": {q.Get("state")[:len(q.Get("state"))-4] + "AAAA"}}
	check("forged state", br.do("GET", b.URL+"/callback?"+forged.Encode(), nil), "forged")
	check("no state", br.do("GET", b.URL+"/callback?code="+url.QueryEscape(q.Get("code")), nil), "forged")

	// Another browser of the same user cannot complete this login.
	other := newBrowser(t)
	other.mustSignIn(b.URL)
	check("state of another browser", other.do("GET", atReplica(b, cb), nil), "not started in this browser")

	if n := r.sim.Stats().AuthorizationCodeGrants; n != 0 {
		t.Fatalf("UPS received %d exchanges before the real callback", n)
	}
	if ok := br.do("GET", atReplica(b, cb), nil); ok.status != http.StatusOK {
		t.Fatalf("the real callback: %d %.300s", ok.status, ok.body)
	}
	check("replayed state", br.do("GET", atReplica(a, cb), nil), "already completed")

	// A login left pending for longer than LoginTTL is refused.
	cb2 := br.authorize(br.action(a.URL, "main", "login", nil))
	r.secretOf(cb2.Query().Get("code"), cb2.Query().Get("state"))
	r.clock.Advance(16 * time.Minute)
	check("expired state", br.do("GET", atReplica(b, cb2), nil), "too long ago")
	if n := r.sim.Stats().AuthorizationCodeGrants; n != 1 {
		t.Fatalf("UPS received %d exchanges, want only the real one", n)
	}
}

func TestConsole_StateSealedWithAnotherKeyIsForged(t *testing.T) {
	r := newRig(t, 1, nil)
	other := newRig(t, 1, nil) // its own Vault, hence its own key
	br := newBrowser(t)
	br.mustSignIn(other.replicas[0].URL)
	cb := br.authorize(br.action(other.replicas[0].URL, "main", "login", nil))
	r.secretOf(cb.Query().Get("code"), cb.Query().Get("state"))
	ans := br.do("GET", atReplica(r.replicas[0], cb), nil)
	if ans.status != http.StatusBadRequest || !strings.Contains(ans.body, "forged") {
		t.Fatalf("state of another console: %d %.300s", ans.status, ans.body)
	}
	if _, err := r.record("main"); !errors.Is(err, vaultstore.ErrNotFound) {
		t.Fatalf("a record was stored: %v", err)
	}
}

func TestConsole_RefusesPostsWithoutTheSessionsCSRFToken(t *testing.T) {
	r := newRig(t, 1, nil)
	base := r.replicas[0].URL
	r.seed("main", 30*24*time.Hour)
	before := r.sim.Stats()
	br := newBrowser(t)
	br.mustSignIn(base)
	other := newBrowser(t)
	other.mustSignIn(base)
	foreign := csrfOf(t, other.do("GET", base+"/carriers/main/test", nil))
	inQuery := "?csrf=" + url.QueryEscape(csrfOf(t, br.do("GET", base+"/", nil)))
	for name, form := range map[string]url.Values{
		"missing":             {},
		"empty":               {"csrf": {""}},
		"another session's":   {"csrf": {foreign}},
		"garbage":             {"csrf": {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
		"in the query string": {"query": {inQuery}},
	} {
		for _, action := range []string{"refresh", "login", "delete", "paste"} {
			target := base + "/carriers/main/test/" + action + form.Get("query")
			f := url.Values{"confirm": {"yes"}, "redirect_url": {pasteURI + "?code=abc"}}
			if v, ok := form["csrf"]; ok {
				f["csrf"] = v
			}
			ans := br.do("POST", target, f)
			if ans.status != http.StatusForbidden || !strings.Contains(ans.body, "nothing was changed") {
				t.Errorf("%s token, %s: %d %.300s", name, action, ans.status, ans.body)
			}
		}
	}
	if _, err := r.record("main"); err != nil {
		t.Errorf("the tokens are gone: %v", err)
	}
	if s := r.sim.Stats(); s != before {
		t.Errorf("UPS was called: %+v", s)
	}
	// The sign-in form has its token too.
	fresh := newBrowser(t)
	ans := fresh.do("POST", base+"/login", url.Values{"user": {"alice"}, "password": {password}})
	if ans.status != http.StatusForbidden || strings.Contains(ans.header.Get("Set-Cookie"), "upsproxy_console=ey") {
		t.Errorf("sign-in without CSRF: %d", ans.status)
	}
	if ov := fresh.do("GET", base+"/", nil); ov.status != http.StatusSeeOther {
		t.Errorf("signed in without a CSRF token: %d", ov.status)
	}
}

func TestConsole_WithoutOrWithAnExpiredSessionNothingChanges(t *testing.T) {
	r := newRig(t, 1, nil)
	base := r.replicas[0].URL
	r.seed("main", 30*24*time.Hour)

	anon := newBrowser(t)
	if a := anon.do("GET", base+"/", nil); a.status != http.StatusSeeOther || a.location != "/login" {
		t.Errorf("overview without a session: %d %q", a.status, a.location)
	}
	if a := anon.do("POST", base+"/carriers/main/test/refresh", url.Values{"csrf": {"x"}}); a.status != http.StatusUnauthorized || !strings.Contains(a.body, "not signed in") {
		t.Errorf("refresh without a session: %d %.300s", a.status, a.body)
	}
	// A cookie this console did not seal counts as none.
	u, _ := url.Parse(base)
	anon.jar.SetCookies(u, []*http.Cookie{{Name: "upsproxy_console", Value: "eyJ1IjoiYWxpY2UifQ"}})
	if a := anon.do("GET", base+"/", nil); a.status != http.StatusSeeOther {
		t.Errorf("overview with a forged session cookie: %d", a.status)
	}

	br := newBrowser(t)
	br.mustSignIn(base)
	viewer := newBrowser(t)
	viewer.mustSignIn(base)
	page := br.do("GET", base+"/carriers/main/test", nil)
	token := csrfOf(t, page)
	r.clock.Advance(8*time.Hour + time.Second)
	a := br.do("POST", base+"/carriers/main/test/delete", url.Values{"csrf": {token}, "confirm": {"yes"}})
	if a.status != http.StatusUnauthorized || !strings.Contains(a.body, "Your session has expired, so nothing was changed") {
		t.Errorf("delete with an expired session: %d %.300s", a.status, a.body)
	}
	if _, err := r.record("main"); err != nil {
		t.Errorf("the tokens are gone: %v", err)
	}
	if a := viewer.do("GET", base+"/", nil); a.status != http.StatusUnauthorized || !strings.Contains(a.body, "Your session has expired. Sign in again.") {
		t.Errorf("overview with an expired session: %d %.300s", a.status, a.body)
	}
}

func TestConsole_WrongPasswordAndUnknownUserAreRefusedAlike(t *testing.T) {
	r := newRig(t, 1, nil)
	base := r.replicas[0].URL
	for _, tc := range []struct{ user, pw string }{{"alice", "wrong"}, {"mallory", password}, {"alice", ""}} {
		br := newBrowser(t)
		a := br.signIn(base, tc.user, tc.pw)
		if a.status != http.StatusUnauthorized || !strings.Contains(a.body, "Wrong user name or password.") {
			t.Errorf("%s/%q: %d %.300s", tc.user, tc.pw, a.status, a.body)
		}
		if ov := br.do("GET", base+"/", nil); ov.status != http.StatusSeeOther {
			t.Errorf("%s/%q: signed in anyway", tc.user, tc.pw)
		}
	}
	for _, e := range r.logs.FilterMessageSnippet("sign-in failed").All() {
		if e.ContextMap()["user"] == "mallory" {
			t.Errorf("an unknown user name (maybe a mistyped password) was logged")
		}
	}
}

func TestConsole_SignInAttemptsAreLimitedPerUserAndPerAddress(t *testing.T) {
	r := newRig(t, 1, func(o *console.Options) { o.UserBurst, o.AddrBurst = 3, 6 })
	base := r.replicas[0].URL
	br := newBrowser(t)
	for i := 0; i < 3; i++ {
		if a := br.signIn(base, "alice", "wrong"); a.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i+1, a.status)
		}
	}
	a := br.signIn(base, "alice", password) // right password, but too many attempts
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" || !strings.Contains(a.body, "Too many sign-in attempts") {
		t.Fatalf("4th attempt for alice: %d %q %.300s", a.status, a.header.Get("Retry-After"), a.body)
	}
	if ov := br.do("GET", base+"/", nil); ov.status != http.StatusSeeOther {
		t.Fatal("signed in despite the limit")
	}
	// Other names from the same address: the address's budget (6) ends.
	// (the refused attempt took nothing from the address's budget)
	for i, name := range []string{"bob", "carol", "dave"} {
		if a := br.signIn(base, name, "x"); a.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d for %s: %d", i, name, a.status)
		}
	}
	if a := br.signIn(base, "erin", "x"); a.status != http.StatusTooManyRequests {
		t.Fatalf("7th attempt from one address: %d", a.status)
	}
	// Time refills the buckets.
	r.clock.Advance(10 * time.Minute)
	if a := br.signIn(base, "alice", password); a.status != http.StatusSeeOther {
		t.Fatalf("after waiting: %d %.300s", a.status, a.body)
	}
}

func TestConsole_RefreshNowAndDeleteWithConfirmation(t *testing.T) {
	r := newRig(t, 1, nil)
	base := r.replicas[0].URL
	r.seed("main", 30*24*time.Hour)
	br := newBrowser(t)
	br.mustSignIn(base)
	a := br.action(base, "main", "refresh", nil)
	if a.status != http.StatusOK || !strings.Contains(a.body, "Refreshed: refresh count 1") {
		t.Fatalf("refresh: %d %.500s", a.status, a.body)
	}
	if n := r.sim.Stats().Refreshes; n < 1 {
		t.Fatalf("UPS saw %d refreshes", n)
	}
	rec, _ := r.record("main")
	r.secretOf(rec.Token.AccessToken, rec.Token.RefreshToken)

	// client_credentials: state and Refresh now only.
	m := br.do("GET", base+"/carriers/machine/test", nil)
	if strings.Contains(m.body, `id="login"`) || strings.Contains(m.body, `id="delete"`) || !strings.Contains(m.body, `id="refresh"`) {
		t.Errorf("client_credentials page offers the wrong actions")
	}
	if a := br.action(base, "machine", "login", nil); a.status != http.StatusBadRequest {
		t.Errorf("login of a client_credentials carrier: %d", a.status)
	}

	conf := br.do("GET", base+"/carriers/main/test/delete", nil)
	if conf.status != http.StatusOK || !strings.Contains(conf.body, "Delete the tokens of main") {
		t.Fatalf("confirmation page: %d", conf.status)
	}
	if a := br.do("POST", base+"/carriers/main/test/delete", url.Values{"csrf": {csrfOf(t, conf)}}); a.status != http.StatusBadRequest {
		t.Fatalf("unconfirmed delete: %d", a.status)
	}
	if _, err := r.record("main"); err != nil {
		t.Fatalf("unconfirmed delete deleted: %v", err)
	}
	if a := br.do("POST", base+"/carriers/main/test/delete", url.Values{"csrf": {csrfOf(t, conf)}, "confirm": {"yes"}}); a.status != http.StatusOK || !strings.Contains(a.body, "Deleted the stored tokens") {
		t.Fatalf("delete: %d %.300s", a.status, a.body)
	}
	if _, err := r.record("main"); !errors.Is(err, vaultstore.ErrNotFound) {
		t.Fatalf("record still there: %v", err)
	}
}

func TestConsole_OverviewHighlightsExpiringAndShowsNoTokenValues(t *testing.T) {
	r := newRig(t, 1, nil)
	base := r.replicas[0].URL
	exp := r.seed("main", 3*24*time.Hour)
	ok := r.seed("pub", 40*24*time.Hour)
	br := newBrowser(t)
	br.mustSignIn(base)
	ov := br.do("GET", base+"/", nil)
	for _, want := range []string{`class="level-warn" id="row-main-test"`, `class="level-ok" id="row-pub-test"`,
		`class="level-bad" id="row-paste-test"`, `class="level-ok" id="row-machine-test"`} {
		if !strings.Contains(ov.body, want) {
			t.Errorf("overview lacks %s", want)
		}
	}
	if !strings.Contains(ov.body, "UPSPROXY_NOT_LOGGED_IN") {
		t.Errorf("the never logged-in row does not say what requests get")
	}
	for _, s := range []string{exp.Token.AccessToken, exp.Token.RefreshToken, ok.Token.AccessToken, secret, r.hash} {
		if strings.Contains(ov.body, s) {
			t.Errorf("the overview shows a secret")
		}
	}
	h := ov.header
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP = %q", csp)
	}
	if h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("Cache-Control") != "no-store" {
		t.Errorf("security headers: %v", h)
	}
	if strings.Contains(ov.body, "<script") || strings.Contains(ov.body, "style=") {
		t.Errorf("inline script or style in the page")
	}
	// The reminders' "renew from a browser" link opens the carrier's page.
	if a := br.do("GET", notify.ConsoleLink(base, "main", ups.Test), nil); a.status != http.StatusOK || !strings.Contains(a.body, "Access Token Information") {
		t.Errorf("the reminders' console link: %d", a.status)
	}
	for _, c := range br.jar.Cookies(mustURL(base)) {
		if c.Name == "upsproxy_console" {
			return
		}
	}
	t.Error("no session cookie")
}

func TestConsole_CookiesAreHttpOnlyStrictAndSecureOverHTTPS(t *testing.T) {
	r := newRig(t, 0, nil)
	key, _ := r.store.SharedKey(context.Background(), "console")
	pub, _ := url.Parse("https://console.example.com/ups")
	svc, _ := login.New(login.Options{Store: r.store})
	broker, _ := tokens.New(tokens.Options{Store: r.store})
	c, err := console.New(console.Options{PublicURL: pub, Key: key, Store: r.store, Login: svc, Refresher: broker,
		Settings: console.Settings{Users: []console.User{{Name: "alice", PasswordHash: r.hash}}}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest("GET", "https://console.example.com/ups/login", nil))
	ck := rec.Result().Cookies()
	if rec.Code != http.StatusOK || len(ck) != 1 || !ck[0].HttpOnly || !ck[0].Secure || ck[0].SameSite != http.SameSiteStrictMode || ck[0].Path != "/ups/" {
		t.Fatalf("sign-in page under a base path: %d, cookies %+v", rec.Code, ck)
	}
	if rec.Header().Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS over https")
	}
	rec = httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest("GET", "https://console.example.com/other/login", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("outside the base path: %d", rec.Code)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
