package proxy_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/proxy"
	"github.com/upsproxy/upsproxy/internal/ups"
)

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestEveryModeReachesUPSWithTheCarriersBearerTokenAndNoLegacyOrProxyHeaders(t *testing.T) {
	modes := []struct {
		name   string
		client func(e *testEnv, t *testing.T) (*http.Client, string)
	}{
		{"base-URL mode: origin-form request sent to the proxy itself", func(e *testEnv, t *testing.T) (*http.Client, string) { return e.originClient(t) }},
		{"HTTP forward proxy: absolute-form request for onlinetools.ups.com", func(e *testEnv, t *testing.T) (*http.Client, string) { return e.forwardClient(t) }},
		{"HTTPS forward proxy: CONNECT onlinetools.ups.com:443 decrypted with a leaf from our CA", func(e *testEnv, t *testing.T) (*http.Client, string) {
			return e.mitmClient(t, ups.ProductionHost)
		}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newTestEnv(t, nil)
			client, base := m.client(e, t)
			const reqBody = `{"RateRequest":{"Shipment":{"Shipper":{"ShipperNumber":"W599Y7"}}}}`
			req, _ := http.NewRequest(http.MethodPost, base+"/api/rating/v2409/Rate?additionalinfo=timeintransit", strings.NewReader(reqBody))
			for k, v := range strippedHeaders {
				req.Header.Set(k, v)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Custom", "passes-through")

			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("request through proxy: %v", err)
			}
			body := readBody(t, resp)

			if resp.StatusCode != http.StatusCreated || body != upsReplyBody {
				t.Errorf("client got %d %q, want UPS's 201 %q unchanged", resp.StatusCode, body, upsReplyBody)
			}
			if got := resp.Header.Get("X-Ups-Reply"); got != "kept" {
				t.Errorf("UPS response header X-Ups-Reply = %q, want it passed through", got)
			}
			if got := resp.Header.Get(proxy.ErrorHeader); got != "" {
				t.Errorf("UPS forged %s: %q reached the client", proxy.ErrorHeader, got)
			}

			seen := e.prod.requests()
			if len(seen) != 1 {
				t.Fatalf("production upstream saw %d requests, want 1", len(seen))
			}
			got := seen[0]
			if got.Method != http.MethodPost || got.Path != "/api/rating/v2409/Rate" || got.RawQuery != "additionalinfo=timeintransit" {
				t.Errorf("upstream got %s %s?%s, want the client's method, path and query", got.Method, got.Path, got.RawQuery)
			}
			if want := e.prod.hostURL(t).Host; got.Host != want {
				t.Errorf("upstream Host = %q, want the upstream's own host %q", got.Host, want)
			}
			if a := got.Header.Get("Authorization"); a != "Bearer tok-main-production-SECRET" {
				t.Errorf("upstream Authorization = %q, want the carrier's bearer token", a)
			}
			for k := range strippedHeaders {
				if k == "Authorization" {
					continue
				}
				if hasHeaderFold(got.Header, k) {
					t.Errorf("header %s reached UPS: %q", k, got.Header.Values(k))
				}
			}
			if got.Header.Get("X-Custom") != "passes-through" || got.Header.Get("Content-Type") != "application/json" {
				t.Errorf("ordinary headers were not passed through: %v", got.Header)
			}
			if got.Body != reqBody {
				t.Errorf("upstream body = %q, want %q", got.Body, reqBody)
			}
			if id := got.Header.Get("transId"); !hex32.MatchString(id) {
				t.Errorf("transId = %q, want 32 hex characters", id)
			}
			if src := got.Header.Get("transactionSrc"); src != "upsproxy" {
				t.Errorf("transactionSrc = %q, want the default %q", src, "upsproxy")
			}
			if len(e.test.requests()) != 0 {
				t.Error("a production carrier's request reached the test upstream")
			}
		})
	}
}

// envelope decodes an error response body strictly.
func envelope(t *testing.T, body string) ups.ErrorDetail {
	t.Helper()
	var env ups.Envelope
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		t.Fatalf("error body is not UPS's envelope: %v: %s", err, body)
	}
	if len(env.Response.Errors) != 1 {
		t.Fatalf("envelope has %d errors, want 1: %s", len(env.Response.Errors), body)
	}
	return env.Response.Errors[0]
}

