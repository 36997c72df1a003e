package upssim

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/testutil/fakeclock"
	"github.com/upsproxy/upsproxy/internal/ups"
)

// Test clients. The confidential secret holds every character that
// URL-escaping would change (+, %, space) and a colon, which only a split
// at the first colon keeps inside the secret.
const (
	confID       = "conf-client"
	confSecret   = "s3+cr%2Ft w:rd"
	otherID      = "other-client"
	otherSecret  = "other-secret"
	publicID     = "public-client"
	redirectURI  = "https://127.0.0.1/upscallback"
	testVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)

// newClock starts on a Monday morning so business-day arithmetic is plain.
func newClock() *fakeclock.Clock {
	return fakeclock.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
}

func testClients() map[string]string {
	return map[string]string{confID: confSecret, otherID: otherSecret, publicID: ""}
}

func newTestServer(t testing.TB, mutate ...func(*Options)) (*Server, *fakeclock.Clock) {
	t.Helper()
	clock := newClock()
	opts := Options{Clients: testClients(), Clock: clock.Now}
	for _, m := range mutate {
		m(&opts)
	}
	return New(opts), clock
}

func challengeFor(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// response is a completed exchange with the simulator.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response body is not a JSON object: %v\n%s", err, r.Body)
	}
	return m
}

// serve runs req through s without a network.
func serve(s http.Handler, req *http.Request) response {
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	return response{Status: res.StatusCode, Header: res.Header, Body: body}
}

// formRequest builds an OAuth form POST to path on host.
func formRequest(host, path string, form url.Values) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "http://"+host+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func codeForm(code string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}}
}

// exchange redeems code as the confidential client does, with raw Basic.
func exchange(t testing.TB, s *Server, code string) response {
	t.Helper()
	req := formRequest("wwwcie.ups.com", ups.TokenPath, codeForm(code))
	req.SetBasicAuth(confID, confSecret)
	return serve(s, req)
}

// login mints a code and exchanges it, failing the test unless UPS would
// have answered 200.
func login(t testing.TB, s *Server) map[string]string {
	t.Helper()
	res := exchange(t, s, s.IssueCode(confID, redirectURI, ""))
	if res.Status != http.StatusOK {
		t.Fatalf("code exchange: status %d, body %s", res.Status, res.Body)
	}
	return stringFields(t, res.Body)
}

func refreshRequest(host, refreshToken string) *http.Request {
	req := formRequest(host, ups.RefreshPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
	req.SetBasicAuth(confID, confSecret)
	return req
}

// stringFields decodes a token response, failing unless every field is a
// JSON string as UPS sends them.
func stringFields(t testing.TB, body []byte) map[string]string {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("token response is not a JSON object: %v\n%s", err, body)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		s, ok := v.(string)
		if !ok {
			t.Errorf("token field %q is %T (%v), UPS sends every field as a string", k, v, v)
			continue
		}
		out[k] = s
	}
	return out
}

func apiRequest(method, host, path, token string, body []byte) *http.Request {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, "http://"+host+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("transId", "test-trans-0001")
	req.Header.Set("transactionSrc", "upssim-tests")
	return req
}

// wantEnvelope fails unless res is a UPS error envelope with this status
// and code (and message, when given).
func wantEnvelope(t testing.TB, res response, status int, code, message string) {
	t.Helper()
	if res.Status != status {
		t.Errorf("status = %d, want %d (body %s)", res.Status, status, res.Body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	e, ok := ups.ParseEnvelope(res.Body)
	if !ok {
		t.Fatalf("body is not a UPS error envelope: %s", res.Body)
	}
	if e.Code != code {
		t.Errorf("envelope code = %q, want %q (message %q)", e.Code, code, e.Message)
	}
	if message != "" && e.Message != message {
		t.Errorf("envelope message = %q, want %q", e.Message, message)
	}
}

// rateBody is a minimal Rate request as legacy clients send it: single
// objects where the spec wants arrays.
func rateBody(serviceCode, toCountry string, weights ...string) []byte {
	pkgs := make([]any, 0, len(weights))
	for _, w := range weights {
		pkgs = append(pkgs, map[string]any{
			"PackagingType": map[string]any{"Code": "02"},
			"PackageWeight": map[string]any{"UnitOfMeasurement": map[string]any{"Code": "LBS"}, "Weight": w},
		})
	}
	var pkg any = pkgs
	if len(pkgs) == 1 {
		pkg = pkgs[0]
	}
	b, _ := json.Marshal(map[string]any{"RateRequest": map[string]any{
		"Request": map[string]any{"TransactionReference": map[string]any{"CustomerContext": "order-42"}},
		"Shipment": map[string]any{
			"Shipper":  map[string]any{"Name": "Shipper", "ShipperNumber": "W599Y7", "Address": map[string]any{"AddressLine": "1 Main St", "City": "TIMONIUM", "StateProvinceCode": "MD", "PostalCode": "21093", "CountryCode": "US"}},
			"ShipTo":   map[string]any{"Name": "Consignee", "Address": map[string]any{"AddressLine": []string{"2 Oak Ave"}, "City": "Toronto", "PostalCode": "M5V 2T6", "CountryCode": toCountry}},
			"ShipFrom": map[string]any{"Name": "Warehouse", "Address": map[string]any{"AddressLine": "1 Main St", "City": "TIMONIUM", "StateProvinceCode": "MD", "PostalCode": "21093", "CountryCode": "US"}},
			"Service":  map[string]any{"Code": serviceCode},
			"Package":  pkg,
		},
	}})
	return b
}

func shipBody(format string, weights ...string) []byte {
	pkgs := make([]any, 0, len(weights))
	for _, w := range weights {
		pkgs = append(pkgs, map[string]any{
			"Packaging":     map[string]any{"Code": "02"},
			"PackageWeight": map[string]any{"UnitOfMeasurement": map[string]any{"Code": "LBS"}, "Weight": w},
		})
	}
	b, _ := json.Marshal(map[string]any{"ShipmentRequest": map[string]any{
		"Request": map[string]any{"RequestOption": "nonvalidate"},
		"Shipment": map[string]any{
			"Shipper":              map[string]any{"Name": "Shipper", "ShipperNumber": "W599Y7", "Address": map[string]any{"AddressLine": []string{"1 Main St"}, "City": "Timonium", "StateProvinceCode": "MD", "PostalCode": "21093", "CountryCode": "US"}},
			"ShipTo":               map[string]any{"Name": "Consignee", "Address": map[string]any{"AddressLine": []string{"2 Oak Ave"}, "City": "Alpharetta", "StateProvinceCode": "GA", "PostalCode": "30005", "CountryCode": "US"}},
			"PaymentInformation":   map[string]any{"ShipmentCharge": map[string]any{"Type": "01", "BillShipper": map[string]any{"AccountNumber": "W599Y7"}}},
			"Service":              map[string]any{"Code": "03"},
			"Package":              pkgs,
			"ShipmentRatingOption": map[string]any{},
		},
		"LabelSpecification": map[string]any{"LabelImageFormat": map[string]any{"Code": format}},
	}})
	return b
}
