package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

func rateBody(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../examples/rate-request.json")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// legacyRequest builds a Rate call as legacy software sends it: access-key
// headers, a stale Authorization, and our own routing header.
func legacyRequest(t *testing.T, method, target, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("AccessLicenseNumber", "LEGACY-ACCESS-KEY-1")
	req.Header.Set("Username", "legacy-user")
	req.Header.Set("Password", "legacy-password-123")
	req.Header.Set("Authorization", "Basic bGVnYWN5OmNyZWRz")
	req.Header.Set("X-Upsproxy-Carrier", "main")
	rememberSecret("legacy-password-123")
	rememberSecret("LEGACY-ACCESS-KEY-1")
	return req
}

func TestEndToEnd_RateThroughEachProxyModeReachesUPSWithBearerAndNoLegacyHeaders(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.login("main")
	s := e.serve()

	modes := []struct {
		name   string
		client *http.Client
		target string
	}{
		{"https forward proxy (CONNECT + MITM)", e.proxyClient(s), "https://wwwcie.ups.com/api/rating/v2409/Rate"},
		{"http forward proxy (absolute-form)", e.proxyClient(s), "http://wwwcie.ups.com/api/rating/v2409/Rate"},
		{"base-URL mode (origin-form)", directClient(), "http://" + s.addr + "/api/rating/v2409/Rate"},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e.sim.ResetRequests()
			resp, err := m.client.Do(legacyRequest(t, http.MethodPost, m.target, rateBody(t)))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, body %s", resp.StatusCode, body)
			}
			if !strings.Contains(string(body), "RatedShipment") {
				t.Fatalf("no rated shipment in the answer: %s", body)
			}
			reqs := e.sim.Requests()
			if len(reqs) != 1 {
				t.Fatalf("simulator saw %d API requests, want 1", len(reqs))
			}
			got := reqs[0]
			if got.Path != "/api/rating/v2409/Rate" {
				t.Errorf("upstream path %q", got.Path)
			}
			rec, err := e.store.Get(context.Background(), "main", ups.Test)
			if err != nil {
				t.Fatal(err)
			}
			if want := "Bearer " + rec.Token.AccessToken; got.Header.Get("Authorization") != want {
				t.Errorf("simulator did not see the stored bearer token")
			}
			for _, h := range []string{"AccessLicenseNumber", "Username", "Password", "X-Upsproxy-Carrier", "Proxy-Authorization", "Proxy-Connection"} {
				if v := got.Header.Values(h); len(v) > 0 {
					t.Errorf("header %s reached UPS", h)
				}
			}
			if len(got.Header.Get("transId")) != 32 || got.Header.Get("transactionSrc") == "" {
				t.Errorf("transId %q / transactionSrc %q not added", got.Header.Get("transId"), got.Header.Get("transactionSrc"))
			}
		})
	}
	// One access line per proxied request.
	n := 0
	for _, l := range s.lines() {
		if l["path"] == "/api/rating/v2409/Rate" && l["status"] != nil {
			n++
		}
	}
	if n != len(modes) {
		t.Errorf("%d access log lines for %d requests:\n%s", n, len(modes), s.logs.String())
	}
}

func TestEndToEnd_RefreshStormOf200ConcurrentRequestsSpendsTheRefreshTokenOnce(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.login("main")
	e.expireAccessToken("main")
	s := e.serve()
	client := e.proxyClient(s)
	body := rateBody(t)

	const n = 200
	if failed := callsAtOnce(t, client, n, "https://wwwcie.ups.com/api/rating/v2409/Shop", body); len(failed) > 0 {
		t.Fatalf("%d of %d requests failed; the first: %v", len(failed), n, failed[0])
	}
	if got := e.sim.Stats().Refreshes; got != 1 {
		t.Fatalf("simulator counted %d refreshes, want exactly 1", got)
	}
	// The new pair lands in Vault (behind the requests already using it).
	rec := e.storedWhen(t, "main", ups.Test, func(r vaultstore.Record) bool { return r.Token.RefreshCount >= 1 })
	e.rememberStoredTokens("main", ups.Test)
	if rec.Token.RefreshCount != 1 || !rec.Token.ExpiresAt.After(time.Now()) {
		t.Fatalf("Vault holds %v, want the refreshed pair", rec)
	}
}

