package main

// End-to-end tests of the request path (issue 4): carrier resolution, the
// environment guard, legacy clients, safe replay, abuse resistance and
// every error code of SPEC, each through a real `upsproxy serve` with a
// real HTTP client, the UPS simulator and a real Vault.

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/upssim"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// pxCarrier renders a test-environment carrier block registered with the
// simulator; extra goes inside the block.
func pxCarrier(name, extra string) string {
	return fmt.Sprintf(`
carrier %q {
  environment   = "test"
  client_id     = "test-client-id"
  client_secret = file("ups-secret")
  redirect_uri  = "https://127.0.0.1/upscallback"
%s
}
`, name, extra)
}

// pxHash is a bcrypt hash of a proxy password, at the lowest cost to keep
// tests fast (the proxy caches verifications anyway).
func pxHash(t *testing.T, password string) string {
	t.Helper()
	rememberSecret(password)
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func pxBasic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// pxResult is a response with its body read.
type pxResult struct {
	status int
	header http.Header
	body   string
}

func pxDo(t *testing.T, client *http.Client, req *http.Request) pxResult {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return pxResult{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func pxRequest(t *testing.T, method, target, body string, header map[string]string) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return req
}

// pxWantError checks SPEC's error shape on a read response.
func pxWantError(t *testing.T, r pxResult, status int, code string) string {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if got := r.header.Get("X-Upsproxy-Error"); got != code {
		t.Fatalf("X-Upsproxy-Error %q, want %q (body %s)", got, code, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	d, ok := ups.ParseEnvelope([]byte(r.body))
	if !ok || d.Code != code || d.Message == "" {
		t.Fatalf("not a UPS envelope with code %s: %s", code, r.body)
	}
	return d.Message
}

// pxCarrierSeen names the carrier whose stored access token authorized the
// simulator's most recent API request.
func (e *env) pxCarrierSeen(t *testing.T, carriers ...string) string {
	t.Helper()
	reqs := e.sim.Requests()
	if len(reqs) == 0 {
		t.Fatal("no request reached the simulator")
	}
	bearer := reqs[len(reqs)-1].Header.Get("Authorization")
	for _, c := range carriers {
		rec, err := e.store.Get(context.Background(), c, ups.Test)
		if err == nil && bearer == "Bearer "+rec.Token.AccessToken {
			return c
		}
	}
	return "(none of " + strings.Join(carriers, ", ") + ")"
}

// pxRateBody is the example Rate request with its Shipper and payment
// changed by edit (a decoded copy).
func pxRateBody(t *testing.T, edit func(shipment map[string]any)) string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(rateBody(t)), &doc); err != nil {
		t.Fatal(err)
	}
	shipment := doc["RateRequest"].(map[string]any)["Shipment"].(map[string]any)
	if edit != nil {
		edit(shipment)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func shipper(s map[string]any) map[string]any { return s["Shipper"].(map[string]any) }

// pxPutToken stores a valid token pair for a carrier without a login, for
// carriers whose UPS host the test makes unreachable.
func (e *env) pxPutToken(t *testing.T, carrier string, environment ups.Environment) {
	t.Helper()
	now := time.Now()
	rec := vaultstore.Record{
		Carrier: carrier, Environment: environment, Grant: ups.GrantAuthorizationCode,
		Token: ups.Token{
			TokenType: "Bearer", AccessToken: "px-" + carrier + "-access-token", RefreshToken: "px-" + carrier + "-refresh-token",
			Status: "approved", IssuedAt: now, ExpiresAt: now.Add(4 * time.Hour),
			RefreshIssuedAt: now, RefreshExpiresAt: now.Add(60 * 24 * time.Hour),
		},
		UpdatedAt: now, UpdatedBy: "test",
	}
	rememberSecret(rec.Token.AccessToken)
	rememberSecret(rec.Token.RefreshToken)
	if _, err := e.store.Put(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
}

// pxRewriteConfig edits the installation's config file.
func (e *env) pxRewriteConfig(t *testing.T, old, replacement string) {
	t.Helper()
	b, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("config has no %q", old)
	}
	writeFile(t, e.cfgPath, strings.Replace(string(b), old, replacement, 1))
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestEndToEnd_EverySPECErrorCodeIsReachableThroughTheRealServer(t *testing.T) {
	type setup struct {
		o      envOptions
		before func(t *testing.T, e *env) // after newEnv, before serve
	}
	const rate = "/api/rating/v2409/Rate"
	cases := []struct {
		name   string
		setup  setup
		send   func(t *testing.T, e *env, s *server) pxResult
		status int
		code   string
		wantIn string // in the message
	}{
		{
			name: "refresh token past its expiry: the login to run is named",
			setup: setup{before: func(t *testing.T, e *env) {
				e.login("main")
				e.editRecord("main", ups.Test, func(r *vaultstore.Record) {
					r.Token.ExpiresAt = time.Now().Add(-time.Hour)
					r.Token.RefreshExpiresAt = time.Now().Add(-time.Minute)
				})
			}},
			send:   pxPost(rate, nil),
			status: 401, code: "UPSPROXY_REFRESH_TOKEN_EXPIRED", wantIn: "upsproxy login --carrier main --env test",
		},
		{
			name:   "no tokens stored for the carrier",
			send:   pxPost(rate, nil),
			status: 401, code: "UPSPROXY_NOT_LOGGED_IN", wantIn: "upsproxy login --carrier main --env test",
		},
		{
			name: "client blocks configured and the request carries no proxy credentials",
			setup: setup{o: envOptions{extra: `client "wh1" {
  password_hash = "` + pxHash(t, "wh1-proxy-password") + `"
}`}, before: func(t *testing.T, e *env) { e.login("main") }},
			send: pxPost(rate, nil),
			// Base-URL mode with no credentials at all: 401 (plus
			// WWW-Authenticate: Bearer), so OAuth clients fetch a token.
			status: 401, code: "UPSPROXY_PROXY_AUTH_REQUIRED", wantIn: "Proxy-Authorization",
		},
		{
			name:   "X-Upsproxy-Carrier names no configured carrier",
			send:   pxPost(rate, map[string]string{"X-Upsproxy-Carrier": "nosuch"}),
			status: 400, code: "UPSPROXY_NO_CARRIER", wantIn: `"nosuch"`,
		},
		{
			name:   "carrier marked inactive",
			setup:  setup{o: envOptions{carriers: pxCarrier("main", "default = true") + pxCarrier("old", "inactive = true")}},
			send:   pxPost(rate, map[string]string{"X-Upsproxy-Carrier": "old"}),
			status: 403, code: "UPSPROXY_CARRIER_INACTIVE", wantIn: `"old"`,
		},
		{
			name: "absolute-form request for a host that is not UPS",
			send: func(t *testing.T, e *env, s *server) pxResult {
				return pxDo(t, e.proxyClient(s), pxRequest(t, http.MethodPost, "http://example.com"+rate, "{}", nil))
			},
			status: 403, code: "UPSPROXY_HOST_NOT_ALLOWED", wantIn: "onlinetools.ups.com",
		},
		{
			name: "request addressed to the Test host for a production carrier",
			setup: setup{o: envOptions{carriers: pxCarrier("main", "default = true") +
				strings.Replace(pxCarrier("prod", ""), `"test"`, `"production"`, 1)}},
			send: func(t *testing.T, e *env, s *server) pxResult {
				return pxDo(t, e.proxyClient(s), pxRequest(t, http.MethodPost, "https://wwwcie.ups.com"+rate, rateBody(t),
					map[string]string{"X-Upsproxy-Carrier": "prod"}))
			},
			status: 403, code: "UPSPROXY_ENVIRONMENT_MISMATCH", wantIn: "wwwcie.ups.com",
		},
		{
			// serve refuses to start without Vault, so Vault stops once it
			// runs, before any token was loaded: the carrier has none stored.
			// The broker remembers "not logged in" for a few seconds, then
			// asks Vault again and finds it gone.
			name: "Vault stopped before any token was loaded",
			send: func(t *testing.T, e *env, s *server) pxResult {
				e.vault.Stop()
				deadline := time.Now().Add(20 * time.Second)
				for {
					r := pxPost(rate, nil)(t, e, s)
					if r.status != http.StatusUnauthorized || time.Now().After(deadline) {
						return r
					}
					pxWantError(t, r, http.StatusUnauthorized, "UPSPROXY_NOT_LOGGED_IN")
					time.Sleep(250 * time.Millisecond)
				}
			},
			status: 503, code: "UPSPROXY_TOKEN_STORE_UNAVAILABLE", wantIn: `"main"`,
		},
		{
			name: "access token expired and UPS's token endpoint answers 503",
			setup: setup{before: func(t *testing.T, e *env) {
				e.login("main")
				e.editRecord("main", ups.Test, func(r *vaultstore.Record) { r.Token.ExpiresAt = time.Now().Add(-time.Minute) })
				e.sim.SetFault(upssim.Fault{Endpoint: upssim.EndpointRefresh, Status: http.StatusServiceUnavailable})
			}},
			send:   pxPost(rate, nil),
			status: 502, code: "UPSPROXY_TOKEN_REFRESH_FAILED", wantIn: `"main"`,
		},
		{
			name: "UPS unreachable: production_url points at a closed port",
			setup: setup{
				o: envOptions{carriers: pxCarrier("main", "default = true") +
					strings.Replace(pxCarrier("prod", ""), `"test"`, `"production"`, 1)},
				before: func(t *testing.T, e *env) {
					e.pxRewriteConfig(t, `production_url = "`+e.simURL+`"`, `production_url = "http://`+closedPort(t)+`"`)
					e.pxPutToken(t, "prod", ups.Production)
				},
			},
			send:   pxPost(rate, map[string]string{"X-Upsproxy-Carrier": "prod"}),
			status: 502, code: "UPSPROXY_UPSTREAM_UNAVAILABLE", wantIn: "could not reach UPS",
		},
		{
			name: "UPS does not answer within upstream_timeout",
			setup: setup{o: envOptions{extra: `limits {
  upstream_timeout = "1s"
}`}, before: func(t *testing.T, e *env) {
				e.login("main")
				e.sim.SetFault(upssim.Fault{Endpoint: upssim.EndpointAPI, Delay: 5 * time.Second, Times: 1})
			}},
			send:   pxPost(rate, nil),
			status: 504, code: "UPSPROXY_UPSTREAM_UNAVAILABLE", wantIn: "in time",
		},
		{
			name: "request body over max_request_body",
			setup: setup{o: envOptions{extra: `limits {
  max_request_body = "16KiB"
}`}, before: func(t *testing.T, e *env) { e.login("main") }},
			send: func(t *testing.T, e *env, s *server) pxResult {
				big := `{"RateRequest":{"Pad":"` + strings.Repeat("x", 20<<10) + `"}}`
				return pxDo(t, directClient(), pxRequest(t, http.MethodPost, "http://"+s.addr+rate, big, nil))
			},
			status: 413, code: "UPSPROXY_REQUEST_TOO_LARGE", wantIn: "16384",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.setup.o)
			if c.setup.before != nil {
				c.setup.before(t, e)
			}
			s := e.serve()
			before := e.sim.Stats().APICalls
			msg := pxWantError(t, c.send(t, e, s), c.status, c.code)
			if !strings.Contains(msg, c.wantIn) {
				t.Errorf("message %q does not mention %q", msg, c.wantIn)
			}
			if c.code != "UPSPROXY_UPSTREAM_UNAVAILABLE" && e.sim.Stats().APICalls != before {
				t.Errorf("a refused request reached UPS")
			}
			// The access line names the code, for ops and metrics.
			found := false
			for _, l := range s.lines() {
				if l["msg"] == "request" && l["error_code"] == c.code {
					found = true
				}
			}
			if !found {
				t.Errorf("no access log line with error_code %s:\n%s", c.code, s.logs.String())
			}
		})
	}
}

// pxPost sends a Rate call in base-URL mode.
func pxPost(path string, header map[string]string) func(t *testing.T, e *env, s *server) pxResult {
	return func(t *testing.T, e *env, s *server) pxResult {
		return pxDo(t, directClient(), pxRequest(t, http.MethodPost, "http://"+s.addr+path, rateBody(t), header))
	}
}

// resolutionEnv: three carriers with shipper accounts, a client pinned to
// "second" and a free one.
func resolutionEnv(t *testing.T) (*env, *server) {
	t.Helper()
	clients := fmt.Sprintf(`
client "wh1" {
  password_hash = %q
  carrier       = "second"
}
client "any" {
  password_hash = %q
}
`, pxHash(t, "wh1-proxy-password"), pxHash(t, "any-proxy-password"))
	carriers := pxCarrier("main", `  default = true
  shipper_account "main-acct" {
    number  = "A11111"
    default = true
  }`) + pxCarrier("second", `  fill_shipper_number = true
  shipper_account "second-acct" {
    number  = "B22222"
    default = true
  }`) + pxCarrier("third", `  shipper_account "third-acct" {
    number = "C33333"
  }`)
	e := newEnv(t, envOptions{carriers: carriers, extra: clients})
	for _, c := range []string{"main", "second", "third"} {
		e.login(c)
	}
	return e, e.serve()
}

func TestEndToEnd_CarrierResolutionFollowsSPECsOrderAndRefusesConflicts(t *testing.T) {
	e, s := resolutionEnv(t)
	anyAuth := pxBasic("any", "any-proxy-password")
	wh1Auth := pxBasic("wh1", "wh1-proxy-password")
	withNumber := func(n string) string {
		return pxRateBody(t, func(sh map[string]any) { shipper(sh)["ShipperNumber"] = n })
	}
	noNumber := pxRateBody(t, func(sh map[string]any) { delete(shipper(sh), "ShipperNumber") })
	charge := func(shipmentCharge any) string {
		return pxRateBody(t, func(sh map[string]any) {
			delete(shipper(sh), "ShipperNumber")
			sh["PaymentDetails"] = map[string]any{"ShipmentCharge": shipmentCharge}
		})
	}
	bill := func(n string) map[string]any {
		return map[string]any{"Type": "01", "BillShipper": map[string]any{"AccountNumber": n}}
	}

	cases := []struct {
		name        string
		header      map[string]string
		body        string
		wantCarrier string
		wantStatus  int
		wantCode    string
		wantIn      []string
	}{
		{name: "nothing names a carrier: the default one",
			header: map[string]string{"Proxy-Authorization": anyAuth}, body: noNumber, wantCarrier: "main"},
		{name: "X-Upsproxy-Carrier header",
			header: map[string]string{"Proxy-Authorization": anyAuth, "X-Upsproxy-Carrier": "third"}, body: noNumber, wantCarrier: "third"},
		{name: "Shipper.ShipperNumber in the body",
			header: map[string]string{"Proxy-Authorization": anyAuth}, body: withNumber("B22222"), wantCarrier: "second"},
		{name: "shipper number compared case-insensitively",
			header: map[string]string{"Proxy-Authorization": anyAuth}, body: withNumber("c33333"), wantCarrier: "third"},
		{name: "ShipmentCharge as a single object (legacy clients)",
			header: map[string]string{"Proxy-Authorization": anyAuth}, body: charge(bill("C33333")), wantCarrier: "third"},
		{name: "ShipmentCharge as an array, account in the second entry",
			header:      map[string]string{"Proxy-Authorization": anyAuth},
			body:        charge([]any{map[string]any{"Type": "02", "BillReceiver": map[string]any{"AccountNumber": "ZZ9999"}}, bill("B22222")}),
			wantCarrier: "second"},
		{name: "shipperNumber header",
			header: map[string]string{"Proxy-Authorization": anyAuth, "shipperNumber": "B22222"}, body: noNumber, wantCarrier: "second"},
		{name: "a number no carrier owns is left to UPS: the default carrier",
			header: map[string]string{"Proxy-Authorization": anyAuth}, body: withNumber("W599Y7"), wantCarrier: "main"},
		{name: "the proxy user's client block pins its carrier",
			header: map[string]string{"Proxy-Authorization": wh1Auth}, body: noNumber, wantCarrier: "second"},
		{name: "the pinned client's request naming its own carrier's account",
			header: map[string]string{"Proxy-Authorization": wh1Auth}, body: withNumber("b22222"), wantCarrier: "second"},
		{name: "pinned client naming another carrier in the header is refused",
			header:     map[string]string{"Proxy-Authorization": wh1Auth, "X-Upsproxy-Carrier": "third"},
			body:       noNumber,
			wantStatus: 403, wantCode: "UPSPROXY_NO_CARRIER", wantIn: []string{`"wh1"`, `"second"`, `"third"`}},
		{name: "pinned client naming another carrier's shipper account is refused",
			header:     map[string]string{"Proxy-Authorization": wh1Auth},
			body:       withNumber("C33333"),
			wantStatus: 403, wantCode: "UPSPROXY_NO_CARRIER", wantIn: []string{`"wh1"`, `"second"`, `"C33333"`, `"third"`}},
		{name: "header and shipper number naming different carriers conflict",
			header:     map[string]string{"Proxy-Authorization": anyAuth, "X-Upsproxy-Carrier": "main"},
			body:       withNumber("B22222"),
			wantStatus: 400, wantCode: "UPSPROXY_NO_CARRIER", wantIn: []string{`"main"`, `"second"`, `"B22222"`}},
		{name: "shipper numbers of two carriers in one body conflict",
			header: map[string]string{"Proxy-Authorization": anyAuth},
			body: pxRateBody(t, func(sh map[string]any) {
				shipper(sh)["ShipperNumber"] = "A11111"
				sh["PaymentDetails"] = map[string]any{"ShipmentCharge": []any{bill("C33333")}}
			}),
			wantStatus: 400, wantCode: "UPSPROXY_NO_CARRIER", wantIn: []string{`"main"`, `"third"`}},
		{name: "no credentials at all (base-URL mode): 401 with WWW-Authenticate, so OAuth clients fetch a token",
			header: nil, body: noNumber, wantStatus: 401, wantCode: "UPSPROXY_PROXY_AUTH_REQUIRED", wantIn: []string{"/security/v1/oauth/token"}},
		{name: "wrong proxy password",
			header: map[string]string{"Proxy-Authorization": pxBasic("any", "guess")}, body: noNumber,
			wantStatus: 407, wantCode: "UPSPROXY_PROXY_AUTH_REQUIRED", wantIn: []string{"wrong"}},
		{name: "plain Authorization is not taken as proxy credentials",
			header: map[string]string{"Authorization": anyAuth}, body: noNumber, wantStatus: 407, wantCode: "UPSPROXY_PROXY_AUTH_REQUIRED"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(e.sim.Requests())
			r := pxDo(t, directClient(), pxRequest(t, http.MethodPost, "http://"+s.addr+"/api/rating/v2409/Rate", c.body, c.header))
			if c.wantCode != "" {
				msg := pxWantError(t, r, c.wantStatus, c.wantCode)
				for _, w := range c.wantIn {
					if !strings.Contains(msg, w) {
						t.Errorf("message %q does not mention %s", msg, w)
					}
				}
				if c.wantStatus == http.StatusProxyAuthRequired && r.header.Get("Proxy-Authenticate") != `Basic realm="upsproxy"` {
					t.Errorf("Proxy-Authenticate = %q", r.header.Get("Proxy-Authenticate"))
				}
				if c.wantCode == "UPSPROXY_PROXY_AUTH_REQUIRED" && c.wantStatus == http.StatusUnauthorized &&
					(r.header.Get("WWW-Authenticate") != `Bearer realm="upsproxy"` || r.header.Get("Proxy-Authenticate") != "") {
					t.Errorf("WWW-Authenticate = %q, Proxy-Authenticate = %q", r.header.Get("WWW-Authenticate"), r.header.Get("Proxy-Authenticate"))
				}
				if len(e.sim.Requests()) != before {
					t.Error("a refused request reached UPS")
				}
				return
			}
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if got := e.pxCarrierSeen(t, "main", "second", "third"); got != c.wantCarrier {
				t.Errorf("UPS saw carrier %s's token, want %s's", got, c.wantCarrier)
			}
			reqs := e.sim.Requests()
			if reqs[len(reqs)-1].Header.Get("Proxy-Authorization") != "" {
				t.Error("proxy credentials reached UPS")
			}
		})
	}

	t.Run("HTTPS proxy mode: credentials from the proxy URL authenticate the CONNECT and every request in the tunnel", func(t *testing.T) {
		pu, _ := url.Parse("http://wh1:wh1-proxy-password@" + s.addr)
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			Proxy: http.ProxyURL(pu), TLSClientConfig: e.proxyClient(s).Transport.(*http.Transport).TLSClientConfig,
		}}
		for range 2 {
			r := pxDo(t, client, pxRequest(t, http.MethodPost, "https://wwwcie.ups.com/api/rating/v2409/Rate", noNumber, nil))
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if got := e.pxCarrierSeen(t, "main", "second", "third"); got != "second" {
				t.Errorf("UPS saw carrier %s, want wh1's pinned carrier second", got)
			}
		}
		// Without credentials the CONNECT itself is refused with 407.
		_, err := e.proxyClient(s).Get("https://wwwcie.ups.com/api/track/v1/details/1Z999AA10123456784")
		if err == nil || !strings.Contains(err.Error(), "Proxy Authentication Required") {
			t.Errorf("CONNECT without credentials: err = %v, want a 407", err)
		}
	})

	t.Run("fill_shipper_number fills a missing Shipper.ShipperNumber, body and Content-Length consistent", func(t *testing.T) {
		for _, body := range []string{noNumber, withNumber("")} {
			r := pxDo(t, directClient(), pxRequest(t, http.MethodPost, "http://"+s.addr+"/api/rating/v2409/Rate", body,
				map[string]string{"Proxy-Authorization": wh1Auth}))
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			reqs := e.sim.Requests()
			got := reqs[len(reqs)-1]
			var doc struct {
				RateRequest struct {
					Shipment struct{ Shipper map[string]any }
				}
			}
			if err := json.Unmarshal(got.Body, &doc); err != nil {
				t.Fatalf("UPS got a body that is not JSON: %v", err)
			}
			if n := doc.RateRequest.Shipment.Shipper["ShipperNumber"]; n != "B22222" {
				t.Errorf("UPS saw ShipperNumber %v, want the default account B22222 filled in", n)
			}
			if doc.RateRequest.Shipment.Shipper["Name"] != "SalesPad Warehouse" {
				t.Errorf("the rest of Shipper was not kept: %v", doc.RateRequest.Shipment.Shipper)
			}
		}
		// A carrier without fill_shipper_number gets the body byte for byte.
		r := pxDo(t, directClient(), pxRequest(t, http.MethodPost, "http://"+s.addr+"/api/rating/v2409/Rate", noNumber,
			map[string]string{"Proxy-Authorization": anyAuth}))
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		reqs := e.sim.Requests()
		if got := string(reqs[len(reqs)-1].Body); got != noNumber {
			t.Errorf("a carrier without fill_shipper_number got an edited body:\n got %s\nwant %s", got, noNumber)
		}
	})

	// The access log names the proxy user, never the password.
	for _, l := range s.lines() {
		if l["msg"] == "request" && l["status"] == float64(200) && l["client"] == nil {
			t.Errorf("access line without the proxy user: %v", l)
			break
		}
	}
}

