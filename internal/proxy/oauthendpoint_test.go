package proxy_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/upsproxy/upsproxy/internal/clienttoken"
	"github.com/upsproxy/upsproxy/internal/proxy"
	"github.com/upsproxy/upsproxy/internal/ups"
)

func testSigner(t testing.TB) *clienttoken.Signer {
	t.Helper()
	s, err := clienttoken.NewSigner(bytes.Repeat([]byte{3}, clienttoken.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

// tokenRequest posts a token request form to base+path.
func tokenRequest(t *testing.T, c *http.Client, target string, form url.Values, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readBody(t, resp)
}

// tokenFields decodes a token answer, checking every field is a string.
func tokenFields(t *testing.T, body string) map[string]string {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatalf("token answer %q: %v", body, err)
	}
	out := map[string]string{}
	for k, v := range raw {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("field %s is %T, UPS sends strings only", k, v)
		}
		out[k] = s
	}
	return out
}

func wantUPSError(t *testing.T, resp *http.Response, body string, status int, upsCode, proxyCode string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	d, ok := ups.ParseEnvelope([]byte(body))
	if !ok || d.Code != upsCode {
		t.Fatalf("body %s: not UPS's envelope with code %s", body, upsCode)
	}
	if got := resp.Header.Get(proxy.ErrorHeader); got != proxyCode {
		t.Fatalf("%s %q, want %q", proxy.ErrorHeader, got, proxyCode)
	}
}

func TestOAuth_TokenRequestsInEveryModeAreAnsweredByTheProxyAndItsBearerIsReplaced(t *testing.T) {
	e := newTestEnv(t, nil)
	e.proxy.SetClientTokenSigner(testSigner(t))
	origin, originBase := e.originClient(t)
	fwd, fwdBase := e.forwardClient(t)
	mitm, mitmBase := e.mitmClient(t, ups.ProductionHost)
	for _, m := range []struct {
		name string
		c    *http.Client
		base string
	}{{"base-URL", origin, originBase}, {"http forward", fwd, fwdBase}, {"https forward", mitm, mitmBase}} {
		t.Run(m.name, func(t *testing.T) {
			before := len(e.prod.requests())
			resp, body := tokenRequest(t, m.c, m.base+"/security/v1/oauth/token",
				url.Values{"grant_type": {"client_credentials"}}, map[string]string{"Authorization": basic("legacy-app", "whatever")})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			f := tokenFields(t, body)
			if !strings.HasPrefix(f["access_token"], clienttoken.Prefix) || f["token_type"] != "Bearer" ||
				f["expires_in"] != "14399" || f["client_id"] != "legacy-app" || f["status"] != "approved" || f["issued_at"] == "" {
				t.Fatalf("answer %v", f)
			}
			if _, has := f["refresh_token"]; has {
				t.Fatal("client_credentials answer carries a refresh token")
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Error("token answer may be cached")
			}
			req, _ := http.NewRequest(http.MethodPost, m.base+"/api/rating/v2409/Rate", strings.NewReader(`{}`))
			req.Header.Set("Authorization", "Bearer "+f["access_token"])
			api, err := m.c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, api)
			reqs := e.prod.requests()[before:]
			if len(reqs) != 1 || reqs[0].Path != "/api/rating/v2409/Rate" {
				t.Fatalf("UPS saw %d requests (%v), want only the API call", len(reqs), reqs)
			}
			if got := reqs[0].Header.Get("Authorization"); got != "Bearer tok-main-production-SECRET" {
				t.Fatalf("UPS saw Authorization %q", got)
			}
		})
	}
}

func TestOAuth_WithoutTheSigningKeyTokenRequestsAndProxyBearersGet503(t *testing.T) {
	e := newTestEnv(t, nil)
	c, base := e.originClient(t)
	resp, body := tokenRequest(t, c, base+"/security/v1/oauth/token", url.Values{"grant_type": {"client_credentials"}}, nil)
	wantUPSError(t, resp, body, http.StatusServiceUnavailable, proxy.CodeTokenStoreUnavailable, proxy.CodeTokenStoreUnavailable)
	req, _ := http.NewRequest(http.MethodGet, base+"/api/track/v1/details/1Z", nil)
	req.Header.Set("Authorization", "Bearer "+clienttoken.Prefix+"x.y")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body = readBody(t, resp)
	wantUPSError(t, resp, body, http.StatusServiceUnavailable, proxy.CodeTokenStoreUnavailable, proxy.CodeTokenStoreUnavailable)
	if n := len(e.prod.requests()) + len(e.test.requests()); n != 0 {
		t.Fatalf("%d requests reached UPS", n)
	}
}

