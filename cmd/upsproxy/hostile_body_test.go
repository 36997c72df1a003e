package main

// Hostile clients against the body scanner, trailers, the carrier pin and
// the environment guard (issue 8, items 4 and 5), each through a real
// `upsproxy serve` in every proxy mode where the mode matters. A
// recording upstream in front of the UPS simulator keeps everything UPS
// would have received, so each test asserts what UPS saw (no UPSSecurity in
// any spelling, no legacy trailer, the right carrier and environment, or no
// complete request at all) as well as what the client got.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// hostileEnv is an installation whose two UPS environments are recording
// upstreams, with a small body_scan_limit so that "past the limit" is cheap.
type hostileEnv struct {
	*env
	test, prod *recordingUPS
	s          *server
	caseID     int
}

const hostileScanLimit = 4 << 10

func newHostileEnv(t *testing.T, carriers, extra string) *hostileEnv {
	t.Helper()
	e := newEnv(t, envOptions{carriers: carriers, extra: extra + fmt.Sprintf(`
limits {
  body_scan_limit = "%dB"
}
`, hostileScanLimit)})
	h := &hostileEnv{env: e, test: newRecordingUPS(t, e.sim), prod: newRecordingUPS(t, e.sim)}
	for name, rec := range map[string]*recordingUPS{"test_url": h.test, "production_url": h.prod} {
		pad := strings.Repeat(" ", len("production_url")-len(name))
		e.pxRewriteConfig(t, fmt.Sprintf("%s%s = %q", name, pad, e.simURL), fmt.Sprintf("%s = %q", name, rec.url))
	}
	return h
}

func (h *hostileEnv) start(t *testing.T, carriers ...string) {
	t.Helper()
	for _, c := range carriers {
		h.login(c)
	}
	h.s = h.serve()
}

// all is every API request of the current case either environment received.
func (h *hostileEnv) all() []upstreamSeen {
	var out []upstreamSeen
	for _, r := range append(h.test.requests(), h.prod.requests()...) {
		if r.header.Get(caseHeader) == strconv.Itoa(h.caseID) {
			out = append(out, r)
		}
	}
	return out
}

// reset starts a new case: requests recorded from now on carry its id.
// An aborted request of an earlier case may still be recorded late (UPS
// notices the abort after the client got its answer); it is ignored.
func (h *hostileEnv) reset() {
	h.test.reset()
	h.prod.reset()
	h.caseID++
}

// caseHeader carries the case id to the recording upstream (the proxy
// forwards unknown headers).
const caseHeader = "X-Hostile-Case"

// mode is one of the three ways a client reaches the proxy.
type mode struct {
	name   string
	base   func(h *hostileEnv) string // prefix of an /api/... path, addressing UPS's Test host
	direct bool                       // base-URL mode: proxy credentials go in a header
}

var hostileModes = []mode{
	{name: "base-URL mode", base: func(h *hostileEnv) string { return "http://" + h.s.addr }, direct: true},
	{name: "HTTP proxy (absolute-form)", base: func(*hostileEnv) string { return "http://" + ups.TestHost }},
	{name: "HTTPS proxy (CONNECT, MITM)", base: func(*hostileEnv) string { return "https://" + ups.TestHost }},
}

// send sends req through the proxy in mode m, authenticating as user
// (none when "").
func (m mode) send(t *testing.T, h *hostileEnv, user string, req *http.Request) pxResult {
	t.Helper()
	if !m.direct {
		return pxDo(t, h.hostileProxyClient(user), req)
	}
	if user != "" {
		req.Header.Set("Proxy-Authorization", pxBasic(user, user+"-proxy-password"))
	}
	return pxDo(t, directClient(), req)
}

// do sends method path with body and header through the proxy.
func (m mode) do(t *testing.T, h *hostileEnv, user, method, path string, body io.Reader, header http.Header) pxResult {
	t.Helper()
	return m.send(t, h, user, h.request(t, method, m.base(h)+path, body, header))
}

func (h *hostileEnv) request(t *testing.T, method, target string, body io.Reader, header http.Header) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(caseHeader, strconv.Itoa(h.caseID))
	for k, v := range header {
		req.Header[k] = v
	}
	return req
}

