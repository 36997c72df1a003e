package upssim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image/gif"
	"image/png"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/testutil/fakeclock"
	"github.com/upsproxy/upsproxy/internal/ups"
)

// The exact body legacy software shows its user for a bad token.
const invalidAuthBody = `{"response":{"errors":[{"code":"250002","message":"Invalid Authentication Information."}]}}`

func TestAPIRefusesMissingUnknownRevokedAndExpiredTokensWith250002(t *testing.T) {
	tests := []struct {
		name  string
		token func(s *Server, clock *fakeclock.Clock) string
		auth  string // raw Authorization header, overrides token when set
	}{
		{"no authorization header", func(*Server, *fakeclock.Clock) string { return "" }, ""},
		{"unknown bearer token", func(*Server, *fakeclock.Clock) string { return "not-a-token" }, ""},
		{"basic instead of bearer", func(*Server, *fakeclock.Clock) string { return "" }, "Basic " + base64.StdEncoding.EncodeToString([]byte(confID+":"+confSecret))},
		{"legacy access key headers only", func(*Server, *fakeclock.Clock) string { return "" }, ""},
		{"revoked token", func(s *Server, _ *fakeclock.Clock) string {
			tok := login(t, s)["access_token"]
			s.RevokeAccessTokens()
			return tok
		}, ""},
		{"expired token", func(s *Server, clock *fakeclock.Clock) string {
			tok := login(t, s)["access_token"]
			clock.Advance(DefaultAccessTTL)
			return tok
		}, ""},
		{"refresh token used as bearer", func(s *Server, _ *fakeclock.Clock) string { return login(t, s)["refresh_token"] }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := newTestServer(t)
			req := apiRequest(http.MethodPost, "wwwcie.ups.com", "/api/rating/v2409/Rate", tt.token(s, clock), rateBody("03", "US", "5"))
			req.Header.Set("AccessLicenseNumber", "0123456789ABCDEF")
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			res := serve(s, req)
			if res.Status != http.StatusUnauthorized || string(res.Body) != invalidAuthBody {
				t.Errorf("got %d %s, want 401 %s", res.Status, res.Body, invalidAuthBody)
			}
			if st := s.Stats(); st.APICalls != 1 || st.APIUnauthorized != 1 {
				t.Errorf("stats = %+v, want 1 call, 1 unauthorized", st)
			}
		})
	}
}

func TestAccessTokenWorksUntilTheInstantItExpires(t *testing.T) {
	s, clock := newTestServer(t, func(o *Options) { o.AccessTTL = time.Hour })
	tok := login(t, s)["access_token"]
	clock.Advance(time.Hour - time.Nanosecond)
	if res := serve(s, apiRequest(http.MethodPost, "h", "/api/rating/v2409/Rate", tok, rateBody("03", "US", "5"))); res.Status != http.StatusOK {
		t.Fatalf("a nanosecond before expiry: %d %s", res.Status, res.Body)
	}
	clock.Advance(time.Nanosecond)
	wantEnvelope(t, serve(s, apiRequest(http.MethodPost, "h", "/api/rating/v2409/Rate", tok, rateBody("03", "US", "5"))), 401, ups.CodeInvalidAuth, ups.MsgInvalidAuth)
}

func TestRevokeAccessTokensSparesTokensIssuedAfterwards(t *testing.T) {
	s, _ := newTestServer(t)
	s.RevokeAccessTokens()
	tok := login(t, s)["access_token"]
	if res := serve(s, apiRequest(http.MethodPost, "h", "/api/rating/v2409/Rate", tok, rateBody("03", "US", "5"))); res.Status != http.StatusOK {
		t.Errorf("token issued after RevokeAccessTokens: %d %s", res.Status, res.Body)
	}
}

// rateJSON and shipJSON read UPS's one-or-many lists either way: a lone
// object (versions before v2403/v2409) or an array.
type rateJSON struct {
	RateResponse struct {
		Response struct {
			ResponseStatus       responseStatus
			TransactionReference struct{ CustomerContext string }
		}
		RatedShipment many[struct {
			Service       struct{ Code, Description string }
			TotalCharges  struct{ CurrencyCode, MonetaryValue string }
			BillingWeight struct{ Weight string }
			RatedPackage  many[json.RawMessage]
			TimeInTransit *struct {
				PickupDate     string
				ServiceSummary struct {
					EstimatedArrival struct {
						Arrival struct{ Date string }
					}
				}
			}
		}]
	}
}