func TestEndToEnd_LegacyClientsReachUPSCleanOnTodaysPaths(t *testing.T) {
	e := newEnv(t, envOptions{extra: `
rewrite "erp-rate" {
  match   = "^/erp/quote$"
  replace = "/api/rating/v2409/Shop"
}
rewrite "ops-override" {
  match   = "^/ship/v1/rating/Ratetimeintransit$"
  replace = "/api/rating/v2409/Ratetimeintransit"
}
`})
	e.login("main")
	s := e.serve()

	security := `"UPSSecurity":{"UsernameToken":{"Username":"legacy-user","Password":"legacy-password-123"},` +
		`"ServiceAccessToken":{"AccessLicenseNumber":"LEGACY-ACCESS-KEY-1"}}`
	rememberSecret("legacy-password-123")
	rememberSecret("LEGACY-ACCESS-KEY-1")
	rate := rateBody(t)
	inner := strings.TrimSpace(rate)
	inner = inner[1 : len(inner)-1] // the members of the example's top-level object
	shop := strings.Replace(rate, `"TransactionReference"`, `"RequestOption":"Shop","TransactionReference"`, 1)
	shopInner := strings.TrimSpace(shop)
	shopInner = shopInner[1 : len(shopInner)-1]

	cases := []struct {
		name, method, path, body string
		wantPath                 string
		wantStatus               int
	}{
		{"pre-2019 /rest/Rate with UPSSecurity first and RequestOption Shop",
			http.MethodPost, "/rest/Rate", "{" + security + "," + shopInner + "}", "/api/rating/v1/Shop", 200},
		{"pre-2019 /rest/Rate with UPSSecurity last (PHP clients append it) and no RequestOption",
			http.MethodPost, "/rest/Rate", "{" + inner + ",\n  " + security + "\n}", "/api/rating/v1/Rate", 200},
		{"2019-era /ship/v1/rating/Rate with access-key headers",
			http.MethodPost, "/ship/v1/rating/Rate", rate, "/api/rating/v1/Rate", 200},
		{"2019-era /ship/v1807/rating/Shop",
			http.MethodPost, "/ship/v1807/rating/Shop", rate, "/api/rating/v1807/Shop", 200},
		{"2019-era /track/v1/details/{inquiryNumber}",
			http.MethodGet, "/track/v1/details/1Z999AA10123456784", "", "/api/track/v1/details/1Z999AA10123456784", 0},
		{"2019-era /ship/v1/shipments/cancel/{id}",
			http.MethodDelete, "/ship/v1/shipments/cancel/1ZISDE016691676846", "", "/api/shipments/v1/void/cancel/1ZISDE016691676846", 0},
		{"ops' rewrite block for their own legacy path",
			http.MethodPost, "/erp/quote", rate, "/api/rating/v2409/Shop", 200},
		{"ops' rewrite block takes precedence over a built-in translation",
			http.MethodPost, "/ship/v1/rating/Ratetimeintransit", rate, "/api/rating/v2409/Ratetimeintransit", 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.sim.ResetRequests()
			req := legacyRequest(t, c.method, "http://"+s.addr+c.path, c.body)
			req.Header.Del("X-Upsproxy-Carrier")
			if c.body == "" {
				req.Body, req.ContentLength = http.NoBody, 0
			}
			r := pxDo(t, directClient(), req)
			if c.wantStatus != 0 && r.status != c.wantStatus {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			reqs := e.sim.Requests()
			if len(reqs) != 1 {
				t.Fatalf("simulator saw %d requests, want 1", len(reqs))
			}
			got := reqs[0]
			if got.Path != c.wantPath {
				t.Errorf("UPS saw path %s, want %s", got.Path, c.wantPath)
			}
			for _, h := range []string{"AccessLicenseNumber", "Username", "Password"} {
				if len(got.Header.Values(h)) > 0 {
					t.Errorf("legacy header %s reached UPS", h)
				}
			}
			if strings.Contains(string(got.Body), "UPSSecurity") || strings.Contains(string(got.Body), "legacy-password") {
				t.Errorf("UPSSecurity reached UPS: %s", got.Body)
			}
			if c.body != "" && !json.Valid(got.Body) {
				t.Errorf("UPS got invalid JSON: %s", got.Body)
			}
			if c.body != "" && !strings.Contains(c.body, "UPSSecurity") && string(got.Body) != c.body {
				t.Errorf("a body without UPSSecurity was changed")
			}
			if got.Header.Get("Authorization") == "" {
				t.Error("no bearer token")
			}
		})
	}
}