// hostileProxyClient is a forward-proxy client, with proxy credentials in
// the proxy URL when user is set (sent on CONNECT and absolute-form
// requests).
func (h *hostileEnv) hostileProxyClient(user string) *http.Client {
	c := h.proxyClient(h.s)
	if user != "" {
		pu, _ := url.Parse("http://" + url.UserPassword(user, user+"-proxy-password").String() + "@" + h.s.addr)
		c.Transport.(*http.Transport).Proxy = http.ProxyURL(pu)
	}
	return c
}

// wantNothingWhole fails when UPS received any complete request, or any
// byte of what must never reach it. aborted: the refusal came after the
// prefix was sent, so UPS must have seen an aborted request (waited for).
func (h *hostileEnv) wantNothingWhole(t *testing.T, aborted bool, never ...string) {
	t.Helper()
	if aborted {
		waitFor(t, func() bool { return len(h.all()) > 0 }, "the aborted request to reach the recording upstream")
	}
	for _, r := range h.all() {
		if r.complete {
			t.Errorf("UPS received a complete %s %s (%d bytes)", r.method, r.path, len(r.body))
		}
		for _, n := range never {
			if bytes.Contains(bytes.ToLower(r.body), bytes.ToLower([]byte(n))) {
				t.Errorf("UPS received %q in an aborted body", n)
			}
		}
	}
}

