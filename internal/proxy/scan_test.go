package proxy

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// scanNumbers is what the scanner reports as shipper numbers, decoded.
func scanNumbers(b []byte, r *scanResult) []string {
	var out []string
	for i := 0; i < r.nNumbers; i++ {
		out = append(out, string(r.numbers[i].value(b)))
	}
	return out
}

func TestScanBodyFindsShipperNumbersWhereverUPSAndLegacyClientsPutThem(t *testing.T) {
	cases := []struct {
		name string
		body string
		want []string
	}{
		{"Rate: Shipper.ShipperNumber",
			`{"RateRequest":{"Shipment":{"Shipper":{"Name":"x","ShipperNumber":"W599Y7"}}}}`, []string{"W599Y7"}},
		{"Ship: Shipper.ShipperNumber",
			`{"ShipmentRequest":{"Shipment":{"Shipper":{"ShipperNumber":"A11111"}}}}`, []string{"A11111"}},
		{"Ship: ShipmentCharge as an object (legacy clients)",
			`{"ShipmentRequest":{"Shipment":{"PaymentInformation":{"ShipmentCharge":{"Type":"01","BillShipper":{"AccountNumber":"B22222"}}}}}}`,
			[]string{"B22222"}},
		{"Rate: ShipmentCharge as an array with two entries",
			`{"RateRequest":{"Shipment":{"PaymentDetails":{"ShipmentCharge":[{"Type":"01","BillShipper":{"AccountNumber":"B22222"}},{"Type":"02","BillShipper":{"AccountNumber":"C33333"}}]}}}}`,
			[]string{"B22222", "C33333"}},
		{"escaped characters are decoded",
			`{"RateRequest":{"Shipment":{"Shipper":{"ShipperNumber":"W5\u0039\u0039Y7"}}}}`, []string{"W599Y7"}},
		{"a ShipperNumber outside Shipment.Shipper is not a shipper number",
			`{"RateRequest":{"Shipment":{"ShipTo":{"ShipperNumber":"NOPE1"},"Shipper":{"Name":"x"}}},"Shipper":{"ShipperNumber":"NOPE2"}}`, nil},
		{"an AccountNumber of BillReceiver or BillThirdParty is not the shipper's",
			`{"ShipmentRequest":{"Shipment":{"PaymentInformation":{"ShipmentCharge":[{"BillReceiver":{"AccountNumber":"R1"}},{"BillThirdParty":{"AccountNumber":"T1"}}]}}}}`, nil},
		{"non-string numbers are ignored",
			`{"RateRequest":{"Shipment":{"Shipper":{"ShipperNumber":123456}}}}`, nil},
		{"whitespace everywhere JSON allows it",
			" {\n \"RateRequest\" : {\t\"Shipment\" :\r\n{ \"Shipper\" : { \"ShipperNumber\" : \"W599Y7\" } } } } ", []string{"W599Y7"}},
		{"a body that is not an object", `["RateRequest"]`, nil},
		{"not JSON at all", `RateRequest=W599Y7`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := []byte(c.body)
			r := scanBody(b)
			if got := scanNumbers(b, &r); !reflect.DeepEqual(got, c.want) {
				t.Errorf("numbers = %q, want %q", got, c.want)
			}
		})
	}
}

func TestScanBodyOnATruncatedPrefixKeepsWhatItFoundAndSaysItIsIncomplete(t *testing.T) {
	body := `{"RateRequest":{"Shipment":{"Shipper":{"ShipperNumber":"W599Y7"},"Package":[` + strings.Repeat(`{"Weight":"1"},`, 50)
	b := []byte(body)
	r := scanBody(b)
	if r.complete {
		t.Error("a truncated body reported complete")
	}
	if got := scanNumbers(b, &r); !reflect.DeepEqual(got, []string{"W599Y7"}) {
		t.Errorf("numbers = %q", got)
	}
	// Cut inside the number itself: nothing half-read is reported.
	cut := []byte(`{"RateRequest":{"Shipment":{"Shipper":{"ShipperNumber":"W59`)
	r = scanBody(cut)
	if r.nNumbers != 0 || r.complete {
		t.Errorf("a number cut by the prefix end was reported: %q", scanNumbers(cut, &r))
	}
}