func TestEveryProxyErrorIsAnsweredInUPSEnvelopeWithItsStatusAndErrorHeader(t *testing.T) {
	post := func(carrier string) func(e *testEnv, t *testing.T) *http.Response {
		return func(e *testEnv, t *testing.T) *http.Response {
			client, base := e.originClient(t)
			req, _ := http.NewRequest(http.MethodPost, base+"/api/rating/v2409/Rate", strings.NewReader("{}"))
			if carrier != "" {
				req.Header.Set(proxy.CarrierHeader, carrier)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}
	}
	forward := func(rawURL string) func(e *testEnv, t *testing.T) *http.Response {
		return func(e *testEnv, t *testing.T) *http.Response {
			client, _ := e.forwardClient(t)
			resp, err := client.Get(rawURL)
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}
	}
	connect := func(authority string) func(e *testEnv, t *testing.T) *http.Response {
		return func(e *testEnv, t *testing.T) *http.Response {
			return rawConnect(t, e.proxyURL.Host, authority)
		}
	}
	mitm := func(host string) func(e *testEnv, t *testing.T) *http.Response {
		return func(e *testEnv, t *testing.T) *http.Response {
			client, base := e.mitmClient(t, host)
			resp, err := client.Get(base + "/api/rating/v2409/Rate")
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}
	}

	cases := []struct {
		name        string
		mod         func(t *testing.T, o *proxy.Options)
		send        func(e *testEnv, t *testing.T) *http.Response
		wantStatus  int
		wantCode    string
		wantMessage string // exact when set
		wantIn      string // substring of the message
		reachesUPS  bool
	}{
		{name: "carrier named in X-Upsproxy-Carrier is not configured", send: post("nosuch"),
			wantStatus: 400, wantCode: proxy.CodeNoCarrier, wantIn: `"nosuch"`},
		{name: "no carrier header and no default carrier configured",
			mod: func(_ *testing.T, o *proxy.Options) {
				o.Config.Carriers = []proxy.Carrier{{Name: "main", Environment: ups.Production}}
			},
			send: post(""), wantStatus: 400, wantCode: proxy.CodeNoCarrier, wantIn: proxy.CarrierHeader},
		{name: "carrier marked inactive", send: post("old"),
			wantStatus: 403, wantCode: proxy.CodeCarrierInactive, wantIn: `"old"`},
		{name: "absolute-form request for a host that is not UPS", send: forward("http://example.com/api/rating/v2409/Rate"),
			wantStatus: 403, wantCode: proxy.CodeHostNotAllowed, wantIn: ups.ProductionHost},
		{name: "CONNECT to a host that is not UPS", send: connect("example.com:443"),
			wantStatus: 403, wantCode: proxy.CodeHostNotAllowed},
		{name: "CONNECT to a UPS host when no mitm block is configured",
			mod:  func(_ *testing.T, o *proxy.Options) { o.CA = nil },
			send: connect(ups.ProductionHost + ":443"), wantStatus: 403, wantCode: proxy.CodeMITMNotConfigured, wantIn: "mitm"},
		{name: "absolute-form request for the Test host with a production carrier", send: forward("http://" + ups.TestHost + "/api/rating/v2409/Rate"),
			wantStatus: 403, wantCode: proxy.CodeEnvironmentMismatch, wantIn: ups.TestHost},
		{name: "CONNECT to the Test host with a production carrier", send: mitm(ups.TestHost),
			wantStatus: 403, wantCode: proxy.CodeEnvironmentMismatch, wantIn: ups.TestHost},
		{name: "carrier never logged in", send: post("nologin"),
			wantStatus: 401, wantCode: proxy.CodeNotLoggedIn, wantIn: "upsproxy login --carrier nologin --env production"},
		{name: "carrier's refresh token expired", send: post("expired"),
			wantStatus: 401, wantCode: proxy.CodeRefreshTokenExpired,
			wantMessage: `The UPS refresh token for carrier "expired" (production) expired at 2026-02-02T10:32:51Z. An admin must run: upsproxy login --carrier expired --env production`},
		{name: "Vault unavailable and no token in memory", send: post("vaultdown"),
			wantStatus: 503, wantCode: proxy.CodeTokenStoreUnavailable},
		{name: "token source fails in an unplanned way", send: post("weird"),
			wantStatus: 503, wantCode: proxy.CodeTokenStoreUnavailable},
		{name: "UPS token endpoint failing", send: post("refreshfail"),
			wantStatus: 502, wantCode: proxy.CodeTokenRefreshFailed},
		{name: "UPS unreachable: connection refused",
			mod: func(t *testing.T, o *proxy.Options) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				addr := ln.Addr().String()
				ln.Close()
				o.Config.Upstreams[ups.Production] = &url.URL{Scheme: "http", Host: addr}
			},
			send: post("main"), wantStatus: 502, wantCode: proxy.CodeUpstreamUnavailable},
		{name: "UPS too slow to send response headers",
			mod: func(t *testing.T, o *proxy.Options) {
				slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					select {
					case <-r.Context().Done():
					case <-time.After(5 * time.Second):
					}
				}))
				o.Config.Upstreams[ups.Production], _ = url.Parse(slow.URL)
				tr, err := proxy.NewTransport(proxy.TransportOptions{ResponseHeaderTimeout: 100 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				o.Transport = tr
				t.Cleanup(slow.Close)
			},
			send: post("main"), wantStatus: 504, wantCode: proxy.CodeUpstreamUnavailable, reachesUPS: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newTestEnv(t, func(o *proxy.Options) {
				if c.mod != nil {
					c.mod(t, o)
				}
			})
			resp := c.send(e, t)
			body := readBody(t, resp)
			if resp.StatusCode != c.wantStatus {
				t.Errorf("status = %d, want %d (body %s)", resp.StatusCode, c.wantStatus, body)
			}
			if got := resp.Header.Get(proxy.ErrorHeader); got != c.wantCode {
				t.Errorf("%s = %q, want %q", proxy.ErrorHeader, got, c.wantCode)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			detail := envelope(t, body)
			if detail.Code != c.wantCode {
				t.Errorf("envelope code = %q, want %q", detail.Code, c.wantCode)
			}
			if c.wantMessage != "" && detail.Message != c.wantMessage {
				t.Errorf("envelope message = %q\nwant %q", detail.Message, c.wantMessage)
			}
			if !strings.Contains(detail.Message, c.wantIn) || detail.Message == "" {
				t.Errorf("envelope message %q does not mention %q", detail.Message, c.wantIn)
			}
			if strings.Contains(body, "SECRET") {
				t.Errorf("error body leaks a secret: %s", body)
			}
			if !c.reachesUPS && len(e.prod.requests())+len(e.test.requests()) != 0 {
				t.Error("a refused request reached an upstream")
			}
		})
	}
}

