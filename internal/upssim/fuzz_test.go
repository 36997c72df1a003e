package upssim

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/upsproxy/upsproxy/internal/ups"
)

func FuzzParseBasic(f *testing.F) {
	enc := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, seed := range []string{
		enc(confID + ":" + confSecret),
		enc("id:"),
		enc(":secret"),
		enc("no-colon"),
		enc("a:b:c"),
		"basic " + base64.StdEncoding.EncodeToString([]byte("x:y")),
		"Basic",
		"Basic ",
		"Basic !!!",
		"Bearer abc",
		"",
		"Basic\t" + base64.StdEncoding.EncodeToString([]byte("x:y")),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		id, secret, ok := parseBasic(header)
		if !ok {
			return
		}
		if strings.Contains(id, ":") {
			t.Fatalf("id %q contains a colon: the split must be at the first one", id)
		}
		// What was parsed is exactly what SetBasicAuth would send.
		id2, secret2, ok2 := parseBasic(enc(id + ":" + secret))
		if !ok2 || id2 != id || secret2 != secret {
			t.Fatalf("round trip of %q:%q gave %q:%q (%v)", id, secret, id2, secret2, ok2)
		}
	})
}

// checkUPSAnswer fails unless res is what UPS could send: a 200 JSON body
// or a UPS error envelope with a 4xx status. The simulator must never
// crash or answer 5xx on its own.
func checkUPSAnswer(t *testing.T, res response, tokenEndpoint bool) {
	t.Helper()
	if res.Status >= 500 {
		t.Fatalf("status %d: %s", res.Status, res.Body)
	}
	if res.Status == http.StatusOK {
		var v map[string]any
		if err := json.Unmarshal(res.Body, &v); err != nil {
			t.Fatalf("200 with a body that is not a JSON object: %v", err)
		}
		if tokenEndpoint {
			for k, val := range v {
				if _, ok := val.(string); !ok {
					t.Fatalf("token field %q is %T, want string", k, val)
				}
			}
		}
		return
	}
	if _, ok := ups.ParseEnvelope(res.Body); !ok {
		t.Fatalf("status %d without a UPS envelope: %q", res.Status, res.Body)
	}
}

func FuzzTokenAndRefreshForms(f *testing.F) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(confID+":"+confSecret))
	for _, seed := range []struct{ path, auth, ctype, body string }{
		{ups.TokenPath, basic, "application/x-www-form-urlencoded", "grant_type=client_credentials"},
		{ups.TokenPath, basic, "application/x-www-form-urlencoded", "grant_type=authorization_code&code=CODE&redirect_uri=https%3A%2F%2F127.0.0.1%2Fupscallback"},
		{ups.TokenPath, "", "application/x-www-form-urlencoded", "grant_type=authorization_code&code=CODE&redirect_uri=https%3A%2F%2F127.0.0.1%2Fupscallback&client_id=public-client&code_verifier=" + testVerifier},
		{ups.RefreshPath, basic, "application/x-www-form-urlencoded; charset=utf-8", "grant_type=refresh_token&refresh_token=RT"},
		{ups.TokenPath, basic, "application/x-www-form-urlencoded", "grant_type=client_credentials&grant_type=client_credentials"},
		{ups.TokenPath, basic, "application/json", `{"grant_type":"client_credentials"}`},
		{ups.RefreshPath, "Basic ???", "application/x-www-form-urlencoded", "%zz"},
		{ups.TokenPath, basic, "", ""},
	} {
		f.Add(seed.path == ups.RefreshPath, seed.auth, seed.ctype, seed.body)
	}
	f.Fuzz(func(t *testing.T, refresh bool, auth, ctype, body string) {
		s, _ := newTestServer(t)
		// Give the placeholders real values so the fuzzer can reach the
		// success paths too.
		body = strings.ReplaceAll(body, "CODE", s.IssueCode(publicID, redirectURI, challengeFor(testVerifier)))
		body = strings.ReplaceAll(body, "RT", login(t, s)["refresh_token"])
		path := ups.TokenPath
		if refresh {
			path = ups.RefreshPath
		}
		req := httptest.NewRequest(http.MethodPost, "http://wwwcie.ups.com"+path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		checkUPSAnswer(t, serve(s, req), true)
	})
}

func FuzzAPIRequestBodies(f *testing.F) {
	for _, seed := range []struct{ path, body string }{
		{"/api/rating/v2409/Rate", string(rateBody("03", "US", "5"))},
		{"/api/rating/v2409/Shoptimeintransit", string(rateBody("", "CA", "5", "7.5"))},
		{"/api/rating/v2409/Rate", `{"RateRequest":{"Shipment":{"Package":[{"PackageWeight":{"Weight":1e308},"Dimensions":{"Length":"1e200","Width":"1e200","Height":"NaN"}}]}}}`},
		{"/api/rating/v2409/Rate", `{"RateRequest":{"Shipment":{"Package":{"PackageWeight":{"Weight":"0.0001"}},"Service":{"Code":"0"}}}}`},
		{"/api/shipments/v2409/ship", string(shipBody("ZPL", "2"))},
		{"/api/shipments/v2409/ship", `{"ShipmentRequest":{"Shipment":{"Shipper":{"ShipperNumber":"ÿÿÿÿÿÿ"},"Package":{"PackageWeight":{"Weight":"1"}}}}}`},
		{"/api/addressvalidation/v2/3", `{"XAVRequest":{"AddressKeyFormat":{"AddressLine":["1 Main"],"PoliticalDivision1":"CA","PostcodePrimaryLow":"92656","CountryCode":"US"}}}`},
		{"/api/addressvalidation/v2/1", `{"XAVRequest":{"AddressKeyFormat":[{"AddressLine":"é","CountryCode":"é"}]}}`},
		{"/api/labels/v1/recovery", `{"LabelRecoveryRequest":{"TrackingNumber":"1Z12345E8791315509","TrackingNumbers":{"TrackingNumber":["1R1",7,null]}}}`},
		{"/api/labels/V1903/recovery", `{"LabelRecoveryRequest":{"TrackingNumbers":[{"x":1}],"LabelSpecification":{"LabelImageFormat":{"Code":"ZPL"}}}}`},
		{"/api/rating/v1/Shop", string(rateBody("", "US", "5"))},
		{"/api/rating/v2409/Rate", `{"RateRequest":[1,2,3]}`},
		{"/api/rating/v2409/Rate", `{"RateRequest":{"Shipment":{"Package":[null,{}]}}}`},
		{"/api/rating/v2409/Rate", "\xff\xfe"},
		{"/api/rating/v2409/Rate", ``},
	} {
		f.Add(seed.path, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, path string, body []byte) {
		if !strings.HasPrefix(path, "/api/") || strings.ContainsAny(path, " ?#%\x00") || !strings.HasPrefix(path, "/") {
			return
		}
		s, _ := newTestServer(t)
		tok := login(t, s)["access_token"]
		req := apiRequest(http.MethodPost, "wwwcie.ups.com", "/", tok, body)
		req.URL.Path = path
		checkUPSAnswer(t, serve(s, req), false)
	})
}