func TestOAuth_BadRequestsGetUPSsErrorsAndNothingIsForwarded(t *testing.T) {
	e := newTestEnv(t, nil)
	e.proxy.SetClientTokenSigner(testSigner(t))
	c, base := e.originClient(t)
	for _, tc := range []struct {
		name, path string
		form       url.Values
		status     int
	}{
		{"no grant", "/security/v1/oauth/token", url.Values{}, 400},
		{"unknown grant", "/security/v1/oauth/token", url.Values{"grant_type": {"password"}}, 400},
		{"refresh path with another grant", "/security/v1/oauth/refresh", url.Values{"grant_type": {"client_credentials"}}, 400},
		{"repeated parameter", "/security/v1/oauth/token", url.Values{"grant_type": {"client_credentials", "client_credentials"}}, 400},
		{"refresh token tampered", "/security/v1/oauth/refresh", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {clienttoken.Prefix + "AAAA.AAAA"}}, 401},
		{"code without redirect_uri", "/security/v1/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, 400},
		{"unknown oauth path", "/security/v1/oauth/validate-client", url.Values{}, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := tokenRequest(t, c, base+tc.path, tc.form, nil)
			wantUPSError(t, resp, body, tc.status, map[int]string{400: "10400", 401: "10400", 404: "404"}[tc.status], proxy.CodeOAuthInvalidRequest)
		})
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/security/v1/oauth/token", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET token: %d %s", resp.StatusCode, body)
	}
	if n := len(e.prod.requests()); n != 0 {
		t.Fatalf("%d requests reached UPS", n)
	}
}

func pxClients(t *testing.T) []proxy.Client {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte("right-secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return []proxy.Client{
		{Name: "shop", PasswordHash: string(h), Carrier: "cie", RedirectURIs: []string{"https://app.example/cb?keep=1"}},
		{Name: "free", PasswordHash: string(h)},
	}
}