func TestRefusedTargetsAreNeverDialled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingListener{Listener: ln}
	target := httptest.NewUnstartedServer(http.HandlerFunc(defaultUPSHandler))
	target.Listener = counting
	target.Start()
	t.Cleanup(target.Close)
	targetURL, _ := url.Parse(target.URL)
	_, targetPort, _ := net.SplitHostPort(targetURL.Host)

	real, err := proxy.NewTransport(proxy.TransportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rt := &countingTransport{next: real}
	e := newTestEnv(t, func(o *proxy.Options) {
		o.Transport = rt
		o.Config.Upstreams[ups.Production] = targetURL
	})

	cases := []struct {
		name string
		send func(t *testing.T) *http.Response
	}{
		{"CONNECT to a host that is not UPS", func(t *testing.T) *http.Response {
			return rawConnect(t, e.proxyURL.Host, "example.com:443")
		}},
		{"CONNECT to a UPS host on port 8443", func(t *testing.T) *http.Response {
			return rawConnect(t, e.proxyURL.Host, ups.ProductionHost+":8443")
		}},
		{"CONNECT to a loopback listener", func(t *testing.T) *http.Response {
			return rawConnect(t, e.proxyURL.Host, targetURL.Host)
		}},
		{"CONNECT to a UPS host without a port", func(t *testing.T) *http.Response {
			return rawConnect(t, e.proxyURL.Host, ups.ProductionHost)
		}},
		{"absolute-form request for a loopback listener", func(t *testing.T) *http.Response {
			client, _ := e.forwardClient(t)
			resp, err := client.Get("http://127.0.0.1:" + targetPort + "/api/rating/v2409/Rate")
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}},
		{"absolute-form request for example.com", func(t *testing.T) *http.Response {
			client, _ := e.forwardClient(t)
			resp, err := client.Get("http://example.com/api/rating/v2409/Rate")
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}},
		{"absolute-form request for a UPS host on another port", func(t *testing.T) *http.Response {
			client, _ := e.forwardClient(t)
			resp, err := client.Get("http://" + ups.ProductionHost + ":8080/api/rating/v2409/Rate")
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}},
		{"absolute-form request for a UPS look-alike host", func(t *testing.T) *http.Response {
			client, _ := e.forwardClient(t)
			resp, err := client.Get("http://" + ups.ProductionHost + ".evil.example/api/rating/v2409/Rate")
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := c.send(t)
			body := readBody(t, resp)
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get(proxy.ErrorHeader) != proxy.CodeHostNotAllowed {
				t.Errorf("got %d %s=%q, want 403 %s; body %s", resp.StatusCode, proxy.ErrorHeader,
					resp.Header.Get(proxy.ErrorHeader), proxy.CodeHostNotAllowed, body)
			}
		})
	}

	// A valid request afterwards is the control: it connects once, so any
	// stray dial from the refused ones would have been accepted before it.
	client, base := e.originClient(t)
	resp, err := client.Get(base + "/api/track/v1/details/1Z999")
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if got := counting.accepts.Load(); got != 1 {
		t.Errorf("target listener accepted %d connections, want exactly 1 (the control request)", got)
	}
	if got := rt.calls.Load(); got != 1 {
		t.Errorf("upstream transport was used %d times, want exactly 1 (the control request)", got)
	}
}