func rate(t *testing.T, s *Server, tok, path string, body []byte) rateJSON {
	t.Helper()
	res := serve(s, apiRequest(http.MethodPost, "wwwcie.ups.com", path, tok, body))
	if res.Status != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, res.Status, res.Body)
	}
	var out rateJSON
	if err := json.Unmarshal(res.Body, &out); err != nil {
		t.Fatalf("rate response: %v\n%s", err, res.Body)
	}
	return out
}

func TestRateAnswersOneRatedShipmentPricedByWeight(t *testing.T) {
	s, _ := newTestServer(t)
	tok := login(t, s)["access_token"]
	light := rate(t, s, tok, "/api/rating/v2409/Rate", rateBody("03", "US", "2"))
	heavy := rate(t, s, tok, "/api/rating/v2409/Rate", rateBody("03", "US", "20"))

	r := light.RateResponse
	if r.Response.ResponseStatus != success {
		t.Errorf("ResponseStatus = %+v, want 1/Success", r.Response.ResponseStatus)
	}
	if r.Response.TransactionReference.CustomerContext != "order-42" {
		t.Errorf("CustomerContext = %q, want the request's echoed", r.Response.TransactionReference.CustomerContext)
	}
	if len(r.RatedShipment) != 1 || r.RatedShipment[0].Service.Code != "03" {
		t.Fatalf("RatedShipment = %+v, want one UPS Ground rate", r.RatedShipment)
	}
	tc := r.RatedShipment[0].TotalCharges
	lightValue, err := strconv.ParseFloat(tc.MonetaryValue, 64)
	if err != nil || lightValue <= 0 || tc.CurrencyCode != "USD" {
		t.Errorf("TotalCharges = %+v, want a positive USD amount as a string", tc)
	}
	heavyValue, _ := strconv.ParseFloat(heavy.RateResponse.RatedShipment[0].TotalCharges.MonetaryValue, 64)
	if heavyValue <= lightValue {
		t.Errorf("20 lb costs %.2f, 2 lb costs %.2f: heavier should cost more", heavyValue, lightValue)
	}
	if r.RatedShipment[0].TimeInTransit != nil {
		t.Errorf("plain Rate must not carry TimeInTransit")
	}
}

func TestRateAcceptsSpecShapesAndLegacyShapesAlike(t *testing.T) {
	s, _ := newTestServer(t)
	tok := login(t, s)["access_token"]
	// Package as an array of two, weights as JSON numbers, service "003".
	body := []byte(`{"RateRequest":{"Request":{"RequestOption":["Rate"]},"Shipment":{
		"Shipper":{"Address":{"AddressLine":["1 Main"],"CountryCode":"US"}},
		"ShipTo":{"Address":{"AddressLine":["2 Oak"],"CountryCode":"US"}},
		"Service":{"Code":"003"},
		"Package":[{"PackageWeight":{"UnitOfMeasurement":{"Code":"KGS"},"Weight":2.5}},{"PackageWeight":{"Weight":"1"}}]}}}`)
	out := rate(t, s, tok, "/api/rating/v1/rate", body)
	rs := out.RateResponse.RatedShipment
	if len(rs) != 1 || rs[0].Service.Code != "03" || len(rs[0].RatedPackage) != 2 {
		t.Errorf("RatedShipment = %+v, want one Ground rate with two packages", rs)
	}
}