func TestEndToEnd_RateIsReplayedOnceAfterUPSRevokesTheTokenButShipNever(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.login("main")
	s := e.serve()
	client := directClient()
	base := "http://" + s.addr

	// Warm up: the token works.
	if r := pxDo(t, client, pxRequest(t, http.MethodPost, base+"/api/rating/v2409/Rate", rateBody(t), nil)); r.status != 200 {
		t.Fatalf("warm-up status %d: %s", r.status, r.body)
	}

	t.Run("Rate: UPS says 250002, the proxy refreshes once and replays once, the client sees 200", func(t *testing.T) {
		e.sim.RevokeAccessTokens()
		before := e.sim.Stats()
		body := rateBody(t)
		r := pxDo(t, client, pxRequest(t, http.MethodPost, base+"/api/rating/v2409/Rate", body, nil))
		if r.status != http.StatusOK || !strings.Contains(r.body, "RatedShipment") {
			t.Fatalf("client got %d %s, want the replayed 200", r.status, r.body)
		}
		after := e.sim.Stats()
		if calls := after.APICalls - before.APICalls; calls != 2 {
			t.Errorf("UPS saw %d API calls, want 2 (the refused one and one replay)", calls)
		}
		if refreshes := after.Refreshes - before.Refreshes; refreshes != 1 {
			t.Errorf("UPS saw %d refreshes, want 1", refreshes)
		}
		reqs := e.sim.Requests()
		last, first := reqs[len(reqs)-1], reqs[len(reqs)-2]
		if string(last.Body) != body || string(first.Body) != body {
			t.Error("the replay did not carry the same body")
		}
		if last.Header.Get("Authorization") == first.Header.Get("Authorization") {
			t.Error("the replay carried the refused token")
		}
		e.rememberStoredTokens("main", ups.Test)
		l := s.waitLog(t, "info", "replayed the request once")
		if l["carrier"] != "main" {
			t.Errorf("replay log line: %v", l)
		}
	})

	t.Run("Ship: never replayed, the client gets UPS's 401 envelope unchanged", func(t *testing.T) {
		e.sim.RevokeAccessTokens()
		before := e.sim.Stats()
		r := pxDo(t, client, pxRequest(t, http.MethodPost, base+"/api/shipments/v2409/ship", `{"ShipmentRequest":{}}`, nil))
		if r.status != http.StatusUnauthorized || r.header.Get("X-Upsproxy-Error") != "" {
			t.Fatalf("client got %d (X-Upsproxy-Error %q) %s, want UPS's own 401", r.status, r.header.Get("X-Upsproxy-Error"), r.body)
		}
		if d, ok := ups.ParseEnvelope([]byte(r.body)); !ok || d.Code != ups.CodeInvalidAuth {
			t.Errorf("client got %s, want UPS's 250002 envelope", r.body)
		}
		after := e.sim.Stats()
		if calls := after.APICalls - before.APICalls; calls != 1 {
			t.Errorf("UPS saw %d Ship calls, want exactly 1", calls)
		}
		if after.Refreshes != before.Refreshes {
			t.Errorf("a Ship 401 caused a refresh")
		}
	})
}