// topLevelKeys decodes a JSON object's member names (unescaped).
func topLevelKeys(t *testing.T, body []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("UPS got a body that is not a JSON object: %v\n%.200s", err, body)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

const legacySecurity = `"UPSSecurity":{"UsernameToken":{"Username":"legacy-user","Password":"hostile-password-77"},` +
	`"ServiceAccessToken":{"AccessLicenseNumber":"HOSTILE-ACCESS-KEY-7"}}`

// TestHostile_UPSSecurityNeverReachesUPS: a single-carrier configuration
// (nothing else would make the proxy read a Ship body), every spelling and
// position of the legacy element, every mode.
func TestHostile_UPSSecurityNeverReachesUPS(t *testing.T) {
	rememberSecret("hostile-password-77")
	rememberSecret("HOSTILE-ACCESS-KEY-7")
	h := newHostileEnv(t, "", "")
	h.start(t, "main")
	rate := rateBody(t)
	inner := strings.TrimSpace(rate)
	inner = inner[1 : len(inner)-1]
	escapedLower := strings.Replace(legacySecurity, `"UPSSecurity"`, `"ups\u0073ecurity"`, 1)
	pad := `"Pad":"` + strings.Repeat("x", 2*hostileScanLimit) + `",`
	deep := strings.Repeat("[", 200) + strings.Repeat("]", 200)

	forwarded := []struct{ name, path, body string }{
		{"a Ship call, UPSSecurity first", "/api/shipments/v2409/ship", `{` + legacySecurity + `,"ShipmentRequest":{"Request":{}}}`},
		{"a Rate call, UPSSecurity last", "/api/rating/v2409/Rate", `{` + inner + `,` + legacySecurity + `}`},
		{"escaped and in lower case", "/api/shipments/v2409/ship", `{` + escapedLower + `,"ShipmentRequest":{}}`},
		{"behind a UTF-8 byte order mark", "/api/shipments/v2409/ship", "\xEF\xBB\xBF{" + legacySecurity + `,"ShipmentRequest":{}}`},
	}
	refused := []struct {
		name, path, body string
		status           int
		code             string
		aborted          bool
	}{
		{"beginning after body_scan_limit", "/api/shipments/v2409/ship", `{` + pad + legacySecurity + `}`,
			http.StatusRequestEntityTooLarge, "UPSPROXY_REQUEST_TOO_LARGE", true},
		{"escaped, after body_scan_limit", "/api/shipments/v2409/ship", `{` + pad + escapedLower + `}`,
			http.StatusRequestEntityTooLarge, "UPSPROXY_REQUEST_TOO_LARGE", true},
		{"after a deeply nested array", "/api/shipments/v2409/ship", `{"a":` + deep + `,` + legacySecurity + `}`,
			http.StatusBadRequest, "UPSPROXY_INVALID_BODY", false},
		{"in a body that is not valid JSON", "/api/shipments/v2409/ship", `{"a":01,` + legacySecurity + `}`,
			http.StatusBadRequest, "UPSPROXY_INVALID_BODY", false},
	}
	for _, m := range hostileModes {
		for _, c := range forwarded {
			t.Run(m.name+", "+c.name+": cut out, the rest forwarded", func(t *testing.T) {
				h.reset()
				r := m.do(t, h, "", http.MethodPost, c.path, strings.NewReader(c.body), nil)
				if r.header.Get("X-Upsproxy-Error") != "" {
					t.Fatalf("the proxy refused it: %d %s", r.status, r.body)
				}
				seen := h.all()
				if len(seen) != 1 || !seen[0].complete {
					t.Fatalf("UPS saw %d requests, want 1 complete", len(seen))
				}
				for _, k := range topLevelKeys(t, seen[0].body) {
					if strings.EqualFold(k, "UPSSecurity") {
						t.Errorf("UPS got a %q member", k)
					}
				}
				if bytes.Contains(seen[0].body, []byte("hostile-password")) || bytes.HasPrefix(seen[0].body, []byte("\xEF\xBB\xBF")) {
					t.Errorf("UPS got legacy credentials or a byte order mark: %.120q", seen[0].body)
				}
			})
		}
		for _, c := range refused {
			t.Run(m.name+", "+c.name+": refused", func(t *testing.T) {
				h.reset()
				r := m.do(t, h, "", http.MethodPost, c.path, strings.NewReader(c.body), nil)
				pxWantError(t, r, c.status, c.code)
				h.wantNothingWhole(t, c.aborted, "hostile-password", "HOSTILE-ACCESS-KEY")
			})
		}
	}
	t.Run("base-URL mode, chunked body, UPSSecurity after body_scan_limit: refused", func(t *testing.T) {
		h.reset()
		body := io.MultiReader(strings.NewReader(`{`+pad), strings.NewReader(legacySecurity+`}`)) // no length: chunked
		r := hostileModes[0].do(t, h, "", http.MethodPost, "/api/shipments/v2409/ship", body, nil)
		pxWantError(t, r, http.StatusRequestEntityTooLarge, "UPSPROXY_REQUEST_TOO_LARGE")
		h.wantNothingWhole(t, true, "hostile-password", "HOSTILE-ACCESS-KEY")
	})
	// The proxy still serves an honest client after all that.
	if r := hostileModes[0].do(t, h, "", http.MethodPost, "/api/rating/v2409/Rate", strings.NewReader(rate), nil); r.status != 200 {
		t.Fatalf("an honest Rate call after the refusals: %d %s", r.status, r.body)
	}
}

func TestHostile_LegacyCredentialsInTrailersNeverReachUPS(t *testing.T) {
	rememberSecret("trailer-password-55")
	h := newHostileEnv(t, "", "")
	h.start(t, "main")
	rate := rateBody(t)
	for _, m := range hostileModes {
		t.Run(m.name, func(t *testing.T) {
			h.reset()
			req := h.request(t, http.MethodPost, m.base(h)+"/api/rating/v2409/Rate", strings.NewReader(rate), nil)
			req.ContentLength = -1 // chunked: the only framing with trailers
			req.Trailer = http.Header{
				"Accesslicensenumber": {"TRAILER-ACCESS-KEY"},
				"Password":            {"trailer-password-55"},
				"Authorization":       {"Basic dHJhaWxlcjp0cmFpbGVyLXBhc3N3b3JkLTU1"},
				"Proxy-Authorization": {"Basic dHJhaWxlcjp0cmFpbGVyLXBhc3N3b3JkLTU1"},
			}
			r := m.send(t, h, "", req)
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			seen := h.all()
			if len(seen) != 1 {
				t.Fatalf("UPS saw %d requests, want 1", len(seen))
			}
			if len(seen[0].trailer) != 0 {
				t.Errorf("UPS received trailers %v", seen[0].trailer)
			}
			for _, k := range []string{"Accesslicensenumber", "Password", "Proxy-Authorization"} {
				if seen[0].header.Get(k) != "" {
					t.Errorf("UPS received %s as a header", k)
				}
			}
			if got := seen[0].header.Get("Authorization"); strings.Contains(got, "trailer-password") || !strings.HasPrefix(got, "Bearer ") {
				t.Errorf("UPS received Authorization %q, want only the carrier's bearer token", got)
			}
		})
	}
}

// hostileCarrierEnv: carriers a (test, default, shipper A11111), b (test,
// B22222) and prod (production); proxy user "pinned" is pinned to a,
// "free" is not.
func hostileCarrierEnv(t *testing.T) *hostileEnv {
	t.Helper()
	carriers := pxCarrier("a", `  default = true
  shipper_account "a-acct" {
    number  = "A11111"
    default = true
  }`) + pxCarrier("b", `  shipper_account "b-acct" {
    number = "B22222"
  }`) + strings.Replace(pxCarrier("prod", ""), `"test"`, `"production"`, 1)
	clients := fmt.Sprintf(`
client "pinned" {
  password_hash = %q
  carrier       = "a"
}
client "free" {
  password_hash = %q
}
`, pxHash(t, "pinned-proxy-password"), pxHash(t, "free-proxy-password"))
	h := newHostileEnv(t, carriers, clients)
	h.start(t, "a", "b")
	return h
}

// carrierSeen names the carrier whose token authorized the one request UPS saw.
func (h *hostileEnv) carrierSeen(t *testing.T, seen upstreamSeen) string {
	t.Helper()
	for _, c := range []string{"a", "b"} {
		rec, err := h.store.Get(t.Context(), c, ups.Test)
		if err == nil && seen.header.Get("Authorization") == "Bearer "+rec.Token.AccessToken {
			return c
		}
	}
	return "(unknown)"
}

func TestHostile_ACarrierPinCannotBeBypassedThroughTheBody(t *testing.T) {
	h := hostileCarrierEnv(t)
	withNumber := func(prefix, n string) string {
		return prefix + pxRateBody(t, func(sh map[string]any) { shipper(sh)["ShipperNumber"] = n })
	}
	pad := strings.Repeat("x", 2*hostileScanLimit)
	afterPad := func(n string) string {
		return `{"RateRequest":{"Pad":"` + pad + `","Shipment":{"Shipper":{"ShipperNumber":"` + n + `"}}}}`
	}
	afterDeep := func(n string) string {
		return `{"RateRequest":{"Deep":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) +
			`,"Shipment":{"Shipper":{"ShipperNumber":"` + n + `"}}}}`
	}
	cases := []struct {
		name, body string
		status     int
		code       string
		aborted    bool
	}{
		{"carrier b's number after a long pad", afterPad("B22222"), http.StatusForbidden, "UPSPROXY_NO_CARRIER", true},
		{"carrier b's number after a deep array", afterDeep("B22222"), http.StatusBadRequest, "UPSPROXY_INVALID_BODY", false},
		{"carrier b's number behind a byte order mark", withNumber("\xEF\xBB\xBF", "B22222"), http.StatusForbidden, "UPSPROXY_NO_CARRIER", false},
		{"carrier b's number under an escaped lower-case key", strings.Replace(withNumber("", "B22222"),
			`"ShipperNumber"`, `"shipper\u004eumber"`, 1), http.StatusForbidden, "UPSPROXY_NO_CARRIER", false},
		{"its own number after a long pad", afterPad("A11111"), http.StatusOK, "", false},
		{"its own number behind a byte order mark", withNumber("\xEF\xBB\xBF", "A11111"), http.StatusOK, "", false},
	}
	for _, m := range hostileModes {
		for _, c := range cases {
			t.Run(m.name+", "+c.name, func(t *testing.T) {
				h.reset()
				r := m.do(t, h, "pinned", http.MethodPost, "/api/rating/v2409/Rate", strings.NewReader(c.body), nil)
				if c.code == "" {
					if r.header.Get("X-Upsproxy-Error") != "" {
						t.Fatalf("refused: %d %s", r.status, r.body)
					}
					seen := h.all()
					if len(seen) != 1 || !seen[0].complete {
						t.Fatalf("UPS saw %d requests, want 1 complete", len(seen))
					}
					if got := h.carrierSeen(t, seen[0]); got != "a" {
						t.Errorf("UPS saw carrier %s's token, want a's", got)
					}
					return
				}
				msg := pxWantError(t, r, c.status, c.code)
				if c.code == "UPSPROXY_NO_CARRIER" && !strings.Contains(msg, `"pinned"`) {
					t.Errorf("message %q does not name the pinned client", msg)
				}
				h.wantNothingWhole(t, c.aborted)
			})
		}
	}
}

func TestHostile_EnvironmentGuardNormalisesHostNamesOnce(t *testing.T) {
	h := hostileCarrierEnv(t)
	prod := http.Header{"X-Upsproxy-Carrier": {"prod"}}
	body := `{"ShipmentRequest":{}}`
	refusals := []struct {
		name string
		send func(t *testing.T) pxResult
	}{}
	for _, host := range []string{"wwwcie.ups.com.", "WWWCIE.UPS.COM.", "wwwcie.ups.com.:80"} {
		refusals = append(refusals, struct {
			name string
			send func(t *testing.T) pxResult
		}{"base-URL mode, Host: " + host, func(t *testing.T) pxResult {
			req := h.request(t, http.MethodPost, "http://"+h.s.addr+"/api/shipments/v2409/ship", strings.NewReader(body), prod)
			req.Host = host
			req.Header.Set("Proxy-Authorization", pxBasic("free", "free-proxy-password"))
			return pxDo(t, directClient(), req)
		}})
	}
	for _, target := range []string{"http://wwwcie.ups.com./api/shipments/v2409/ship", "http://WwwCie.Ups.Com.:80/api/shipments/v2409/ship",
		"https://wwwcie.ups.com./api/shipments/v2409/ship"} {
		refusals = append(refusals, struct {
			name string
			send func(t *testing.T) pxResult
		}{"forward proxy, " + target, func(t *testing.T) pxResult {
			return pxDo(t, h.hostileProxyClient("free"), h.request(t, http.MethodPost, target, strings.NewReader(body), prod))
		}})
	}
	for _, c := range refusals {
		t.Run(c.name+", production carrier: refused", func(t *testing.T) {
			h.reset()
			pxWantError(t, c.send(t), http.StatusForbidden, "UPSPROXY_ENVIRONMENT_MISMATCH")
			if n := len(h.all()); n != 0 {
				t.Errorf("UPS received %d requests", n)
			}
		})
	}
	t.Run("CONNECT wwwcie.ups.com.:443 with a test carrier: served by Test", func(t *testing.T) {
		h.reset()
		r := pxDo(t, h.hostileProxyClient("free"), h.request(t, http.MethodPost, "https://wwwcie.ups.com./api/rating/v2409/Rate",
			strings.NewReader(rateBody(t)), nil))
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if len(h.test.requests()) != 1 || len(h.prod.requests()) != 0 {
			t.Errorf("UPS Test saw %d, Production %d requests; want 1 and 0", len(h.test.requests()), len(h.prod.requests()))
		}
	})
}

func TestHostile_TwoDifferentCarrierHeadersAreRefused(t *testing.T) {
	h := hostileCarrierEnv(t)
	body := pxRateBody(t, func(sh map[string]any) { delete(shipper(sh), "ShipperNumber") })
	for _, m := range hostileModes {
		t.Run(m.name+": a and b refused", func(t *testing.T) {
			h.reset()
			r := m.do(t, h, "free", http.MethodPost, "/api/rating/v2409/Rate", strings.NewReader(body),
				http.Header{"X-Upsproxy-Carrier": {"b", "a"}})
			pxWantError(t, r, http.StatusBadRequest, "UPSPROXY_NO_CARRIER")
			if n := len(h.all()); n != 0 {
				t.Errorf("UPS received %d requests", n)
			}
		})
		t.Run(m.name+": b twice is b", func(t *testing.T) {
			h.reset()
			r := m.do(t, h, "free", http.MethodPost, "/api/rating/v2409/Rate", strings.NewReader(body),
				http.Header{"X-Upsproxy-Carrier": {"b", "b"}})
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if seen := h.all(); len(seen) != 1 || h.carrierSeen(t, seen[0]) != "b" {
				t.Errorf("UPS did not see one request for carrier b")
			}
		})
	}
}