func TestShopAnswersEveryServiceForTheLane(t *testing.T) {
	s, _ := newTestServer(t)
	tok := login(t, s)["access_token"]
	codes := func(out rateJSON) []string {
		var c []string
		for _, rs := range out.RateResponse.RatedShipment {
			c = append(c, rs.Service.Code)
		}
		return c
	}
	domestic := codes(rate(t, s, tok, "/api/rating/v2409/Shop", rateBody("", "US", "5")))
	if len(domestic) < 3 || !contains(domestic, "03") || !contains(domestic, "01") {
		t.Errorf("domestic Shop services = %v, want several including Ground and Next Day Air", domestic)
	}
	intl := codes(rate(t, s, tok, "/api/rating/v2409/Shop", rateBody("", "CA", "5")))
	if len(intl) < 3 || contains(intl, "03") || !contains(intl, "11") {
		t.Errorf("US to CA Shop services = %v, want international services only", intl)
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func TestTimeInTransitIsAddedWhenAskedFor(t *testing.T) {
	tests := []struct {
		name string
		path string
		want bool
	}{
		{"Ratetimeintransit", "/api/rating/v2409/Ratetimeintransit", true},
		{"Shoptimeintransit", "/api/rating/v2409/Shoptimeintransit", true},
		{"Rate with additionalinfo", "/api/rating/v2409/Rate?additionalinfo=timeintransit", true},
		{"plain Shop", "/api/rating/v2409/Shop", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := newTestServer(t)
			tok := login(t, s)["access_token"]
			out := rate(t, s, tok, tt.path, rateBody("01", "US", "5"))
			for _, rs := range out.RateResponse.RatedShipment {
				if (rs.TimeInTransit != nil) != tt.want {
					t.Fatalf("service %s TimeInTransit present = %v, want %v", rs.Service.Code, rs.TimeInTransit != nil, tt.want)
				}
				if !tt.want {
					continue
				}
				if rs.TimeInTransit.PickupDate != clock.Now().Format("20060102") {
					t.Errorf("PickupDate = %s, want today (a Monday)", rs.TimeInTransit.PickupDate)
				}
				if rs.Service.Code == "01" && rs.TimeInTransit.ServiceSummary.EstimatedArrival.Arrival.Date != "20260303" {
					t.Errorf("Next Day Air arrival = %s, want Tuesday 20260303", rs.TimeInTransit.ServiceSummary.EstimatedArrival.Arrival.Date)
				}
			}
		})
	}
}

func TestRateRefusesBadRequestsWithUPSEnvelope(t *testing.T) {
	tests := []struct {
		name string
		path string
		body string
		code string
	}{
		{"not json", "/api/rating/v2409/Rate", `<RatingServiceSelectionRequest/>`, codeNotWellFormed},
		{"truncated json", "/api/rating/v2409/Rate", `{"RateRequest":{`, codeNotWellFormed},
		{"empty body", "/api/rating/v2409/Rate", ``, codeNotWellFormed},
		{"wrapper of the wrong type", "/api/rating/v2409/Rate", `{"RateRequest":"yes"}`, codeNotValid},
		{"no RateRequest", "/api/rating/v2409/Rate", `{"ShipmentRequest":{}}`, codeNotValid},
		{"null body", "/api/rating/v2409/Rate", `null`, codeNotValid},
		{"no package", "/api/rating/v2409/Rate", `{"RateRequest":{"Shipment":{"Service":{"Code":"03"}}}}`, codeNotValid},
		{"package without weight", "/api/rating/v2409/Rate", `{"RateRequest":{"Shipment":{"Package":{}}}}`, codeNotValid},
		{"negative weight", "/api/rating/v2409/Rate", string(rateBody("03", "US", "-1")), codeNotValid},
		{"non numeric weight", "/api/rating/v2409/Rate", string(rateBody("03", "US", "heavy")), codeNotValid},
		{"unknown service", "/api/rating/v2409/Rate", string(rateBody("99", "US", "1")), "111100"},
		{"unknown request option", "/api/rating/v2409/Quote", string(rateBody("03", "US", "1")), codeNotValid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t)
			tok := login(t, s)["access_token"]
			wantEnvelope(t, serve(s, apiRequest(http.MethodPost, "h", tt.path, tok, []byte(tt.body))), 400, tt.code, "")
		})
	}
}

type shipJSON struct {
	ShipmentResponse struct {
		ShipmentResults struct {
			ShipmentIdentificationNumber string
			BillingWeight                struct{ Weight string }
			ShipmentCharges              struct {
				TotalCharges struct{ MonetaryValue string }
			}
			PackageResults many[struct {
				TrackingNumber string
				ShippingLabel  struct {
					ImageFormat  struct{ Code string }
					GraphicImage string
				}
			}]
		}
	}
}