// wantProxyError checks SPEC's error shape.
func wantProxyError(t *testing.T, resp *http.Response, status int, code string) string {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, b)
	}
	if got := resp.Header.Get("X-Upsproxy-Error"); got != code {
		t.Fatalf("X-Upsproxy-Error %q, want %q", got, code)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var env ups.Envelope
	if err := json.Unmarshal(b, &env); err != nil || len(env.Response.Errors) != 1 {
		t.Fatalf("not a UPS error envelope: %s", b)
	}
	if env.Response.Errors[0].Code != code {
		t.Fatalf("envelope code %q, want %q", env.Response.Errors[0].Code, code)
	}
	return env.Response.Errors[0].Message
}

func TestEndToEnd_ExpiredRefreshTokenGetsSPECErrorAndAnErrorLogNamingTheLoginCommand(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.login("main")
	expired := time.Date(2026, 2, 2, 10, 32, 51, 0, time.UTC)
	e.editRecord("main", ups.Test, func(r *vaultstore.Record) {
		r.Token.ExpiresAt = expired
		r.Token.RefreshExpiresAt = expired
	})
	s := e.serve()
	resp, err := e.proxyClient(s).Do(legacyRequest(t, http.MethodPost, "https://wwwcie.ups.com/api/rating/v2409/Rate", rateBody(t)))
	if err != nil {
		t.Fatal(err)
	}
	msg := wantProxyError(t, resp, http.StatusUnauthorized, "UPSPROXY_REFRESH_TOKEN_EXPIRED")
	want := `The UPS refresh token for carrier "main" (test) expired at 2026-02-02T10:32:51Z. An admin must run: upsproxy login --carrier main --env test`
	if msg != want {
		t.Fatalf("message\n got %q\nwant %q", msg, want)
	}
	l := s.waitLog(t, "error", "refresh token expired")
	if l["carrier"] != "main" || l["environment"] != "test" || !strings.Contains(fmt.Sprint(l), "upsproxy login --carrier main --env test") {
		t.Fatalf("error log line lacks carrier/environment/command: %v", l)
	}
	if e.sim.Stats().Refreshes != 0 || len(e.sim.Requests()) != 0 {
		t.Fatal("an expired refresh token must not be sent to UPS, nor the request")
	}
}

func TestEndToEnd_RefreshTokenRejectedByUPSGetsRefreshTokenExpiredNotARetryStorm(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.login("main")
	e.expireAccessToken("main")
	e.sim.RejectRefreshTokens()
	s := e.serve()
	client := e.proxyClient(s)
	for i := 0; i < 3; i++ {
		resp, err := client.Do(legacyRequest(t, http.MethodPost, "https://wwwcie.ups.com/api/rating/v2409/Rate", rateBody(t)))
		if err != nil {
			t.Fatal(err)
		}
		msg := wantProxyError(t, resp, http.StatusUnauthorized, "UPSPROXY_REFRESH_TOKEN_EXPIRED")
		if !strings.Contains(msg, "upsproxy login --carrier main --env test") {
			t.Fatalf("message does not name the login command: %q", msg)
		}
	}
	if got := e.sim.Stats().Refreshes + e.sim.Stats().RefreshRejected; got != 1 {
		t.Fatalf("UPS saw %d refresh attempts, want 1 (the rejection is remembered)", got)
	}
	rec, err := e.store.Get(context.Background(), "main", ups.Test)
	if err != nil || !rec.Rejected {
		t.Fatalf("Vault record not marked rejected: %v %v", rec, err)
	}
}