// fillRoute is a carrier that fills a missing shipper number with W599Y7.
var fillRoute = &route{name: "main", fill: true, fillNumber: "W599Y7"}

func TestEditBodyCutsOutUPSSecurityWhereverItIsAndKeepsEverythingElseByteForByte(t *testing.T) {
	sec := `"UPSSecurity":{"UsernameToken":{"Username":"u","Password":"p"},"ServiceAccessToken":{"AccessLicenseNumber":"k"}}`
	rate := `"RateRequest":{"Request":{"RequestOption":"Shop"}}`
	cases := []struct {
		name, body, want string
	}{
		{"first member", `{` + sec + `,` + rate + `}`, `{` + rate + `}`},
		{"last member", `{` + rate + `,` + sec + `}`, `{` + rate + `}`},
		{"middle member", `{"a":1,` + sec + `,"b":2}`, `{"a":1,"b":2}`},
		{"only member", `{ ` + sec + ` }`, `{  }`},
		{"with whitespace around commas", "{\n  " + sec + " ,\n  " + rate + "\n}", "{\n  \n  " + rate + "\n}"},
		{"twice (duplicate keys)", `{` + sec + `,` + rate + `,` + sec + `}`, `{` + rate + `}`},
		{"spelt with escapes", `{"UPS\u0053ecurity":{"x":"y"},` + rate + `}`, `{` + rate + `}`},
		{"nested UPSSecurity is not the legacy element and stays", `{"RateRequest":{"UPSSecurity":"keep"}}`, ``},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := []byte(c.body)
			r := scanBody(b)
			if r.securityOpen {
				t.Fatal("securityOpen on a complete body")
			}
			got := editBody(b, &r, &route{name: "nofill"})
			if c.want == "" {
				if got != nil {
					t.Fatalf("body edited to %s, want it untouched", got)
				}
				return
			}
			if string(got) != c.want {
				t.Errorf("edited body\n got %s\nwant %s", got, c.want)
			}
			if !json.Valid(got) {
				t.Errorf("edited body is not valid JSON: %s", got)
			}
		})
	}
}

func TestScanBodyReportsAUPSSecurityItCannotCutOut(t *testing.T) {
	for name, body := range map[string]string{
		"the member does not end within the prefix":                `{"UPSSecurity":{"UsernameToken":{"Username":"u","Pass`,
		"a first member whose trailing comma is beyond the prefix": `{"UPSSecurity":{"a":"b"}  `,
	} {
		t.Run(name, func(t *testing.T) {
			r := scanBody([]byte(body))
			if !r.securityOpen {
				t.Errorf("securityOpen not set for %s", body)
			}
		})
	}
}