func ship(t *testing.T, s *Server, tok string, body []byte) shipJSON {
	t.Helper()
	res := serve(s, apiRequest(http.MethodPost, "wwwcie.ups.com", "/api/shipments/v2409/ship", tok, body))
	if res.Status != http.StatusOK {
		t.Fatalf("ship: %d %s", res.Status, res.Body)
	}
	var out shipJSON
	if err := json.Unmarshal(res.Body, &out); err != nil {
		t.Fatalf("ship response: %v", err)
	}
	return out
}

func validUPSTrackingNumber(tn string) bool {
	if len(tn) != 18 || !strings.HasPrefix(tn, "1Z") {
		return false
	}
	return strconv.Itoa(upsCheckDigit(tn[2:17])) == tn[17:]
}

func TestUPSCheckDigitMatchesRealTrackingNumbers(t *testing.T) {
	for _, tn := range []string{"1Z648616E192760718", "1ZWX0692YP40636269"} {
		if !validUPSTrackingNumber(tn) {
			t.Errorf("%s: check digit %d, want %s", tn, upsCheckDigit(tn[2:17]), tn[17:])
		}
	}
}

func TestShipTrackAndVoidFollowOneShipmentThroughItsLife(t *testing.T) {
	// Days pass here; keep the one token alive throughout.
	s, clock := newTestServer(t, func(o *Options) { o.AccessTTL = 30 * 24 * time.Hour })
	tok := login(t, s)["access_token"]
	res := ship(t, s, tok, shipBody("GIF", "5", "12")).ShipmentResponse.ShipmentResults

	if len(res.PackageResults) != 2 {
		t.Fatalf("PackageResults = %d, want one per package", len(res.PackageResults))
	}
	first, second := res.PackageResults[0].TrackingNumber, res.PackageResults[1].TrackingNumber
	for _, tn := range []string{first, second} {
		if !validUPSTrackingNumber(tn) || !strings.HasPrefix(tn, "1ZW599Y703") {
			t.Errorf("tracking number %q is not a valid 1Z number for account W599Y7, Ground", tn)
		}
	}
	if first == second || res.ShipmentIdentificationNumber != first {
		t.Errorf("shipment id %s, packages %s %s: want distinct numbers, shipment id = first package", res.ShipmentIdentificationNumber, first, second)
	}
	if res.BillingWeight.Weight != "000017.0" {
		t.Errorf("BillingWeight = %q, want 17 lb as the spec's 8-character string", res.BillingWeight.Weight)
	}
	img, err := base64.StdEncoding.DecodeString(res.PackageResults[0].ShippingLabel.GraphicImage)
	if err != nil {
		t.Fatalf("label is not base64: %v", err)
	}
	if _, err := gif.Decode(bytes.NewReader(img)); err != nil {
		t.Errorf("GIF label does not decode: %v", err)
	}

	status := func(tn string) string {
		t.Helper()
		r := serve(s, apiRequest(http.MethodGet, "wwwcie.ups.com", "/api/track/v1/details/"+tn, tok, nil))
		if r.Status != http.StatusOK {
			t.Fatalf("track %s: %d %s", tn, r.Status, r.Body)
		}
		var out struct {
			TrackResponse struct {
				Shipment []struct {
					Package []struct {
						CurrentStatus struct{ Type string }
					}
					Warnings []struct{ Code string }
				}
			}
		}
		if err := json.Unmarshal(r.Body, &out); err != nil || len(out.TrackResponse.Shipment) != 1 {
			t.Fatalf("track response: %v %s", err, r.Body)
		}
		sh := out.TrackResponse.Shipment[0]
		if len(sh.Warnings) > 0 {
			return sh.Warnings[0].Code
		}
		return sh.Package[0].CurrentStatus.Type
	}
	if got := status(first); got != "M" {
		t.Errorf("right after shipping status = %s, want M (label created)", got)
	}
	clock.Advance(12 * time.Hour)
	if got := status(first); got != "I" {
		t.Errorf("12h later status = %s, want I (in transit)", got)
	}
	clock.Advance(3 * 24 * time.Hour)
	if got := status(second); got != "D" {
		t.Errorf("after the Ground transit days status = %s, want D (delivered)", got)
	}

	void := func(path string) response {
		return serve(s, apiRequest(http.MethodDelete, "wwwcie.ups.com", path, tok, nil))
	}
	// Package-level void of the second package, then the rest.
	r := void("/api/shipments/v2409/void/cancel/" + first + `?trackingnumber=["` + second + `"]`)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"Voided"`) || !strings.Contains(string(r.Body), second) {
		t.Fatalf("package void: %d %s", r.Status, r.Body)
	}
	if got := status(second); got != "TW0001" {
		t.Errorf("voided package tracks as %s, want TW0001 not found", got)
	}
	if r := void("/api/shipments/v2409/void/cancel/" + first); r.Status != http.StatusOK {
		t.Fatalf("void of the remaining package: %d %s", r.Status, r.Body)
	}
	wantEnvelope(t, void("/api/shipments/v2409/void/cancel/"+first), 400, "190102", "No shipment found within the allowed void period")
}

func TestShipLabelFormats(t *testing.T) {
	tests := []struct {
		format, want string
		check        func([]byte) bool
	}{
		{"GIF", "GIF", func(b []byte) bool { _, err := gif.Decode(bytes.NewReader(b)); return err == nil }},
		{"PNG", "PNG", func(b []byte) bool { _, err := png.Decode(bytes.NewReader(b)); return err == nil }},
		{"ZPL", "ZPL", func(b []byte) bool { return bytes.HasPrefix(b, []byte("^XA")) && bytes.Contains(b, []byte("1Z")) }},
		{"EPL", "EPL", func(b []byte) bool { return bytes.HasPrefix(b, []byte("N\n")) }},
		{"", "GIF", func(b []byte) bool { return bytes.HasPrefix(b, []byte("GIF8")) }},
	}
	for _, tt := range tests {
		t.Run("format "+tt.want+" from "+strconv.Quote(tt.format), func(t *testing.T) {
			s, _ := newTestServer(t)
			tok := login(t, s)["access_token"]
			lbl := ship(t, s, tok, shipBody(tt.format, "3")).ShipmentResponse.ShipmentResults.PackageResults[0].ShippingLabel
			img, err := base64.StdEncoding.DecodeString(lbl.GraphicImage)
			if lbl.ImageFormat.Code != tt.want || err != nil || !tt.check(img) || len(img) > 4096 {
				t.Errorf("label %s, %d bytes, err %v: want a small valid %s", lbl.ImageFormat.Code, len(img), err, tt.want)
			}
		})
	}
}

func TestVoidOfAShipmentTheSimulatorNeverMadeIs190102(t *testing.T) {
	s, _ := newTestServer(t)
	tok := login(t, s)["access_token"]
	wantEnvelope(t, serve(s, apiRequest(http.MethodDelete, "h", "/api/shipments/v2409/void/cancel/1Z2220060294314162", tok, nil)), 400, "190102", "")
}

func TestTrackingAnswers(t *testing.T) {
	tests := []struct {
		name    string
		number  string
		headers map[string]string
		status  int
		want    string
	}{
		{"missing transId", "1Z12345E0205271688", map[string]string{"transId": ""}, 400, codeNotValid},
		{"missing transactionSrc", "1Z12345E0205271688", map[string]string{"transactionSrc": ""}, 400, codeNotValid},
		{"too short inquiry number", "1Z123", nil, 400, "TV1002"},
		{"too long inquiry number", strings.Repeat("1", 35), nil, 400, "TV1002"},
		{"unknown number is 200 with TW0001", "1Z999AA10123456784", nil, 200, `"TW0001"`},
		{"UPS sample number is delivered", "1Z12345E0205271688", nil, 200, `"type":"D"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t)
			tok := login(t, s)["access_token"]
			req := apiRequest(http.MethodGet, "h", "/api/track/v1/details/"+tt.number, tok, nil)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			res := serve(s, req)
			if tt.status == 400 {
				wantEnvelope(t, res, 400, tt.want, "")
				return
			}
			if res.Status != tt.status || !strings.Contains(string(res.Body), tt.want) {
				t.Errorf("got %d %s, want %d containing %s", res.Status, res.Body, tt.status, tt.want)
			}
		})
	}
}