func TestEndToEnd_RefreshTokenExpiringIn72hLogsAWarningAtStartup(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.login("main")
	e.editRecord("main", ups.Test, func(r *vaultstore.Record) { r.Token.RefreshExpiresAt = time.Now().Add(72 * time.Hour) })
	s := e.serve()
	l := s.waitLog(t, "warn", "refresh token expires soon")
	if l["carrier"] != "main" || l["environment"] != "test" || l["refresh_token_expires_at"] == nil {
		t.Fatalf("warning lacks fields: %v", l)
	}
	if d, _ := l["days_left"].(float64); d != 2 {
		t.Fatalf("days_left = %v, want 2 (71h59m left)", l["days_left"])
	}
}

func TestEndToEnd_NeverLoggedInGetsNotLoggedIn(t *testing.T) {
	e := newEnv(t, envOptions{})
	s := e.serve()
	resp, err := directClient().Post("http://"+s.addr+"/api/rating/v2409/Rate", "application/json", strings.NewReader(rateBody(t)))
	if err != nil {
		t.Fatal(err)
	}
	msg := wantProxyError(t, resp, http.StatusUnauthorized, "UPSPROXY_NOT_LOGGED_IN")
	if !strings.Contains(msg, "upsproxy login --carrier main --env test") {
		t.Fatalf("message does not say how to log in: %q", msg)
	}
}

func TestEndToEnd_NonUPSHostsAreRefusedAndNothingIsDialled(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.login("main")
	s := e.serve()

	// A listener that counts connections: the proxy must never dial it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var dialled sync.WaitGroup
	accepted := make(chan struct{}, 10)
	dialled.Add(1)
	go func() {
		defer dialled.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close()
		}
	}()

	client := e.proxyClient(s)
	for _, target := range []string{
		"http://" + ln.Addr().String() + "/api/rating/v2409/Rate",
		"http://example.com/api/rating/v2409/Rate",
	} {
		resp, err := client.Post(target, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		wantProxyError(t, resp, http.StatusForbidden, "UPSPROXY_HOST_NOT_ALLOWED")
	}
	// CONNECT elsewhere: the client sees the refusal as a proxy error.
	if _, err := client.Get("https://" + ln.Addr().String() + "/"); err == nil {
		t.Fatal("CONNECT to a non-UPS address succeeded")
	}
	ln.Close()
	dialled.Wait()
	if len(accepted) != 0 {
		t.Fatalf("the proxy dialled a non-UPS target %d times", len(accepted))
	}
	if len(e.sim.Requests()) != 0 {
		t.Fatal("a refused request reached UPS")
	}
}

func TestEndToEnd_ClientCredentialsCarrierNeedsNoLoginAndSendsTheMerchantID(t *testing.T) {
	e := newEnv(t, envOptions{carriers: `
carrier "cc" {
  environment   = "test"
  default       = true
  grant         = "client_credentials"
  client_id     = "test-client-id"
  client_secret = file("ups-secret")
  merchant_id   = "W599Y7"
}
`})
	s := e.serve()
	for i := 0; i < 3; i++ {
		req := legacyRequest(t, http.MethodPost, "https://wwwcie.ups.com/api/rating/v2409/Rate", rateBody(t))
		req.Header.Del("X-Upsproxy-Carrier") // the default carrier
		resp, err := e.proxyClient(s).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if n := e.sim.Stats().ClientCredentialsGrants; n != 1 {
		t.Fatalf("%d client-credentials grants for 3 requests, want 1", n)
	}
	var merchant string
	for _, r := range e.sim.OAuthRequests() {
		if v := r.Header.Get("x-merchant-id"); v != "" {
			merchant = v
		}
	}
	if merchant != "W599Y7" {
		t.Fatalf("x-merchant-id %q, want the carrier's merchant_id", merchant)
	}
	// The minted token lands in Vault behind the requests using it.
	rec := e.storedWhen(t, "cc", ups.Test, func(r vaultstore.Record) bool { return r.Token.AccessToken != "" })
	if rec.Grant != "client_credentials" || rec.Token.RefreshToken != "" {
		t.Fatalf("stored %v", rec)
	}
	e.rememberStoredTokens("cc", ups.Test)
	r := e.run("", "token", "check")
	if r.code != 0 {
		t.Fatalf("token check on a client-credentials carrier: exit %d %s", r.code, r.stdout)
	}
}
