package console_test

import (
	"context"
	"errors"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/console"
	"github.com/upsproxy/upsproxy/internal/login"
	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/upssim"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// These tests cover the state of a UPS login crossing carriers,
// environments, sessions and tabs, the pasted-URL refusals and failed code
// exchanges: each must end on a page that says what happened, with no code
// spent at UPS when the state is wrong and the stored tokens unchanged.

// hostAs sends every request to the simulator as if addressed to a real UPS
// host, so the simulator tells the environments apart (a code minted for
// one is refused by the other).
type hostAs struct {
	host string
	next http.RoundTripper
}

func (h hostAs) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Host = h.host
	return h.next.RoundTrip(req)
}

// withProduction adds production twins of "main" and "paste" whose token
// requests reach the simulator as onlinetools.ups.com, and a second user.
func (r *rig) withProduction(o *console.Options) {
	for _, name := range []string{"main", "paste"} {
		redirect := publicURL + "/callback"
		if name == "paste" {
			redirect = pasteURI
		}
		oc, err := ups.NewClient(ups.Config{BaseURL: r.simURL, ClientID: secretID, ClientSecret: secret, RedirectURI: redirect,
			HTTPClient: &http.Client{Timeout: 10 * time.Second, Transport: hostAs{ups.ProductionHost, http.DefaultTransport}},
			Clock:      r.clock.Now})
		if err != nil {
			r.t.Fatal(err)
		}
		o.Settings.Carriers = append(o.Settings.Carriers, console.Carrier{Name: name, Environment: ups.Production,
			Grant: ups.GrantAuthorizationCode, RedirectURI: redirect, OAuth: oc})
	}
	o.Settings.Users = append(o.Settings.Users, console.User{Name: "bob", PasswordHash: r.hash})
}

func newProdRig(t *testing.T, replicas int) *rig {
	r := newRig(t, 0, nil)
	for i := 0; i < replicas; i++ {
		r.replicas = append(r.replicas, r.replica(r.log, r.withProduction))
	}
	return r
}

var errorRE = regexp.MustCompile(`(?s)<title>(.*?)</title>.*?<p class="error" role="alert">(.*?)</p>`)

// errorOf is the title and error message of a page, for failure messages.
func errorOf(a answer) string {
	if m := errorRE.FindStringSubmatch(a.body); m != nil {
		return m[1] + ": " + html.UnescapeString(m[2])
	}
	if len(a.body) > 300 {
		return a.body[:300]
	}
	return a.body
}

// tokenRequests counts the code exchanges and grants UPS received.
func (r *rig) tokenRequests() int {
	n := 0
	for _, q := range r.sim.OAuthRequests() {
		if strings.HasSuffix(q.Path, "/oauth/token") {
			n++
		}
	}
	return n
}

// envAction posts a carrier action in an environment with the CSRF token
// of the carrier page.
func (b *browser) envAction(base, carrier string, env ups.Environment, what string, extra url.Values) answer {
	b.t.Helper()
	path := base + "/carriers/" + carrier + "/" + string(env)
	form := url.Values{"csrf": {csrfOf(b.t, b.do("GET", path, nil))}}
	for k, v := range extra {
		form[k] = v
	}
	return b.do("POST", path+"/"+what, form)
}

// seedEnv stores a pair for carrier in env and returns the record.
func (r *rig) seedEnv(carrier string, env ups.Environment) vaultstore.Record {
	r.t.Helper()
	tok, err := r.oauth(secretID, secret, pasteURI).Exchange(context.Background(), r.sim.IssueCode(secretID, pasteURI, ""), "")
	if err != nil {
		r.t.Fatal(err)
	}
	r.secretOf(tok.AccessToken, tok.RefreshToken)
	svc, _ := login.New(login.Options{Store: r.store, Clock: r.clock.Now})
	if err := svc.Save(context.Background(), login.Target{Carrier: carrier, Environment: env, Grant: ups.GrantAuthorizationCode}, tok, "login"); err != nil {
		r.t.Fatal(err)
	}
	rec, err := r.store.Get(context.Background(), carrier, env)
	if err != nil {
		r.t.Fatal(err)
	}
	// The seeding exchange is not one the tests count.
	r.sim.ResetRequests()
	return rec
}