func TestAddressValidation(t *testing.T) {
	full := `{"XAVRequest":{"AddressKeyFormat":{"ConsigneeName":"Ritz Camera","AddressLine":["26601 Aliso Creek Road","STE D"],
		"PoliticalDivision2":"Aliso Viejo","PoliticalDivision1":"CA","PostcodePrimaryLow":"92656","CountryCode":"US"}}}`
	tests := []struct {
		name   string
		option string
		body   string
		status int
		want   []string
		absent []string
	}{
		{"validation and classification", "3", full, 200,
			[]string{`"ValidAddressIndicator":""`, `"26601 ALISO CREEK ROAD"`, `"Description":"Commercial"`, `"PostcodeExtendedLow"`}, nil},
		{"validation only has no classification", "1", full, 200, []string{`"ValidAddressIndicator":""`}, []string{"AddressClassification"}},
		{"classification only has no valid indicator", "2", full, 200, []string{`"AddressClassification"`}, []string{"ValidAddressIndicator"}},
		{"incomplete address has no candidates", "1", `{"XAVRequest":{"AddressKeyFormat":{"AddressLine":"1 Main","CountryCode":"US"}}}`, 200,
			[]string{`"NoCandidatesIndicator":""`}, []string{`"Candidate"`}},
		{"request option 9 is refused", "9", full, 400, []string{codeNotValid}, nil},
		{"missing address is refused", "1", `{"XAVRequest":{}}`, 400, []string{codeNotValid}, nil},
		{"missing country is refused", "1", `{"XAVRequest":{"AddressKeyFormat":{"AddressLine":"1 Main"}}}`, 400, []string{codeNotValid}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t)
			tok := login(t, s)["access_token"]
			res := serve(s, apiRequest(http.MethodPost, "h", "/api/addressvalidation/v2/"+tt.option, tok, []byte(tt.body)))
			if res.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", res.Status, tt.status, res.Body)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(res.Body), w) {
					t.Errorf("response lacks %s: %s", w, res.Body)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(string(res.Body), a) {
					t.Errorf("response has %s: %s", a, res.Body)
				}
			}
		})
	}
}