func TestOAuth_WithClientBlocksTheTokenAuthenticatesAndPinsTheClient(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	e := newTestEnv(t, func(o *proxy.Options) {
		o.Config.Clients = pxClients(t)
		o.Clock = func() time.Time { return clock() }
	})
	e.proxy.SetClientTokenSigner(testSigner(t))
	c, base := e.originClient(t)
	tokenURL := base + "/security/v1/oauth/token"
	cc := url.Values{"grant_type": {"client_credentials"}}

	resp, body := tokenRequest(t, c, tokenURL, cc, map[string]string{"Authorization": basic("shop", "wrong")})
	wantUPSError(t, resp, body, http.StatusUnauthorized, ups.CodeInvalidClient, proxy.CodeOAuthInvalidClient)
	resp, body = tokenRequest(t, c, tokenURL, cc, nil)
	wantUPSError(t, resp, body, http.StatusUnauthorized, ups.CodeInvalidRequest, proxy.CodeOAuthInvalidClient)
	// Form credentials work like Basic ones.
	resp, body = tokenRequest(t, c, tokenURL, url.Values{"grant_type": {"client_credentials"}, "client_id": {"shop"}, "client_secret": {"right-secret"}}, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("form credentials: %d %s", resp.StatusCode, body)
	}
	tok := tokenFields(t, body)["access_token"]

	call := func(bearer string, header map[string]string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/track/v1/details/1Z", nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, readBody(t, resp)
	}
	// The bearer is proxy authentication, and pins the client's carrier.
	if resp, body := call(tok, nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("API call with the proxy token: %d %s", resp.StatusCode, body)
	}
	if got := e.test.requests()[0].Header.Get("Authorization"); got != "Bearer tok-cie-test-SECRET" {
		t.Fatalf("UPS saw %q, want the pinned carrier's token", got)
	}
	resp, body = call(tok, map[string]string{proxy.CarrierHeader: "main"})
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get(proxy.ErrorHeader) != proxy.CodeNoCarrier {
		t.Fatalf("other carrier named: %d %s", resp.StatusCode, body)
	}
	// Without a token, credentials are still required: in base-URL mode
	// with none at all, a 401 that makes an OAuth client fetch its token
	// (SPEC's code kept); with anything else, the 407.
	resp, body = call("", nil)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get(proxy.ErrorHeader) != proxy.CodeProxyAuthRequired ||
		resp.Header.Get("WWW-Authenticate") != `Bearer realm="upsproxy"` || resp.Header.Get("Proxy-Authenticate") != "" {
		t.Fatalf("no credentials: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	resp, body = call("", map[string]string{"Authorization": "Bearer some-stale-ups-token"})
	if resp.StatusCode != http.StatusProxyAuthRequired || resp.Header.Get("Proxy-Authenticate") == "" {
		t.Fatalf("a foreign bearer and no proxy credentials: %d %s", resp.StatusCode, body)
	}
	resp, body = call("", map[string]string{"Proxy-Authorization": basic("shop", "wrong")})
	if resp.StatusCode != http.StatusProxyAuthRequired || resp.Header.Get("WWW-Authenticate") != "" {
		t.Fatalf("wrong proxy credentials: %d %s", resp.StatusCode, body)
	}
	fc, _ := e.forwardClient(t)
	if resp, err := fc.Get("http://onlinetools.ups.com/api/track/v1/details/1Z"); err != nil {
		t.Fatal(err)
	} else if body := readBody(t, resp); resp.StatusCode != http.StatusProxyAuthRequired || resp.Header.Get("Proxy-Authenticate") == "" {
		t.Fatalf("HTTP forward proxy mode, no credentials: %d %s", resp.StatusCode, body)
	}
	// Proxy credentials of another client with this client's token.
	resp, body = call(tok, map[string]string{"Proxy-Authorization": basic("free", "right-secret")})
	wantUPSError(t, resp, body, http.StatusUnauthorized, ups.CodeInvalidAuth, proxy.CodeOAuthInvalidToken)
	// Tampered and expired tokens.
	tampered := tok[:len(tok)-2] + map[bool]string{true: "AA", false: "BB"}[!strings.HasSuffix(tok, "AA")]
	resp, body = call(tampered, nil)
	wantUPSError(t, resp, body, http.StatusUnauthorized, ups.CodeInvalidAuth, proxy.CodeOAuthInvalidToken)
	clock = func() time.Time { return now.Add(4*time.Hour + time.Second) }
	resp, body = call(tok, nil)
	wantUPSError(t, resp, body, http.StatusUnauthorized, ups.CodeInvalidAuth, proxy.CodeOAuthInvalidToken)
	if n := len(e.test.requests()) + len(e.prod.requests()); n != 1 {
		t.Fatalf("%d requests reached UPS, want only the first API call", n)
	}
}

func TestOAuth_AHugeClientIDIsRefusedNotSignedEchoedOrLogged(t *testing.T) {
	e := newTestEnv(t, nil)
	e.proxy.SetClientTokenSigner(testSigner(t))
	c, base := e.originClient(t)
	huge := strings.Repeat("i", 8<<10)
	for _, tc := range []struct {
		name   string
		form   url.Values
		header map[string]string
	}{
		{"Basic", url.Values{"grant_type": {"client_credentials"}}, map[string]string{"Authorization": basic(huge, "s")}},
		{"form", url.Values{"grant_type": {"client_credentials"}, "client_id": {huge}}, nil},
	} {
		resp, body := tokenRequest(t, c, base+"/security/v1/oauth/token", tc.form, tc.header)
		wantUPSError(t, resp, body, http.StatusUnauthorized, ups.CodeInvalidClient, proxy.CodeOAuthInvalidClient)
		if strings.Contains(body, huge[:300]) {
			t.Errorf("%s: the id is echoed", tc.name)
		}
	}
	for _, l := range e.logs.All() {
		for _, f := range l.Context {
			if strings.Contains(f.String, huge[:300]) {
				t.Errorf("log %q field %s holds the id", l.Message, f.Key)
			}
		}
	}
}

func TestOAuth_APlaceholderTokenFromBeforeClientBlocksGetsUPSBadTokenAnswer(t *testing.T) {
	e := newTestEnv(t, nil)
	e.proxy.SetClientTokenSigner(testSigner(t))
	c, base := e.originClient(t)
	resp, body := tokenRequest(t, c, base+"/security/v1/oauth/token", url.Values{"grant_type": {"client_credentials"}},
		map[string]string{"Authorization": basic("shop", "anything")})
	if resp.StatusCode != 200 {
		t.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	placeholder := tokenFields(t, body)["access_token"]
	cfg := proxy.Config{Carriers: testCarriers(), Clients: pxClients(t), Upstreams: map[ups.Environment]*url.URL{
		ups.Production: e.prod.hostURL(t), ups.Test: e.test.hostURL(t)}}
	if err := e.proxy.Update(cfg); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/api/track/v1/details/1Z", nil)
	req.Header.Set("Authorization", "Bearer "+placeholder)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	// Not a 407 the OAuth client cannot act on: UPS's bad-token answer,
	// after which it fetches a token that authenticates it.
	wantUPSError(t, resp, readBody(t, resp), http.StatusUnauthorized, ups.CodeInvalidAuth, proxy.CodeOAuthInvalidToken)
	if n := len(e.test.requests()) + len(e.prod.requests()); n != 0 {
		t.Fatalf("%d requests reached UPS", n)
	}
}

func TestOAuth_AuthorizeCodeAndRefreshGiveAChainBoundToTheClient(t *testing.T) {
	e := newTestEnv(t, func(o *proxy.Options) { o.Config.Clients = pxClients(t) })
	e.proxy.SetClientTokenSigner(testSigner(t))
	c, base := e.originClient(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(base + "/security/v1/oauth/authorize?client_id=shop&response_type=code&state=xyz&redirect_uri=" +
		url.QueryEscape("https://app.example/cb?keep=1"))
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || loc.Host != "app.example" || loc.Query().Get("state") != "xyz" ||
		loc.Query().Get("keep") != "1" || !clienttoken.IsToken(loc.Query().Get("code")) {
		t.Fatalf("authorize: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	code := loc.Query().Get("code")
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://app.example/cb"}}
	resp, body := tokenRequest(t, c, base+"/security/v1/oauth/token", exchange, map[string]string{"Authorization": basic("free", "right-secret")})
	wantUPSError(t, resp, body, http.StatusBadRequest, ups.CodeInvalidRequest, proxy.CodeOAuthInvalidRequest) // another client's code
	resp, body = tokenRequest(t, c, base+"/security/v1/oauth/token", exchange, map[string]string{"Authorization": basic("shop", "right-secret")})
	if resp.StatusCode != 200 {
		t.Fatalf("code exchange: %d %s", resp.StatusCode, body)
	}
	f := tokenFields(t, body)
	for _, k := range []string{"refresh_token", "refresh_token_expires_in", "refresh_token_issued_at", "refresh_token_status", "refresh_count", "scope"} {
		if _, ok := f[k]; !ok {
			t.Errorf("no %s in %v", k, f)
		}
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {f["refresh_token"]}}
	resp, body = tokenRequest(t, c, base+"/security/v1/oauth/refresh", refresh, map[string]string{"Authorization": basic("free", "right-secret")})
	wantUPSError(t, resp, body, http.StatusUnauthorized, ups.CodeInvalidRequest, proxy.CodeOAuthInvalidRequest)
	refresh.Set("refresh_token", f["access_token"]) // an access token is no refresh token
	resp, body = tokenRequest(t, c, base+"/security/v1/oauth/refresh", refresh, map[string]string{"Authorization": basic("shop", "right-secret")})
	wantUPSError(t, resp, body, http.StatusUnauthorized, ups.CodeInvalidRequest, proxy.CodeOAuthInvalidRequest)
	refresh.Set("refresh_token", f["refresh_token"])
	resp, body = tokenRequest(t, c, base+"/security/v1/oauth/refresh", refresh, map[string]string{"Authorization": basic("shop", "right-secret")})
	if resp.StatusCode != 200 || tokenFields(t, body)["refresh_token"] == "" {
		t.Fatalf("refresh: %d %s", resp.StatusCode, body)
	}
	if n := len(e.test.requests()) + len(e.prod.requests()); n != 0 {
		t.Fatalf("%d requests reached UPS", n)
	}
}

func TestOAuth_AuthorizeRedirectsOnlyToLoopbackOrConfiguredURIs(t *testing.T) {
	e := newTestEnv(t, func(o *proxy.Options) {
		o.Config.Clients = pxClients(t)
		o.Config.Carriers[0].RedirectURI = "https://console.example/upscallback"
	})
	e.proxy.SetClientTokenSigner(testSigner(t))
	c, base := e.originClient(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	authorize := func(client, redirect string) (*http.Response, string) {
		resp, err := c.Get(base + "/security/v1/oauth/authorize?client_id=" + client + "&response_type=code&state=s&redirect_uri=" +
			url.QueryEscape(redirect))
		if err != nil {
			t.Fatal(err)
		}
		return resp, readBody(t, resp)
	}
	for _, ok := range []struct{ client, redirect string }{
		{"shop", "https://app.example/cb?keep=1"},        // its redirect_uris
		{"free", "https://console.example/upscallback"},  // a carrier's redirect_uri
		{"free", "http://127.0.0.1:53121/callback"},      // RFC 8252 loopback, any port
		{"free", "http://[::1]:8080/"},                   //
		{"free", "http://localhost:9000/oauth/callback"}, //
	} {
		resp, body := authorize(ok.client, ok.redirect)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), strings.SplitN(ok.redirect, "?", 2)[0]) {
			t.Errorf("%s to %s: %d Location %q %s", ok.client, ok.redirect, resp.StatusCode, resp.Header.Get("Location"), body)
		}
	}
	for _, bad := range []struct{ client, redirect string }{
		{"free", "https://evil.example/"},                    // anywhere else
		{"free", "https://app.example/cb?keep=1"},            // another client's redirect_uris
		{"shop", "https://app.example/cb"},                   // not exactly the configured one
		{"shop", "https://app.example/cb?keep=1&x=1"},        //
		{"free", "https://console.example/upscallback/../x"}, //
		{"free", "http://127.0.0.1@evil.example/"},           // reads as loopback, is not
		{"free", "http://localhost.evil.example/"},           //
		{"free", "http://127.0.0.1:1/#frag"},                 // fragments are refused (RFC 6749)
		{"free", "javascript:alert(1)//127.0.0.1"},           //
		{"free", "//evil.example/"},                          //
		{"free", "http://10.0.0.1/"},                         //
	} {
		resp, body := authorize(bad.client, bad.redirect)
		if resp.Header.Get("Location") != "" {
			t.Errorf("%s to %s: redirected to %q", bad.client, bad.redirect, resp.Header.Get("Location"))
			continue
		}
		wantUPSError(t, resp, body, http.StatusBadRequest, ups.CodeInvalidRequest, proxy.CodeOAuthInvalidRequest)
	}
	if n := len(e.test.requests()) + len(e.prod.requests()); n != 0 {
		t.Fatalf("%d requests reached UPS", n)
	}
}

func TestOAuth_ClientIDsAndMerchantIDPickTheCarrierAndConflictsAreRefused(t *testing.T) {
	e := newTestEnv(t, func(o *proxy.Options) {
		o.Config.Carriers = []proxy.Carrier{
			{Name: "main", Environment: ups.Production, Default: true, ShipperNumbers: []string{"111111"}},
			{Name: "cie", Environment: ups.Test, ClientIDs: []string{"warehouse"}, ShipperNumbers: []string{"222222"}},
		}
	})
	e.proxy.SetClientTokenSigner(testSigner(t))
	c, base := e.originClient(t)
	get := func(id, merchant string) (*http.Response, string) {
		h := map[string]string{"Authorization": basic(id, "x")}
		if merchant != "" {
			h["x-merchant-id"] = merchant
		}
		return tokenRequest(t, c, base+"/security/v1/oauth/token", url.Values{"grant_type": {"client_credentials"}}, h)
	}
	use := func(body string) string {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/track/v1/details/1Z", nil)
		req.Header.Set("Authorization", "Bearer "+tokenFields(t, body)["access_token"])
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		switch {
		case len(e.test.requests()) > 0 && e.test.requests()[len(e.test.requests())-1].Header.Get("Authorization") == "Bearer tok-cie-test-SECRET":
			e.test.mu.Lock()
			e.test.reqs = nil
			e.test.mu.Unlock()
			return "cie"
		case len(e.prod.requests()) > 0:
			e.prod.mu.Lock()
			e.prod.reqs = nil
			e.prod.mu.Unlock()
			return "main"
		}
		return "none"
	}
	if _, body := get("warehouse", ""); use(body) != "cie" {
		t.Error("client_ids did not pick carrier cie")
	}
	if _, body := get("someone", "222222"); use(body) != "cie" {
		t.Error("x-merchant-id did not pick carrier cie")
	}
	if _, body := get("someone", ""); use(body) != "main" {
		t.Error("no selector did not leave the default carrier")
	}
	resp, body := get("warehouse", "111111")
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get(proxy.ErrorHeader) != proxy.CodeNoCarrier ||
		!strings.Contains(body, "warehouse") || !strings.Contains(body, "111111") {
		t.Fatalf("conflict: %d %s", resp.StatusCode, body)
	}

	_, err := proxy.New(proxy.Options{Tokens: newFakeTokens(), Config: proxy.Config{
		Carriers: []proxy.Carrier{
			{Name: "a", Environment: ups.Test, ClientIDs: []string{"same"}},
			{Name: "b", Environment: ups.Test, ClientIDs: []string{"same"}},
		},
		Upstreams: map[ups.Environment]*url.URL{ups.Test: e.test.hostURL(t)},
	}})
	if err == nil || !strings.Contains(err.Error(), `"same"`) {
		t.Fatalf("a client id of two carriers: %v", err)
	}
}