func TestEndToEnd_AbuseIsRefusedWithoutDiallingAnything(t *testing.T) {
	t.Run("oversized bodies: Content-Length refused up front, a chunked body cut off", func(t *testing.T) {
		e := newEnv(t, envOptions{extra: `limits {
  max_request_body = "8KiB"
}`})
		e.login("main")
		s := e.serve()
		big := `{"ShipmentRequest":{"Pad":"` + strings.Repeat("x", 64<<10) + `"}}`
		for _, chunked := range []bool{false, true} {
			req := pxRequest(t, http.MethodPost, "http://"+s.addr+"/api/shipments/v2409/ship", big, nil)
			if chunked {
				req.Body = io.NopCloser(strings.NewReader(big)) // no length known: sent chunked
				req.ContentLength = -1
			}
			pxWantError(t, pxDo(t, directClient(), req), http.StatusRequestEntityTooLarge, "UPSPROXY_REQUEST_TOO_LARGE")
		}
		if n := len(e.sim.Requests()); n != 0 {
			// A chunked body is streamed until it passes the limit, so UPS
			// may have seen the start of it, but never a complete request.
			for _, r := range e.sim.Requests() {
				if len(r.Body) > 8<<10 {
					t.Errorf("UPS got %d bytes of an oversized body", len(r.Body))
				}
			}
		}
		// The proxy still serves normal requests.
		if r := pxDo(t, directClient(), pxRequest(t, http.MethodPost, "http://"+s.addr+"/api/rating/v2409/Rate", rateBody(t), nil)); r.status != 200 {
			t.Fatalf("normal request after the refusals: %d %s", r.status, r.body)
		}
	})

	t.Run("a client that sends half a request line and stalls is cut off after read_header_timeout", func(t *testing.T) {
		e := newEnv(t, envOptions{extra: `limits {
  read_header_timeout = "1s"
}`})
		s := e.serve()
		conn, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		if _, err := io.WriteString(conn, "POST /api/rat"); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.Copy(io.Discard, conn) // returns when the server closes
		took := time.Since(start)
		if err != nil {
			t.Fatalf("the server did not close the connection: %v after %s", err, took)
		}
		if took < 900*time.Millisecond || took > 5*time.Second {
			t.Errorf("connection closed after %s, want about read_header_timeout (1s)", took)
		}
		if len(e.sim.Requests()) != 0 {
			t.Error("a half request reached UPS")
		}
	})

	t.Run("a client address outside allow_cidrs is refused", func(t *testing.T) {
		e := newEnv(t, envOptions{extra: `allow_cidrs = ["10.0.0.0/8", "192.168.0.0/16"]`})
		e.login("main")
		s := e.serve()
		msg := pxWantError(t, pxDo(t, directClient(), pxRequest(t, http.MethodPost, "http://"+s.addr+"/api/rating/v2409/Rate", rateBody(t), nil)),
			http.StatusForbidden, "UPSPROXY_CLIENT_NOT_ALLOWED")
		if !strings.Contains(msg, "127.0.0.1") {
			t.Errorf("message %q does not name the client address", msg)
		}
		if _, err := e.proxyClient(s).Get("https://wwwcie.ups.com/api/track/v1/details/1Z999AA10123456784"); err == nil {
			t.Error("CONNECT from a refused address succeeded")
		}
		if len(e.sim.Requests()) != 0 {
			t.Error("a refused client's request reached UPS")
		}
	})

	t.Run("allow_cidrs containing the client's address lets it through", func(t *testing.T) {
		e := newEnv(t, envOptions{extra: `allow_cidrs = ["127.0.0.0/8"]`})
		e.login("main")
		s := e.serve()
		if r := pxDo(t, directClient(), pxRequest(t, http.MethodPost, "http://"+s.addr+"/api/rating/v2409/Rate", rateBody(t), nil)); r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	})

	t.Run("absolute-form to loopback and to a non-UPS name, CONNECT elsewhere: 403, nothing dialled", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		e.login("main")
		s := e.serve()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		accepted := make(chan struct{}, 10)
		go func() {
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
		for _, target := range []string{"http://" + ln.Addr().String() + "/api/rating/v2409/Rate", "http://ups.example.com/api/rating/v2409/Rate",
			"http://[::1]:443/api/track/v1/details/1Z"} {
			pxWantError(t, pxDo(t, client, pxRequest(t, http.MethodPost, target, "{}", nil)), http.StatusForbidden, "UPSPROXY_HOST_NOT_ALLOWED")
		}
		conn, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", ln.Addr(), ln.Addr())
		resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: http.MethodConnect})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Upsproxy-Error") != "UPSPROXY_HOST_NOT_ALLOWED" {
			t.Errorf("CONNECT to loopback: %d %q", resp.StatusCode, resp.Header.Get("X-Upsproxy-Error"))
		}
		ln.Close()
		if len(accepted) != 0 {
			t.Fatalf("the proxy dialled a refused target %d times", len(accepted))
		}
		if len(e.sim.Requests()) != 0 {
			t.Fatal("a refused request reached UPS")
		}
	})
}