func TestTransactionHeadersAreAddedWhenMissingAndKeptWhenPresent(t *testing.T) {
	e := newTestEnv(t, func(o *proxy.Options) { o.Config.TransactionSrc = "erp-bridge" })
	client, base := e.originClient(t)
	send := func(h map[string]string) recorded {
		t.Helper()
		before := len(e.prod.requests())
		req, _ := http.NewRequest(http.MethodGet, base+"/api/track/v1/details/1Z999", nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		seen := e.prod.requests()
		if len(seen) != before+1 {
			t.Fatalf("upstream saw %d requests, want %d", len(seen), before+1)
		}
		return seen[len(seen)-1]
	}

	first, second := send(nil), send(nil)
	id1, id2 := first.Header.Get("transId"), second.Header.Get("transId")
	if !hex32.MatchString(id1) || !hex32.MatchString(id2) || id1 == id2 {
		t.Errorf("generated transIds %q and %q: want two different 32-hex-character ids", id1, id2)
	}
	if got := first.Header.Get("transactionSrc"); got != "erp-bridge" {
		t.Errorf("transactionSrc = %q, want the configured %q", got, "erp-bridge")
	}

	kept := send(map[string]string{"transId": "client-trans-0001", "transactionSrc": "LegacyERP"})
	if got := kept.Header.Values("transId"); len(got) != 1 || got[0] != "client-trans-0001" {
		t.Errorf("client's transId became %q, want it kept as is", got)
	}
	if got := kept.Header.Values("transactionSrc"); len(got) != 1 || got[0] != "LegacyERP" {
		t.Errorf("client's transactionSrc became %q, want it kept as is", got)
	}
}

func TestUPSErrorsPassThroughButUPSCannotForgeTheProxysErrorHeader(t *testing.T) {
	const upsErr = `{"response":{"errors":[{"code":"250002","message":"Invalid Authentication Information."}]}}`
	e := newTestEnv(t, nil)
	e.prod.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(proxy.ErrorHeader, proxy.CodeRefreshTokenExpired)
		w.Header().Set("X-Upsproxy-Other", "forged")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, upsErr)
	})
	client, base := e.originClient(t)
	resp, err := client.Get(base + "/api/track/v1/details/1Z999")
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusUnauthorized || body != upsErr {
		t.Errorf("client got %d %s, want UPS's 401 envelope unchanged", resp.StatusCode, body)
	}
	for k := range resp.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-upsproxy-") {
			t.Errorf("upstream header %s: %q reached the client", k, resp.Header.Values(k))
		}
	}
}

func TestCarrierEnvironmentPicksTheUpstreamWhateverHostWasAddressed(t *testing.T) {
	cases := []struct {
		name     string
		carrier  string
		client   func(e *testEnv, t *testing.T) (*http.Client, string)
		wantTest bool
		token    string
	}{
		{"test carrier named by header, base-URL mode", "cie",
			func(e *testEnv, t *testing.T) (*http.Client, string) { return e.originClient(t) }, true, "tok-cie-test-SECRET"},
		{"test carrier while the client addressed the production host", "cie",
			func(e *testEnv, t *testing.T) (*http.Client, string) { return e.forwardClient(t) }, true, "tok-cie-test-SECRET"},
		{"test carrier through a CONNECT tunnel to the test host", "cie",
			func(e *testEnv, t *testing.T) (*http.Client, string) { return e.mitmClient(t, ups.TestHost) }, true, "tok-cie-test-SECRET"},
		{"default production carrier, base-URL mode", "",
			func(e *testEnv, t *testing.T) (*http.Client, string) { return e.originClient(t) }, false, "tok-main-production-SECRET"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newTestEnv(t, nil)
			client, base := c.client(e, t)
			req, _ := http.NewRequest(http.MethodGet, base+"/api/track/v1/details/1Z999", nil)
			if c.carrier != "" {
				req.Header.Set(proxy.CarrierHeader, c.carrier)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, resp)
			want, other := e.prod, e.test
			if c.wantTest {
				want, other = e.test, e.prod
			}
			seen := want.requests()
			if len(seen) != 1 || len(other.requests()) != 0 {
				t.Fatalf("wanted upstream saw %d requests, the other %d; want 1 and 0", len(seen), len(other.requests()))
			}
			if got := seen[0].Header.Get("Authorization"); got != "Bearer "+c.token {
				t.Errorf("Authorization = %q, want the %s carrier's token", got, c.carrier)
			}
		})
	}
}

