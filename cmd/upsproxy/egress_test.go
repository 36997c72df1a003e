package main

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upsproxy/upsproxy/internal/testutil/egresstest"
	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

const (
	egressUser = "corp-proxy-user"
	egressPass = "egress-pa55:w@rd"
)

// egressEnv is an installation whose UPS (the simulator, over TLS) is
// reached through eg; setEgress changes the URL ups.egress_proxy reads
// from the file "egress-url" ("" means direct).
func egressEnv(t *testing.T, eg *egresstest.Proxy) (e *env, setEgress func(url string)) {
	t.Helper()
	rememberEgressPassword(egressPass)
	e = newEnv(t, envOptions{tlsUpstream: true, ups: `egress_proxy = file("egress-url")`})
	setEgress = func(url string) { writeFile(t, filepath.Join(e.dir, "egress-url"), url) }
	setEgress(eg.URLWith(egressUser, egressPass))
	return e, setEgress
}

func (e *env) simHost() string { return strings.TrimPrefix(e.simURL, "https://") }

func rateVia(t *testing.T, c *http.Client, target string) *http.Response {
	t.Helper()
	resp, err := c.Do(legacyRequest(t, http.MethodPost, target, rateBody(t)))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestEgress_LoginRequestsAndRefreshesThroughServeGoViaTheEgressProxy(t *testing.T) {
	eg := egresstest.Start(t, egresstest.Options{Username: egressUser, Password: egressPass})
	e, _ := egressEnv(t, eg)
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(egressUser+":"+egressPass))

	e.login("main")
	if c := eg.ConnectsTo(e.simHost()); len(c) != 1 {
		t.Fatalf("login: egress proxy saw %+v, want one CONNECT to %s", eg.Connects(), e.simHost())
	}
	e.expireAccessToken("main")
	s := e.serve()
	for _, m := range []struct {
		name   string
		client *http.Client
		target string
	}{
		{"https forward proxy (CONNECT + MITM)", e.proxyClient(s), "https://wwwcie.ups.com/api/rating/v2409/Rate"},
		{"base-URL mode (origin-form)", directClient(), "http://" + s.addr + "/api/rating/v2409/Rate"},
	} {
		e.sim.ResetRequests()
		resp := rateVia(t, m.client, m.target)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", m.name, resp.StatusCode, body)
		}
		reqs := e.sim.Requests()
		if len(reqs) != 1 {
			t.Fatalf("%s: UPS saw %d requests, want 1", m.name, len(reqs))
		}
		// The refreshed pair lands in Vault behind the request using it.
		e.storedWhen(t, "main", ups.Test, func(r vaultstore.Record) bool {
			return reqs[0].Header.Get("Authorization") == "Bearer "+r.Token.AccessToken
		})
		e.rememberStoredTokens("main", ups.Test)
	}
	if n := e.sim.Stats().Refreshes; n != 1 {
		t.Fatalf("%d refreshes, want 1 (the expired access token)", n)
	}
	// The refresh and the API requests went through the egress proxy: its
	// only tunnels are to UPS, each with the credentials.
	connects := eg.Connects()
	if len(connects) < 2 {
		t.Fatalf("egress proxy saw %d CONNECTs, want the login's and serve's", len(connects))
	}
	for _, c := range connects {
		if c.Target != e.simHost() || c.ProxyAuthorization != wantAuth || !c.Allowed {
			t.Errorf("CONNECT %s (allowed %v) with other credentials, want %s with the configured ones", c.Target, c.Allowed, e.simHost())
		}
	}
	if strings.Contains(s.logs.String(), "Proxy-Authorization") {
		t.Error("the log mentions the proxy credentials header")
	}
}