// unchanged fails unless the stored record of carrier in env is still want
// (or still absent when want is the zero record).
func (r *rig) unchanged(name, carrier string, env ups.Environment, want vaultstore.Record) {
	r.t.Helper()
	got, err := r.store.Get(context.Background(), carrier, env)
	if want.Token.RefreshToken == "" {
		if !errors.Is(err, vaultstore.ErrNotFound) {
			r.t.Errorf("%s: tokens were stored for %s (%s): %v", name, carrier, env, err)
		}
		return
	}
	if err != nil || got.Version != want.Version || got.Token.RefreshToken != want.Token.RefreshToken {
		r.t.Errorf("%s: the stored tokens of %s (%s) changed: version %d -> %d, %v", name, carrier, env, want.Version, got.Version, err)
	}
}

func TestConsole_CallbackCompletesEachPendingLoginForItsOwnCarrierAndEnvironmentOnly(t *testing.T) {
	r := newProdRig(t, 2)
	a, b := r.replicas[0], r.replicas[1]
	br := newBrowser(t)
	br.mustSignIn(a.URL)
	// Three tabs: main in test, main in production, pub in test.
	cbTest := br.authorize(br.envAction(a.URL, "main", ups.Test, "login", nil))
	cbProd := br.authorize(br.envAction(a.URL, "main", ups.Production, "login", nil))
	cbPub := br.authorize(br.envAction(b.URL, "pub", ups.Test, "login", nil))
	for _, cb := range []*url.URL{cbTest, cbProd, cbPub} {
		r.secretOf(cb.Query().Get("code"), cb.Query().Get("state"))
	}

	// Another browser with only its own login of pub pending cannot use
	// main's state, and UPS is not asked.
	other := newBrowser(t)
	other.mustSignIn(b.URL)
	cbOther := other.authorize(other.envAction(b.URL, "pub", ups.Test, "login", nil))
	r.secretOf(cbOther.Query().Get("code"), cbOther.Query().Get("state"))
	for name, cb := range map[string]*url.URL{"main test": cbTest, "main production": cbProd} {
		ans := other.do("GET", atReplica(b, cb), nil)
		if ans.status != http.StatusBadRequest || !strings.Contains(ans.body, "nothing was changed") {
			t.Errorf("state of %s with only pub pending: %d %s", name, ans.status, errorOf(ans))
		}
	}
	if n := r.tokenRequests(); n != 0 {
		t.Fatalf("UPS received %d token requests for refused callbacks", n)
	}

	// The tabs complete in any order, each for its own carrier and
	// environment.
	steps := []struct {
		cb      *url.URL
		carrier string
		env     ups.Environment
	}{{cbProd, "main", ups.Production}, {cbPub, "pub", ups.Test}, {cbTest, "main", ups.Test}}
	stored := map[string]bool{}
	for i, s := range steps {
		srv := r.replicas[i%2]
		ans := br.do("GET", atReplica(srv, s.cb), nil)
		want := "Logged in to UPS: carrier " + s.carrier + " (" + string(s.env) + ")"
		if ans.status != http.StatusOK || !strings.Contains(ans.body, want) {
			t.Fatalf("callback of %s (%s): %d %s", s.carrier, s.env, ans.status, errorOf(ans))
		}
		stored[s.carrier+"/"+string(s.env)] = true
		for _, k := range []string{"main/test", "main/production", "pub/test", "paste/test", "paste/production"} {
			car, env, _ := strings.Cut(k, "/")
			rec, err := r.store.Get(context.Background(), car, ups.Environment(env))
			switch {
			case stored[k] && (err != nil || rec.UpdatedBy != "console:alice" || rec.Carrier != car || rec.Environment != ups.Environment(env)):
				t.Errorf("after the callback of %s (%s): %s = %+v, %v", s.carrier, s.env, k, rec.UpdatedBy, err)
			case !stored[k] && !errors.Is(err, vaultstore.ErrNotFound):
				t.Errorf("after the callback of %s (%s): tokens stored under %s", s.carrier, s.env, k)
			}
			if err == nil {
				r.secretOf(rec.Token.AccessToken, rec.Token.RefreshToken)
			}
		}
		if n := r.tokenRequests(); n != i+1 {
			t.Errorf("after %d callbacks UPS received %d token requests", i+1, n)
		}
	}
	// The other browser's own login still completes.
	if ans := other.do("GET", atReplica(a, cbOther), nil); ans.status != http.StatusOK {
		t.Errorf("the other browser's login: %d %s", ans.status, errorOf(ans))
	}
}