func TestBaseURLModeWithTheTestHostAsHostHeaderIsGuardedAgainstProduction(t *testing.T) {
	e := newTestEnv(t, nil)
	client, base := e.originClient(t)
	req, _ := http.NewRequest(http.MethodPost, base+"/api/shipments/v2409/ship", strings.NewReader("{}"))
	req.Host = ups.TestHost // a hosts-file redirection of wwwcie.ups.com to the proxy
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get(proxy.ErrorHeader) != proxy.CodeEnvironmentMismatch {
		t.Errorf("got %d %q, want 403 %s", resp.StatusCode, resp.Header.Get(proxy.ErrorHeader), proxy.CodeEnvironmentMismatch)
	}
}

func TestRequestAndResponseBodiesAreStreamedNotBuffered(t *testing.T) {
	modes := []struct {
		name   string
		client func(e *testEnv, t *testing.T) (*http.Client, string)
	}{
		{"base-URL mode", func(e *testEnv, t *testing.T) (*http.Client, string) { return e.originClient(t) }},
		{"CONNECT tunnel with MITM", func(e *testEnv, t *testing.T) (*http.Client, string) {
			return e.mitmClient(t, ups.ProductionHost)
		}},
	}
	// Every body's first body_scan_limit bytes are read and scanned before
	// anything is sent; the rest streams, scanned on the way.
	small := func(o *proxy.Options) { o.Config.BodyScanLimit = 4 }
	for _, m := range modes {
		t.Run(m.name+", Ship with a body over the scan limit", func(t *testing.T) {
			testStreaming(t, m.client, "/api/shipments/v2409/ship", small)
		})
		t.Run(m.name+", Rate with a body over the scan limit (only the limit is buffered for a replay)", func(t *testing.T) {
			testStreaming(t, m.client, "/api/rating/v2409/Rate", small)
		})
	}
}

// The request body of testStreaming, sent in two parts: a JSON object.
const streamPart1, streamPart2 = `{"a":"`, `x"}`