func TestEgress_AWrongEgressPasswordIsUpstreamUnavailableOrTokenRefreshFailedAndNeverLogged(t *testing.T) {
	eg := egresstest.Start(t, egresstest.Options{Username: egressUser, Password: egressPass})
	e, setEgress := egressEnv(t, eg)
	e.login("main")
	const wrong = "wrong-egress-pass-7"
	rememberEgressPassword(wrong)
	setEgress(eg.URLWith(egressUser, wrong))
	const why = "answered 407 Proxy Authentication Required (check the user and password of ups.egress_proxy)"

	// A fresh access token: the request itself cannot reach UPS.
	s := e.serve()
	msg := wantProxyError(t, rateVia(t, directClient(), "http://"+s.addr+"/api/rating/v2409/Rate"), http.StatusBadGateway, "UPSPROXY_UPSTREAM_UNAVAILABLE")
	if strings.Contains(msg, wrong) {
		t.Fatal("the client's error shows the password")
	}
	waitLogText(t, s, "egress proxy "+eg.URL.Host+": CONNECT "+e.simHost()+": "+why)
	s.stop(t)

	// An expired access token: the refresh cannot reach UPS, and nothing is
	// spent or marked rejected.
	e.expireAccessToken("main")
	s = e.serve()
	wantProxyError(t, rateVia(t, directClient(), "http://"+s.addr+"/api/rating/v2409/Rate"), http.StatusBadGateway, "UPSPROXY_TOKEN_REFRESH_FAILED")
	waitLogText(t, s, why)
	s.stop(t)
	r := e.run("", "token", "refresh", "--carrier", "main")
	if r.code == 0 || !strings.Contains(r.stderr, why) {
		t.Fatalf("token refresh: exit %d\n%s", r.code, r.stderr)
	}
	if st := e.sim.Stats(); st.Refreshes != 0 || st.RefreshRejected != 0 || st.APICalls != 0 {
		t.Fatalf("UPS saw %+v through an egress proxy that refused every tunnel", st)
	}
	for _, c := range eg.Connects()[1:] {
		if c.Allowed {
			t.Fatalf("the egress proxy opened a tunnel for the wrong password: %+v", c)
		}
	}

	// The right password again: the same refresh token still works.
	setEgress(eg.URLWith(egressUser, egressPass))
	if r := e.run("", "token", "refresh", "--carrier", "main"); r.code != 0 {
		t.Fatalf("token refresh with the right password: exit %d\n%s", r.code, r.stderr)
	}
	e.rememberStoredTokens("main", ups.Test)
}

func TestEgress_ATLSInspectingEgressProxyFailsClosed(t *testing.T) {
	eg := egresstest.Start(t, egresstest.Options{MITM: true})
	e, setEgress := egressEnv(t, eg)
	setEgress("") // direct, to log in
	e.login("main")
	setEgress(eg.URL.String())
	before := len(e.sim.OAuthRequests())

	s := e.serve()
	wantProxyError(t, rateVia(t, e.proxyClient(s), "https://wwwcie.ups.com/api/rating/v2409/Rate"), http.StatusBadGateway, "UPSPROXY_UPSTREAM_UNAVAILABLE")
	waitLogText(t, s, "TLS with 127.0.0.1 inside the tunnel: tls: failed to verify certificate: x509: certificate signed by unknown authority (does the egress proxy inspect TLS?")
	r := e.run("", "token", "refresh", "--carrier", "main")
	if r.code == 0 || !strings.Contains(r.stderr, "does the egress proxy inspect TLS?") {
		t.Fatalf("token refresh through a TLS-inspecting proxy: exit %d\n%s", r.code, r.stderr)
	}
	code := e.sim.IssueCode(e.clientID, e.redirect, "")
	if r := e.run("", "login", "--carrier", "main", "--code", code); r.code == 0 {
		t.Fatal("login through a TLS-inspecting proxy succeeded")
	}
	if len(eg.ConnectsTo(e.simHost())) < 3 || eg.Intercepted() != 0 {
		t.Fatalf("%d CONNECTs, %d requests read by the inspecting proxy: want tunnels opened and nothing sent in them", len(eg.Connects()), eg.Intercepted())
	}
	if st := e.sim.Stats(); st.APICalls != 0 || len(e.sim.OAuthRequests()) != before {
		t.Fatalf("UPS got requests through a tunnel it did not terminate: %+v", st)
	}
}

// waitLogText waits until the server's log contains text.
func waitLogText(t *testing.T, s *server, text string) {
	t.Helper()
	waitFor(t, func() bool { return strings.Contains(s.logs.String(), text) }, "a log line containing "+text)
}

// rememberEgressPassword adds an egress password, as written in a URL and
// as sent in Proxy-Authorization, to the secrets of the log scan.
func rememberEgressPassword(pass string) {
	rememberSecret(pass)
	rememberSecret(url.UserPassword(egressUser, pass).String())
	rememberSecret(base64.StdEncoding.EncodeToString([]byte(egressUser + ":" + pass)))
}