func TestAPIRoutingByPathVersionAndMethod(t *testing.T) {
	tests := []struct {
		name   string
		method string
		path   string
		status int
	}{
		{"current rating version", "POST", "/api/rating/v2409/Rate", 200},
		{"old rating version still routed", "POST", "/api/rating/v1601/Shop", 200},
		{"bare numeric version as UPS routes it", "POST", "/api/rating/2205/Rate", 200},
		{"lower-case request option", "POST", "/api/rating/v2409/rate", 200},
		{"version word is not a version", "POST", "/api/rating/latest/Rate", 404},
		{"oauth under /api is the documented 404 mistake", "POST", "/api/security/v1/oauth/token", 404},
		{"unknown api", "POST", "/api/pickup/v2409/pickup", 404},
		{"rating without request option", "POST", "/api/rating/v2409", 404},
		{"GET on rating is 405", "GET", "/api/rating/v2409/Rate", 405},
		{"POST on track is 405", "POST", "/api/track/v1/details/1Z12345E0205271688", 405},
		{"GET on void is 405", "GET", "/api/shipments/v2409/void/cancel/1Z12345E0205271688", 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t)
			tok := login(t, s)["access_token"]
			res := serve(s, apiRequest(tt.method, "h", tt.path, tok, rateBody("03", "US", "1")))
			if tt.status == 200 {
				if res.Status != 200 {
					t.Errorf("status %d: %s", res.Status, res.Body)
				}
				return
			}
			wantEnvelope(t, res, tt.status, strconv.Itoa(tt.status), "")
			if tt.status == 405 && res.Header.Get("Allow") == "" {
				t.Errorf("405 without an Allow header")
			}
		})
	}
}

func TestUnknownAPIPathIs404EvenWithoutAToken(t *testing.T) {
	s, _ := newTestServer(t)
	wantEnvelope(t, serve(s, apiRequest(http.MethodPost, "h", "/api/nothing/v1/here", "", nil)), 404, "404", "")
}