// testStreaming: UPS sees the start of the request body while the client is
// still sending it, and the client sees the start of the response while UPS
// is still sending it. A buffering proxy fails here (bounded by timeouts).
func testStreaming(t *testing.T, mkClient func(e *testEnv, t *testing.T) (*http.Client, string), path string, mod func(*proxy.Options)) {
	firstPart := make(chan string, 1)
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	e := newTestEnv(t, mod)
	e.prod.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, len(streamPart1))
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			firstPart <- "error: " + err.Error()
			return
		}
		firstPart <- string(buf)
		rest, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "head;")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		_, _ = io.WriteString(w, "tail:"+string(rest))
	})
	client, base := mkClient(e, t)
	pr, pw := io.Pipe()
	t.Cleanup(func() { releaseAll(); pw.Close() })
	go func() { _, _ = io.WriteString(pw, streamPart1) }()

	done := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, base+path, pr)
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()

	select {
	case got := <-firstPart:
		if got != streamPart1 {
			t.Fatalf("upstream read %q first", got)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("UPS did not get the start of the body before the client finished sending it: the proxy buffers request bodies")
	}
	_, _ = io.WriteString(pw, streamPart2)
	pw.Close()

	var resp *http.Response
	select {
	case resp = <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("the client did not get UPS's response headers while UPS was still streaming the body")
	}
	if resp == nil {
		return
	}
	head := make([]byte, 5)
	readHead := make(chan error, 1)
	go func() { _, err := io.ReadFull(resp.Body, head); readHead <- err }()
	select {
	case err := <-readHead:
		if err != nil || string(head) != "head;" {
			t.Fatalf("first response bytes %q, %v", head, err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the client did not get the start of the response body while UPS was still sending it: the proxy buffers responses")
	}
	releaseAll()
	if rest := readBody(t, resp); rest != "tail:"+streamPart2 {
		t.Errorf("rest of response = %q, want %q", rest, "tail:"+streamPart2)
	}
}

func TestMITMNeverNegotiatesHTTP2SoTokenInjectionCannotBeBypassed(t *testing.T) {
	e := newTestEnv(t, nil)
	tlsConf := tlsConfigTrusting(e.caPool)
	tlsConf.NextProtos = []string{"h2", "http/1.1"}
	tr := &http.Transport{Proxy: http.ProxyURL(e.proxyURL), TLSClientConfig: tlsConf, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	req, _ := http.NewRequest(http.MethodGet, "https://"+ups.ProductionHost+"/api/track/v1/details/1Z999", nil)
	req.Header.Set("Authorization", "Bearer client-supplied")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if resp.ProtoMajor != 1 {
		t.Errorf("MITM tunnel negotiated %s, want HTTP/1.1", resp.Proto)
	}
	seen := e.prod.requests()
	if len(seen) != 1 || seen[0].Header.Get("Authorization") != "Bearer tok-main-production-SECRET" {
		t.Errorf("an h2-capable client's request reached UPS as %+v, want the carrier's token injected", seen)
	}
}

func TestClientsClosingEachConnectionStillShareAPooledUpstreamConnection(t *testing.T) {
	e := newTestEnv(t, nil)
	client, base := e.originClient(t)
	for range 3 {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/track/v1/details/1Z999", nil)
		req.Close = true // "Connection: close", like HTTP/1.0-era software
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
	}
	seen := e.prod.requests()
	if len(seen) != 3 {
		t.Fatalf("upstream saw %d requests, want 3", len(seen))
	}
	for _, r := range seen[1:] {
		if r.RemoteAddr != seen[0].RemoteAddr {
			t.Errorf("upstream connections %s then %s: want one keep-alive connection reused", seen[0].RemoteAddr, r.RemoteAddr)
		}
		if hasHeaderFold(r.Header, "Connection") {
			t.Errorf("client's Connection header reached UPS: %q", r.Header.Values("Connection"))
		}
	}
}

func TestUpstreamOverVerifiedTLSWithExtraCAFile(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(defaultUPSHandler))
	t.Cleanup(up.Close)
	caFile := writeCertPEM(t, up.Certificate().Raw)

	cases := []struct {
		name       string
		opts       proxy.TransportOptions
		wantStatus int
		wantCode   string
	}{
		{"upstream certificate trusted through CAFile", proxy.TransportOptions{CAFile: caFile}, http.StatusCreated, ""},
		{"upstream certificate not trusted: refused, never skipped", proxy.TransportOptions{}, http.StatusBadGateway, proxy.CodeUpstreamUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, err := proxy.NewTransport(c.opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(tr.CloseIdleConnections)
			upURL, _ := url.Parse(up.URL)
			e := newTestEnv(t, func(o *proxy.Options) {
				o.Transport = tr
				o.Config.Upstreams[ups.Production] = upURL
			})
			client, base := e.originClient(t)
			resp, err := client.Get(base + "/api/track/v1/details/1Z999")
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, resp)
			if resp.StatusCode != c.wantStatus || resp.Header.Get(proxy.ErrorHeader) != c.wantCode {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, resp.Header.Get(proxy.ErrorHeader), c.wantStatus, c.wantCode)
			}
		})
	}
}

func TestNewTransportRejectsACAFileWithoutCertificates(t *testing.T) {
	path := t.TempDir() + "/empty.pem"
	if err := writeFile(path, "not a certificate"); err != nil {
		t.Fatal(err)
	}
	if _, err := proxy.NewTransport(proxy.TransportOptions{CAFile: path}); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("NewTransport with a garbage CA file: err = %v, want a clear error", err)
	}
}