func TestConsole_CallbackRefusalsAndUPSDenialChangeNothing(t *testing.T) {
	r := newProdRig(t, 1)
	base := r.replicas[0].URL
	before := r.seedEnv("main", ups.Test)
	br := newBrowser(t)
	br.mustSignIn(base)
	for _, tc := range []struct {
		name  string
		query func(q url.Values) url.Values
		want  string
	}{
		{"UPS denied", func(q url.Values) url.Values {
			return url.Values{"state": q["state"], "error": {"access_denied"}, "error_description": {"The user <b>denied</b> access"}}
		}, "access_denied"},
		{"two codes", func(q url.Values) url.Values { q.Add("code", "AnotherCode123"); return q }, "more than one different code"},
		{"no code", func(q url.Values) url.Values { q.Del("code"); return q }, "no authorization code"},
	} {
		cb := br.authorize(br.envAction(base, "main", ups.Test, "login", nil))
		r.secretOf(cb.Query().Get("code"), cb.Query().Get("state"))
		ans := br.do("GET", base+"/callback?"+tc.query(cb.Query()).Encode(), nil)
		if ans.status != http.StatusBadRequest || !strings.Contains(ans.body, tc.want) || !strings.Contains(ans.body, "Nothing was stored") {
			t.Errorf("%s: %d, want 400 %q: %s", tc.name, ans.status, tc.want, errorOf(ans))
		}
		if strings.Contains(ans.body, "<b>denied") {
			t.Errorf("%s: UPS's text is not escaped", tc.name)
		}
		if n := r.tokenRequests(); n != 0 {
			t.Errorf("%s: UPS received %d token requests", tc.name, n)
		}
		r.unchanged(tc.name, "main", ups.Test, before)
	}
}