func TestEndToEnd_AccessLogCarriesTheTransIDUPSSaw(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.login("main")
	s := e.serve()
	for _, sent := range []string{"", "erp-trans-0001"} {
		h := map[string]string{}
		if sent != "" {
			h["transId"] = sent
		}
		e.sim.ResetRequests()
		if r := pxDo(t, directClient(), pxRequest(t, http.MethodPost, "http://"+s.addr+"/api/rating/v2409/Rate", rateBody(t), h)); r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		id := e.sim.Requests()[0].Header.Get("transId")
		if sent != "" && id != sent {
			t.Errorf("UPS saw transId %q, want the client's %q", id, sent)
		}
		found := false
		for _, l := range s.lines() {
			if l["msg"] == "request" && l["trans_id"] == id {
				found = true
			}
		}
		if !found {
			t.Errorf("no access log line with trans_id %q:\n%s", id, s.logs.String())
		}
	}
}

func TestEndToEnd_EnvironmentGuardSendsProductionAddressedCallsOfATestCarrierToTestAndRefusesTheReverse(t *testing.T) {
	e := newEnv(t, envOptions{carriers: pxCarrier("main", "default = true") +
		strings.Replace(pxCarrier("prod", ""), `"test"`, `"production"`, 1)})
	e.login("main")
	s := e.serve()

	t.Run("production host addressed, test carrier: sent to test", func(t *testing.T) {
		r := pxDo(t, e.proxyClient(s), pxRequest(t, http.MethodPost, "https://onlinetools.ups.com/api/rating/v2409/Rate", rateBody(t), nil))
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if got := e.pxCarrierSeen(t, "main"); got != "main" {
			t.Errorf("UPS (test) saw %s", got)
		}
		s.waitLog(t, "debug", "production host addressed, carrier is a test carrier")
	})

	modes := []struct {
		name string
		send func(t *testing.T) pxResult
	}{
		{"HTTPS proxy (CONNECT wwwcie.ups.com:443)", func(t *testing.T) pxResult {
			return pxDo(t, e.proxyClient(s), pxRequest(t, http.MethodPost, "https://wwwcie.ups.com/api/shipments/v2409/ship", "{}",
				map[string]string{"X-Upsproxy-Carrier": "prod"}))
		}},
		{"HTTP proxy (absolute-form http://wwwcie.ups.com)", func(t *testing.T) pxResult {
			return pxDo(t, e.proxyClient(s), pxRequest(t, http.MethodPost, "http://wwwcie.ups.com/api/shipments/v2409/ship", "{}",
				map[string]string{"X-Upsproxy-Carrier": "prod"}))
		}},
		{"base-URL mode with Host: wwwcie.ups.com (hosts-file redirection)", func(t *testing.T) pxResult {
			req := pxRequest(t, http.MethodPost, "http://"+s.addr+"/api/shipments/v2409/ship", "{}", map[string]string{"X-Upsproxy-Carrier": "prod"})
			req.Host = "wwwcie.ups.com"
			return pxDo(t, directClient(), req)
		}},
	}
	for _, m := range modes {
		t.Run("test host addressed, production carrier, "+m.name+": refused", func(t *testing.T) {
			before := len(e.sim.Requests())
			pxWantError(t, m.send(t), http.StatusForbidden, "UPSPROXY_ENVIRONMENT_MISMATCH")
			if len(e.sim.Requests()) != before {
				t.Error("the refused request reached UPS")
			}
		})
	}
}