func TestRequestsRecordsEveryAPIRequestInOrder(t *testing.T) {
	s, _ := newTestServer(t)
	tok := login(t, s)["access_token"]
	big := bytes.Repeat([]byte("x"), recordLimit+512)
	reqs := []*http.Request{
		apiRequest(http.MethodPost, "wwwcie.ups.com", "/api/rating/v2409/Rate", tok, rateBody("03", "US", "1")),
		apiRequest(http.MethodPost, "onlinetools.ups.com", "/api/rating/v2409/Shop", "", rateBody("03", "US", "1")),
		apiRequest(http.MethodGet, "127.0.0.1:9", "/api/track/v1/details/1Z12345E0205271688?locale=en_US", tok, nil),
		apiRequest(http.MethodPost, "h", "/api/nope", tok, big),
	}
	reqs[0].Header.Set("AccessLicenseNumber", "legacy-key")
	for _, r := range reqs {
		serve(s, r)
	}
	got := s.Requests()
	if len(got) != len(reqs) {
		t.Fatalf("recorded %d requests, want %d", len(got), len(reqs))
	}
	want := []struct{ method, host, path, query string }{
		{"POST", "wwwcie.ups.com", "/api/rating/v2409/Rate", ""},
		{"POST", "onlinetools.ups.com", "/api/rating/v2409/Shop", ""},
		{"GET", "127.0.0.1:9", "/api/track/v1/details/1Z12345E0205271688", "locale=en_US"},
		{"POST", "h", "/api/nope", ""},
	}
	for i, w := range want {
		g := got[i]
		if g.Method != w.method || g.Host != w.host || g.Path != w.path || g.RawQuery != w.query {
			t.Errorf("request %d = %s %s%s?%s, want %s %s%s?%s", i, g.Method, g.Host, g.Path, g.RawQuery, w.method, w.host, w.path, w.query)
		}
	}
	if got[0].Header.Get("AccessLicenseNumber") != "legacy-key" || !bytes.Equal(got[0].Body, rateBody("03", "US", "1")) {
		t.Errorf("first request's headers or body not recorded as sent")
	}
	if len(got[3].Body) != recordLimit {
		t.Errorf("recorded body of %d bytes, want the first %d", len(got[3].Body), recordLimit)
	}
	// Records are copies: changing them does not change the simulator's.
	got[0].Header.Set("AccessLicenseNumber", "changed")
	if s.Requests()[0].Header.Get("AccessLicenseNumber") != "legacy-key" {
		t.Errorf("Requests() exposes the simulator's own records")
	}
	s.ResetRequests()
	if n, m := len(s.Requests()), len(s.OAuthRequests()); n != 0 || m != 0 {
		t.Errorf("after ResetRequests: %d API and %d OAuth records, want none", n, m)
	}
}

func TestOversizedAPIBodyIs413(t *testing.T) {
	s, _ := newTestServer(t)
	tok := login(t, s)["access_token"]
	body := append([]byte(`{"RateRequest":{"pad":"`), bytes.Repeat([]byte("a"), apiBodyLimit)...)
	wantEnvelope(t, serve(s, apiRequest(http.MethodPost, "h", "/api/rating/v2409/Rate", tok, body)), 413, "413", "")
}

func TestRecordingIsBoundedAndKeepsTheNewestInOrder(t *testing.T) {
	var list []Recorded
	for i := range maxRecorded + 10 {
		list = appendRecord(list, Recorded{Path: strconv.Itoa(i)})
	}
	if len(list) > maxRecorded {
		t.Fatalf("kept %d records, want at most %d", len(list), maxRecorded)
	}
	for i := 1; i < len(list); i++ {
		a, _ := strconv.Atoi(list[i-1].Path)
		b, _ := strconv.Atoi(list[i].Path)
		if b != a+1 {
			t.Fatalf("records out of order at %d: %d then %d", i, a, b)
		}
	}
	if last := list[len(list)-1].Path; last != strconv.Itoa(maxRecorded+9) {
		t.Errorf("newest record = %s, want %d", last, maxRecorded+9)
	}
}