func TestConsole_PastedRedirectRefusalsSpendNoCodeAndChangeNothing(t *testing.T) {
	r := newProdRig(t, 2)
	a, b := r.replicas[0], r.replicas[1]
	before := r.seedEnv("paste", ups.Test)
	br := newBrowser(t)
	br.mustSignIn(a.URL)
	landed := br.authorize(br.envAction(a.URL, "paste", ups.Test, "login", nil))
	cbMain := br.authorize(br.envAction(a.URL, "main", ups.Test, "login", nil))
	landedProd := br.authorize(br.envAction(a.URL, "paste", ups.Production, "login", nil))
	for _, u := range []*url.URL{landed, cbMain, landedProd} {
		r.secretOf(u.Query().Get("code"), u.Query().Get("state"))
	}
	state := landed.Query().Get("state")
	with := func(v url.Values) string { return pasteURI + "?" + v.Encode() }
	huge := with(url.Values{"code": {landed.Query().Get("code")}, "state": {state}, "pad": {strings.Repeat("x", 9<<10)}})

	for _, tc := range []struct {
		name, paste string
		status      int
		want        string
	}{
		{"state of another carrier", cbMain.String(), 400, "does not match this login"},
		{"state of the other environment", landedProd.String(), 400, "does not match this login"},
		{"two codes", landed.String() + "&code=SecondCode42", 400, "more than one different code"},
		{"UPS denied", with(url.Values{"state": {state}, "error": {"access_denied"}, "error_description": {"User cancelled"}}), 400, "the UPS login did not succeed: access_denied (User cancelled)"},
		{"longer than a paste", huge, 400, "too long"},
		{"garbage words", "it did not work", 400, "paste the whole address"},
		{"garbage URL", "https://[::1/upscallback?code=x", 400, "not a valid URL"},
		{"garbage escape", "%zz%", 400, "paste the whole address"},
		{"garbage query", "?code=%zz", 400, "malformed"},
		{"nothing", "   ", 400, "nothing was pasted"},
		// Without its state a code cannot be tied to this login: it may be
		// another carrier's (same UPS app and redirect URI), and would be
		// stored under this one.
		{"code of another login without its state", pasteURI + "?code=" + url.QueryEscape(cbMain.Query().Get("code")), 400, "no state"},
		{"bare code", landed.Query().Get("code"), 400, "no state"},
		{"code of the production login without its state", pasteURI + "?code=" + url.QueryEscape(landedProd.Query().Get("code")), 400, "no state"},
		{"larger than a form", with(url.Values{"code": {"c"}, "state": {state}, "pad": {strings.Repeat("x", 80<<10)}}), 413, "too large"},
	} {
		ans := br.envAction(b.URL, "paste", ups.Test, "paste", url.Values{"redirect_url": {tc.paste}})
		if ans.status != tc.status || !strings.Contains(ans.body, tc.want) ||
			!(strings.Contains(ans.body, "Nothing was stored") || strings.Contains(ans.body, "nothing was changed")) {
			t.Errorf("%s: %d, want %d %q and that nothing changed: %s", tc.name, ans.status, tc.status, tc.want, errorOf(ans))
		}
		if n := r.tokenRequests(); n != 0 {
			t.Errorf("%s: UPS received %d token requests", tc.name, n)
		}
		r.unchanged(tc.name, "paste", ups.Test, before)
		r.unchanged(tc.name, "paste", ups.Production, vaultstore.Record{})
	}

	// Another user signed in in the same browser cannot finish alice's login.
	if ans := br.do("POST", a.URL+"/logout", url.Values{"csrf": {csrfOf(t, br.do("GET", a.URL+"/", nil))}}); ans.status != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", ans.status)
	}
	if ans := br.signIn(a.URL, "bob", password); ans.status != http.StatusSeeOther {
		t.Fatalf("bob's sign-in: %d", ans.status)
	}
	ans := br.envAction(b.URL, "paste", ups.Test, "paste", url.Values{"redirect_url": {landed.String()}})
	if ans.status != http.StatusBadRequest || !strings.Contains(ans.body, "another console session, so nothing was changed") {
		t.Errorf("bob pasting alice's login: %d %s", ans.status, errorOf(ans))
	}
	if n := r.tokenRequests(); n != 0 {
		t.Errorf("bob's paste: UPS received %d token requests", n)
	}
	r.unchanged("bob's paste", "paste", ups.Test, before)

	// An expired login: refused, nothing spent.
	br2 := newBrowser(t)
	br2.mustSignIn(a.URL)
	late := br2.authorize(br2.envAction(a.URL, "paste", ups.Test, "login", nil))
	r.secretOf(late.Query().Get("code"), late.Query().Get("state"))
	r.clock.Advance(16 * time.Minute)
	ans = br2.envAction(b.URL, "paste", ups.Test, "paste", url.Values{"redirect_url": {late.String()}})
	if ans.status != http.StatusBadRequest || !strings.Contains(ans.body, "too long ago, so nothing was changed") {
		t.Errorf("expired login: %d %s", ans.status, errorOf(ans))
	}
	if n := r.tokenRequests(); n != 0 {
		t.Errorf("expired login: UPS received %d token requests", n)
	}
	r.unchanged("expired login", "paste", ups.Test, before)
}