func TestEditBodyFillsAMissingOrEmptyShipperNumberOnly(t *testing.T) {
	cases := []struct {
		name, body, want string
	}{
		{"no ShipperNumber key", `{"RateRequest":{"Shipment":{"Shipper":{"Name":"W"}}}}`,
			`{"RateRequest":{"Shipment":{"Shipper":{"ShipperNumber":"W599Y7","Name":"W"}}}}`},
		{"empty Shipper object", `{"ShipmentRequest":{"Shipment":{"Shipper":{}}}}`,
			`{"ShipmentRequest":{"Shipment":{"Shipper":{"ShipperNumber":"W599Y7"}}}}`},
		{"empty string (UPS's own examples send it)", `{"RateRequest":{"Shipment":{"Shipper":{"ShipperNumber":"","Name":"W"}}}}`,
			`{"RateRequest":{"Shipment":{"Shipper":{"ShipperNumber":"W599Y7","Name":"W"}}}}`},
		{"blank string", `{"RateRequest":{"Shipment":{"Shipper":{"ShipperNumber":" "}}}}`,
			`{"RateRequest":{"Shipment":{"Shipper":{"ShipperNumber":"W599Y7"}}}}`},
		{"a number is kept", `{"RateRequest":{"Shipment":{"Shipper":{"ShipperNumber":"A11111"}}}}`, ``},
		{"a non-string number is kept", `{"RateRequest":{"Shipment":{"Shipper":{"ShipperNumber":null}}}}`, ``},
		{"no Shipper object: nothing to fill", `{"RateRequest":{"Shipment":{}}}`, ``},
		{"not a Rate or Ship request", `{"XAVRequest":{"Shipper":{}}}`, ``},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := []byte(c.body)
			r := scanBody(b)
			got := editBody(b, &r, fillRoute)
			if c.want == "" {
				if got != nil {
					t.Fatalf("body edited to %s, want it untouched", got)
				}
				return
			}
			if string(got) != c.want {
				t.Errorf("edited body\n got %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestScanBodyReadsTheRequestOptionOfALegacyRestRate(t *testing.T) {
	b := []byte(`{"UPSSecurity":{},"RateRequest":{"Request":{"RequestOption":"shop"},"Shipment":{}}}`)
	r := scanBody(b)
	if !r.requestOptionFound || rateOperation(string(r.requestOption.value(b))) != "Shop" {
		t.Errorf("request option not found or not mapped: %v", r.requestOptionFound)
	}
	if rateOperation("") != "Rate" || rateOperation("nonsense") != "Rate" {
		t.Error("a missing or unknown RequestOption must give UPS's default, Rate")
	}
}

// FuzzScanBody: whatever the body, the scanner never panics, reports only
// byte ranges inside it, and on a complete JSON object its edits give
// valid JSON with the same members but UPSSecurity, and the filled number.
func FuzzScanBody(f *testing.F) {
	for _, s := range []string{
		`{"RateRequest":{"Shipment":{"Shipper":{"ShipperNumber":"W599Y7"}}}}`,
		`{"UPSSecurity":{"UsernameToken":{"Username":"u","Password":"p"}},"RateRequest":{"Request":{"RequestOption":"Shop"},"Shipment":{"Shipper":{}}}}`,
		`{"ShipmentRequest":{"Shipment":{"Shipper":{"Name":"x"},"PaymentInformation":{"ShipmentCharge":[{"BillShipper":{"AccountNumber":"B2"}}]}}},"UPSSecurity":1}`,
		`{"a":[1,2,{"b":"c\"d"}],"UPSSecurity":"x","UPSSecurity":null}`,
		`{"RateRequest":{"Shipment":{"Shipper":{"ShipperNumber":""}}}}`,
		`{"UPS\u0053ecurity":[]}`, `{}`, `[]`, `"x"`, `{"a"`, `{"a":tru`, `{,}`, `{"a":1,}`, `{"a" 1}`,
		strings.Repeat("[", 100), strings.Repeat(`{"a":`, 70),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := scanBody(b)
		inside := func(s span) bool { return 0 <= s.start && s.start <= s.end && s.end <= len(b) }
		for i := 0; i < r.nNumbers; i++ {
			if !inside(r.numbers[i].raw) || !inside(r.numbers[i].quoted) {
				t.Fatalf("number span %+v outside the body", r.numbers[i])
			}
		}
		for i := 0; i < r.nSecurity; i++ {
			if !inside(r.security[i]) {
				t.Fatalf("security span %+v outside the body", r.security[i])
			}
		}
		if r.shipperOpen > len(b) {
			t.Fatalf("shipperOpen %d outside the body", r.shipperOpen)
		}
		edited := editBody(b, &r, fillRoute)
		if !r.complete || r.invalid || r.securityOpen || !json.Valid(b) {
			return
		}
		var before map[string]json.RawMessage
		if json.Unmarshal(b, &before) != nil {
			return
		}
		if edited == nil {
			edited = b
		}
		var after map[string]json.RawMessage
		if err := json.Unmarshal(edited, &after); err != nil {
			t.Fatalf("edits made invalid JSON: %v\n%s\n->\n%s", err, b, edited)
		}
		if _, ok := after["UPSSecurity"]; ok {
			t.Fatalf("UPSSecurity survived: %s", edited)
		}
		delete(before, "UPSSecurity")
		if len(before) != len(after) {
			t.Fatalf("members changed: %d before, %d after\n%s\n->\n%s", len(before), len(after), b, edited)
		}
		for k := range before {
			if _, ok := after[k]; !ok {
				t.Fatalf("member %q lost", k)
			}
		}
	})
}