func TestAccessLogHasOneLinePerRequestWithSpecFieldsAndNoSecrets(t *testing.T) {
	e := newTestEnv(t, nil)
	client, base := e.originClient(t)
	send := func(carrier string) {
		req, _ := http.NewRequest(http.MethodPost, base+"/api/rating/v2409/Rate", strings.NewReader(`{"secret-body":"BODY-SECRET"}`))
		for k, v := range strippedHeaders {
			req.Header.Set(k, v)
		}
		req.Header.Set(proxy.CarrierHeader, carrier)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
	}
	send("main")
	send("expired")

	lines := e.logs.FilterMessage("request").All()
	if len(lines) != 2 {
		t.Fatalf("got %d access log lines, want 2", len(lines))
	}
	ok := lines[0].ContextMap()
	for _, f := range []string{"carrier", "environment", "method", "path", "status", "duration", "trans_id"} {
		if _, present := ok[f]; !present {
			t.Errorf("access line lacks field %q: %v", f, ok)
		}
	}
	if ok["carrier"] != "main" || ok["environment"] != "production" || ok["status"] != int64(201) ||
		ok["path"] != "/api/rating/v2409/Rate" || ok["method"] != "POST" {
		t.Errorf("access line = %v", ok)
	}
	if _, present := ok["error_code"]; present {
		t.Errorf("a proxied request's line has error_code: %v", ok)
	}
	failed := lines[1].ContextMap()
	if failed["error_code"] != proxy.CodeRefreshTokenExpired || failed["status"] != int64(401) {
		t.Errorf("failed request's line = %v, want error_code and status", failed)
	}
	if failed["login_command"] != "upsproxy login --carrier expired --env production" {
		t.Errorf("expired refresh token's line does not say which login to run: %v", failed)
	}

	all, _ := json.Marshal(e.logs.All())
	var everything strings.Builder
	everything.Write(all)
	for _, entry := range e.logs.All() {
		m, _ := json.Marshal(entry.ContextMap())
		everything.Write(m)
	}
	for _, secret := range []string{"tok-main-production-SECRET", "legacy-password-SECRET", "ALN-SECRET", "cHJveHk6cHJveHktcGFzc3dvcmQ=", "BODY-SECRET", "bGVnYWN5OmxlZ2FjeQ=="} {
		if strings.Contains(everything.String(), secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
}

func TestNewRefusesInconsistentCarriers(t *testing.T) {
	up := &url.URL{Scheme: "https", Host: ups.ProductionHost}
	ups2 := map[ups.Environment]*url.URL{ups.Production: up, ups.Test: {Scheme: "https", Host: ups.TestHost}}
	cfg := func(carriers ...proxy.Carrier) proxy.Config { return proxy.Config{Upstreams: ups2, Carriers: carriers} }
	cases := []struct {
		name string
		opts proxy.Options
		want string
	}{
		{"no token source", proxy.Options{Config: proxy.Config{Upstreams: ups2}}, "Tokens"},
		{"two default carriers", proxy.Options{Tokens: newFakeTokens(), Config: cfg(
			proxy.Carrier{Name: "a", Environment: ups.Production, Default: true}, proxy.Carrier{Name: "b", Environment: ups.Test, Default: true})}, "default"},
		{"duplicate carrier name", proxy.Options{Tokens: newFakeTokens(), Config: cfg(
			proxy.Carrier{Name: "a", Environment: ups.Production}, proxy.Carrier{Name: "a", Environment: ups.Test})}, "twice"},
		{"unknown environment", proxy.Options{Tokens: newFakeTokens(), Config: cfg(
			proxy.Carrier{Name: "a", Environment: "staging"})}, "staging"},
		{"no upstream for the carrier's environment", proxy.Options{Tokens: newFakeTokens(), Config: proxy.Config{
			Upstreams: map[ups.Environment]*url.URL{ups.Production: up}, Carriers: []proxy.Carrier{
				{Name: "a", Environment: ups.Test}}}}, "no upstream"},
		{"upstream URL that is not http(s)", proxy.Options{Tokens: newFakeTokens(), Config: proxy.Config{
			Upstreams: map[ups.Environment]*url.URL{ups.Production: {Scheme: "ftp", Host: "x"}}, Carriers: []proxy.Carrier{
				{Name: "a", Environment: ups.Production}}}}, "http(s)"},
		{"one shipper number claimed by two carriers", proxy.Options{Tokens: newFakeTokens(), Config: cfg(
			proxy.Carrier{Name: "a", Environment: ups.Production, ShipperNumbers: []string{"W599Y7"}},
			proxy.Carrier{Name: "b", Environment: ups.Production, ShipperNumbers: []string{"w599y7"}})}, "W599Y7"},
		{"fill_shipper_number without a default account", proxy.Options{Tokens: newFakeTokens(), Config: cfg(
			proxy.Carrier{Name: "a", Environment: ups.Production, FillShipperNumber: true})}, "fill_shipper_number"},
		{"client pinned to an unknown carrier", proxy.Options{Tokens: newFakeTokens(), Config: proxy.Config{Upstreams: ups2,
			Carriers: []proxy.Carrier{{Name: "a", Environment: ups.Production}},
			Clients:  []proxy.Client{{Name: "wh1", PasswordHash: "$2a$04$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01", Carrier: "b"}}}}, "unknown carrier"},
		{"rewrite leading outside /api/", proxy.Options{Tokens: newFakeTokens(), Config: proxy.Config{Upstreams: ups2,
			Rewrites: []proxy.Rewrite{{Name: "evil", Match: regexp.MustCompile(`^/x$`), Replace: "/security/v1/oauth/token"}}}}, "/api/"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := proxy.New(c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("New: err = %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

func TestUpdateSwapsCarriersAndKeepsTheOldOnesOnError(t *testing.T) {
	e := newTestEnv(t, nil)
	client, base := e.originClient(t)
	status := func(carrier string) int {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/track/v1/details/1Z999", nil)
		req.Header.Set(proxy.CarrierHeader, carrier)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		return resp.StatusCode
	}
	upstreams := map[ups.Environment]*url.URL{ups.Production: e.prod.hostURL(t), ups.Test: e.test.hostURL(t)}

	err := e.proxy.Update(proxy.Config{Upstreams: upstreams, Carriers: []proxy.Carrier{
		{Name: "a", Environment: ups.Production, Default: true}, {Name: "b", Environment: ups.Production, Default: true}}})
	if err == nil {
		t.Fatal("Update with two default carriers succeeded")
	}
	if got := status("main"); got != http.StatusCreated {
		t.Errorf("after a failed Update, carrier main answers %d, want the old configuration kept (201)", got)
	}

	if err := e.proxy.Update(proxy.Config{Upstreams: upstreams, Carriers: []proxy.Carrier{{Name: "main", Environment: ups.Production, Inactive: true}}}); err != nil {
		t.Fatal(err)
	}
	if got := status("main"); got != http.StatusForbidden {
		t.Errorf("after Update made main inactive, it answers %d, want 403", got)
	}
	if got := status("cie"); got != http.StatusBadRequest {
		t.Errorf("after Update removed cie, it answers %d, want 400", got)
	}
}

func TestTunnelFramingErrorsAreAnsweredInTheEnvelopeAndNeverQuoteTheRequest(t *testing.T) {
	e := newTestEnv(t, nil)
	var answer *http.Response
	var answerBody []byte
	resp := rawConnectKeep(t, e.proxyURL.Host, ups.ProductionHost+":443", func(conn net.Conn) {
		tlsConn := tls.Client(conn, &tls.Config{RootCAs: e.caPool, ServerName: ups.ProductionHost, MinVersion: tls.VersionTLS12})
		if err := tlsConn.Handshake(); err != nil {
			t.Fatalf("TLS through the tunnel: %v", err)
		}
		// A malformed header line carrying a credential: net/http's parse
		// error quotes it.
		_, _ = io.WriteString(tlsConn, "GET /api/x HTTP/1.1\r\nHost: onlinetools.ups.com\r\nProxy-Authorization Basic LEAKED-SECRET\r\n\r\n")
		_ = tlsConn.SetReadDeadline(time.Now().Add(5 * time.Second))
		var err error
		if answer, err = http.ReadResponse(bufio.NewReader(tlsConn), nil); err != nil {
			t.Fatalf("no answer to a malformed request in the tunnel: %v", err)
		}
		answerBody, _ = io.ReadAll(answer.Body)
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT answered %d", resp.StatusCode)
	}
	if answer.StatusCode != http.StatusBadRequest || answer.Header.Get(proxy.ErrorHeader) != proxy.CodeBadRequest {
		t.Fatalf("answer %d %q: %s", answer.StatusCode, answer.Header.Get(proxy.ErrorHeader), answerBody)
	}
	if d, ok := ups.ParseEnvelope(answerBody); !ok || d.Code != proxy.CodeBadRequest {
		t.Errorf("not UPS's envelope: %s", answerBody)
	}
	if strings.Contains(string(answerBody), "LEAKED-SECRET") {
		t.Errorf("the answer quotes the request: %s", answerBody)
	}
	all, _ := json.Marshal(e.logs.All())
	for _, entry := range e.logs.All() {
		m, _ := json.Marshal(entry.ContextMap())
		all = append(all, m...)
	}
	if strings.Contains(string(all), "LEAKED-SECRET") {
		t.Errorf("logs quote the client's malformed request: %s", all)
	}
	if len(e.prod.requests()) != 0 {
		t.Error("a malformed request reached UPS")
	}
}