func TestConsole_PastedRefusalsLeaveTheLoginPending(t *testing.T) {
	r := newProdRig(t, 1)
	base := r.replicas[0].URL
	br := newBrowser(t)
	br.mustSignIn(base)
	landed := br.authorize(br.envAction(base, "paste", ups.Test, "login", nil))
	cbMain := br.authorize(br.envAction(base, "main", ups.Test, "login", nil))
	r.secretOf(landed.Query().Get("code"), landed.Query().Get("state"), cbMain.Query().Get("code"), cbMain.Query().Get("state"))
	for _, p := range []string{cbMain.String(), landed.String() + "&code=Other1", "junk text"} {
		if ans := br.envAction(base, "paste", ups.Test, "paste", url.Values{"redirect_url": {p}}); ans.status != http.StatusBadRequest {
			t.Fatalf("refused paste: %d", ans.status)
		}
	}
	ans := br.envAction(base, "paste", ups.Test, "paste", url.Values{"redirect_url": {landed.String()}})
	if ans.status != http.StatusOK || !strings.Contains(ans.body, "Logged in to UPS: carrier paste (test)") {
		t.Fatalf("the right paste after refused ones: %d %s", ans.status, errorOf(ans))
	}
	if n := r.tokenRequests(); n != 1 {
		t.Errorf("UPS received %d token requests, want 1", n)
	}
	rec, err := r.record("paste")
	if err != nil {
		t.Fatal(err)
	}
	r.secretOf(rec.Token.AccessToken, rec.Token.RefreshToken)
	r.unchanged("after the paste", "main", ups.Test, vaultstore.Record{})
}

func TestConsole_FailedCodeExchangeSaysWhatHappenedAndKeepsTheTokens(t *testing.T) {
	r := newProdRig(t, 1)
	base := r.replicas[0].URL
	before := map[string]vaultstore.Record{
		"main/test": r.seedEnv("main", ups.Test), "paste/test": r.seedEnv("paste", ups.Test),
		"paste/production": r.seedEnv("paste", ups.Production),
	}
	type tc struct {
		name  string
		fault *upssim.Fault
		// prepare may spend or swap the code of the redirect.
		prepare func(t *testing.T, u *url.URL) *url.URL
		want    []string
	}
	spend := func(t *testing.T, u *url.URL) *url.URL {
		// The code was already redeemed (e.g. the callback was reloaded
		// after a crash): UPS answers invalid code.
		oc := r.oauth(secretID, secret, pasteURI)
		if u.Path == "/callback" {
			oc = r.oauth(secretID, secret, publicURL+"/callback")
		}
		tok, err := oc.Exchange(context.Background(), u.Query().Get("code"), "")
		if err != nil {
			t.Fatalf("spending the code: %v", err)
		}
		r.secretOf(tok.AccessToken, tok.RefreshToken)
		return u
	}
	cases := []tc{
		{name: "UPS 500", fault: &upssim.Fault{Endpoint: upssim.EndpointToken, Status: 500, Times: 1}, want: []string{"500"}},
		{name: "UPS 503 HTML", fault: &upssim.Fault{Endpoint: upssim.EndpointToken, Status: 503, Body: "<html><body>Service Unavailable</body></html>", Times: 1}, want: []string{"503"}},
		{name: "UPS 429", fault: &upssim.Fault{Endpoint: upssim.EndpointToken, Status: 429, Times: 1}, want: []string{"429"}},
		{name: "spent code", prepare: spend, want: []string{"Invalid Authorization Code"}},
	}
	br := newBrowser(t)
	br.mustSignIn(base)
	for _, c := range cases {
		for _, via := range []string{"callback", "paste"} {
			carrier := "main"
			if via == "paste" {
				carrier = "paste"
			}
			t.Run(c.name+"/"+via, func(t *testing.T) {
				u := br.authorize(br.envAction(base, carrier, ups.Test, "login", nil))
				r.secretOf(u.Query().Get("code"), u.Query().Get("state"))
				if c.prepare != nil {
					u = c.prepare(t, u)
				}
				if c.fault != nil {
					r.sim.SetFault(*c.fault)
				}
				r.sim.ResetRequests()
				var ans answer
				if via == "callback" {
					ans = br.do("GET", atReplica(r.replicas[0], u), nil)
				} else {
					ans = br.envAction(base, carrier, ups.Test, "paste", url.Values{"redirect_url": {u.String()}})
				}
				r.sim.ClearFaults()
				if ans.status != http.StatusBadGateway || !strings.Contains(ans.body, "Nothing was stored") {
					t.Errorf("%d %s", ans.status, errorOf(ans))
				}
				for _, w := range c.want {
					if !strings.Contains(ans.body, w) {
						t.Errorf("the page does not say %q: %s", w, errorOf(ans))
					}
				}
				if !strings.Contains(ans.body, "Start the login again") {
					t.Errorf("the page does not say what to do: %s", errorOf(ans))
				}
				if n := r.tokenRequests(); n != 1 {
					t.Errorf("UPS received %d token requests, want exactly 1 (no retry of a single-use code)", n)
				}
				r.unchanged(c.name, carrier, ups.Test, before[carrier+"/test"])
			})
		}
	}

	// A code minted for the test environment pasted into the production
	// login (the state is right, so UPS is asked once, and refuses).
	u := br.authorize(br.envAction(base, "paste", ups.Production, "login", nil))
	r.secretOf(u.Query().Get("code"), u.Query().Get("state"))
	auth, _ := url.Parse(r.oauth(secretID, secret, pasteURI).AuthorizeURL("s", ""))
	req, _ := http.NewRequest("GET", auth.String(), nil)
	req.Host = ups.TestHost
	resp, err := br.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	testCode := mustURL(resp.Header.Get("Location")).Query().Get("code")
	r.secretOf(testCode)
	q := u.Query()
	q.Set("code", testCode)
	u.RawQuery = q.Encode()
	r.sim.ResetRequests()
	ans := br.envAction(base, "paste", ups.Production, "paste", url.Values{"redirect_url": {u.String()}})
	if ans.status != http.StatusBadGateway || !strings.Contains(ans.body, "Invalid Authorization Code") || !strings.Contains(ans.body, "(production)") {
		t.Errorf("test code in the production login: %d %.500s", ans.status, errorOf(ans))
	}
	if n := r.tokenRequests(); n != 1 {
		t.Errorf("UPS received %d token requests, want 1", n)
	}
	r.unchanged("test code in production", "paste", ups.Production, before["paste/production"])
	r.unchanged("test code in production", "paste", ups.Test, before["paste/test"])
}

// Two logins of carriers sharing a UPS application and redirect URI (here
// one carrier in two environments): the code of one, pasted without its
// state into the other, must not be stored there.
func TestConsole_CodeWithoutStateIsNotStoredUnderAnotherLogin(t *testing.T) {
	r := newProdRig(t, 1)
	base := r.replicas[0].URL
	br := newBrowser(t)
	br.mustSignIn(base)
	landedTest := br.authorize(br.envAction(base, "paste", ups.Test, "login", nil))
	landedProd := br.authorize(br.envAction(base, "paste", ups.Production, "login", nil))
	for _, u := range []*url.URL{landedTest, landedProd} {
		r.secretOf(u.Query().Get("code"), u.Query().Get("state"))
	}
	for _, p := range []string{landedProd.Query().Get("code"), pasteURI + "?code=" + url.QueryEscape(landedProd.Query().Get("code"))} {
		ans := br.envAction(base, "paste", ups.Test, "paste", url.Values{"redirect_url": {p}})
		if ans.status != http.StatusBadRequest || !strings.Contains(ans.body, "no state") {
			t.Errorf("production's code without state in the test login: %d %s", ans.status, errorOf(ans))
		}
	}
	if n := r.tokenRequests(); n != 0 {
		t.Errorf("UPS received %d token requests", n)
	}
	r.unchanged("production's code in test", "paste", ups.Test, vaultstore.Record{})
	// Each login still completes with its own address.
	for env, u := range map[ups.Environment]*url.URL{ups.Production: landedProd, ups.Test: landedTest} {
		ans := br.envAction(base, "paste", env, "paste", url.Values{"redirect_url": {u.String()}})
		if ans.status != http.StatusOK {
			t.Errorf("the %s login: %d %s", env, ans.status, errorOf(ans))
		}
		rec, err := r.store.Get(context.Background(), "paste", env)
		if err != nil || rec.Environment != env {
			t.Fatalf("the %s login stored %+v, %v", env, rec.Environment, err)
		}
		r.secretOf(rec.Token.AccessToken, rec.Token.RefreshToken)
	}
}
