package proxy

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// scanAll scans b as a whole body.
func scanAll(b []byte) *scanner {
	s := new(scanner)
	s.reset()
	s.feed(b)
	s.finish()
	return s
}

// scanPrefix scans b as the prefix of a longer body.
func scanPrefix(b []byte) *scanner {
	s := new(scanner)
	s.reset()
	s.feed(b)
	s.endPrefix()
	return s
}

// scanBody is the result of scanning b as a whole body.
func scanBody(b []byte) scanResult { return scanAll(b).r }

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
		{"keys in any case and escaped",
			`{"raterequest":{"SHIPMENT":{"shipper":{"shipper\u004Eumber":"W599Y7"}}}}`, []string{"W599Y7"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := []byte(c.body)
			sc := scanAll(b)
			if sc.fault != faultNone {
				t.Fatalf("fault %d at %d on a valid body", sc.fault, sc.faultAt)
			}
			r := sc.r
			if got := scanNumbers(b, &r); !reflect.DeepEqual(got, c.want) {
				t.Errorf("numbers = %q, want %q", got, c.want)
			}
		})
	}
}

func TestScanBodyOnATruncatedPrefixKeepsWhatItFoundAndSaysItIsIncomplete(t *testing.T) {
	body := `{"RateRequest":{"Shipment":{"Shipper":{"ShipperNumber":"W599Y7"},"Package":[` + strings.Repeat(`{"Weight":"1"},`, 50)
	b := []byte(body)
	sc := scanPrefix(b)
	r := sc.r
	if r.complete || sc.fault != faultNone {
		t.Errorf("a truncated prefix: complete %v, fault %d", r.complete, sc.fault)
	}
	if got := scanNumbers(b, &r); !reflect.DeepEqual(got, []string{"W599Y7"}) {
		t.Errorf("numbers = %q", got)
	}
	// Cut inside the number itself: nothing half-read is reported.
	cut := []byte(`{"RateRequest":{"Shipment":{"Shipper":{"ShipperNumber":"W59`)
	r = scanPrefix(cut).r
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
		{"in lower case", `{"upssecurity":{"x":"y"},` + rate + `}`, `{` + rate + `}`},
		{"in upper case, escaped and with a long s that folds to s", `{` + rate + `,"UP\u0053\u017FECURITY":1}`, `{` + rate + `}`},
		{"behind a byte order mark, which goes too", "\xEF\xBB\xBF{" + sec + `,` + rate + `}`, `{` + rate + `}`},
		{"nested UPSSecurity is not the legacy element and stays", `{"RateRequest":{"UPSSecurity":"keep"}}`, ``},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := []byte(c.body)
			sc := scanAll(b)
			r := sc.r
			if sc.fault != faultNone {
				t.Fatalf("fault %d at %d on a valid body", sc.fault, sc.faultAt)
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
		"the key ends the prefix":                                  `{"RateRequest":{},"upsSecurity"`,
	} {
		t.Run(name, func(t *testing.T) {
			if sc := scanPrefix([]byte(body)); sc.fault != faultSecurity {
				t.Errorf("fault %d for the prefix %s, want faultSecurity", sc.fault, body)
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
func TestScanRefusesWhatItCannotClassify(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	numbers := func(n int) string {
		return `{"RateRequest":{"Shipment":{"PaymentDetails":{"ShipmentCharge":[` +
			strings.TrimSuffix(strings.Repeat(`{"BillShipper":{"AccountNumber":"X1"}},`, n), ",") + `]}}}}`
	}
	security := func(n int) string {
		return `{` + strings.TrimSuffix(strings.Repeat(`"UPSSecurity":{},`, n), ",") + `}`
	}
	cases := []struct {
		name string
		body string
		want scanFault
	}{
		{"not JSON at all", `RateRequest=W599Y7`, faultSyntax},
		{"XML", `<?xml version="1.0"?><AccessRequest/>`, faultSyntax},
		{"truncated", `{"RateRequest":{"Shipment":{}}`, faultSyntax},
		{"data after the value", `{"a":1}{"UPSSecurity":{}}`, faultSyntax},
		{"trailing comma", `{"a":1,}`, faultSyntax},
		{"single quotes", `{'UPSSecurity':{}}`, faultSyntax},
		{"a control character in a string", "{\"a\":\"x\ty\"}", faultSyntax},
		{"a bad escape", `{"a":"\x41"}`, faultSyntax},
		{"a short unicode escape", `{"a":"\u004"}`, faultSyntax},
		{"a leading zero", `{"a":01}`, faultSyntax},
		{"a bare minus", `{"a":-}`, faultSyntax},
		{"a dot without digits", `{"a":1.}`, faultSyntax},
		{"an exponent without digits", `{"a":1e+}`, faultSyntax},
		{"a misspelt literal", `{"a":nul}`, faultSyntax},
		{"a byte order mark alone", "\xEF\xBB\xBF", faultSyntax},
		{"a byte order mark after whitespace", " \xEF\xBB\xBF{}", faultSyntax},
		{"two byte order marks", "\xEF\xBB\xBF\xEF\xBB\xBF{}", faultSyntax},
		{"UTF-16", "\xFF\xFE{\x00}\x00", faultSyntax},
		{"only whitespace", "  \n", faultSyntax},
		{"nested deeper than the limit", deep(maxScanDepth + 1), faultDepth},
		{"nested deeper than the limit, then UPSSecurity", `{"a":` + deep(maxScanDepth) + `,"UPSSecurity":{}}`, faultDepth},
		{"more shipper numbers than kept", numbers(maxScanNumbers + 1), faultNumbers},
		{"more UPSSecurity members than cut out", security(maxSecuritySpans + 1), faultSecurity},
		{"nested as deep as the limit", deep(maxScanDepth), faultNone},
		{"as many shipper numbers as kept", numbers(maxScanNumbers), faultNone},
		{"as many UPSSecurity members as cut out", security(maxSecuritySpans), faultNone},
		{"a top-level array", `[{"UPSSecurity":{}}]`, faultNone},
		{"a top-level string", `"UPSSecurity"`, faultNone},
		{"a top-level number", ` -0.5e+10 `, faultNone},
		{"invalid UTF-8 inside a string (encoding/json accepts it)", "{\"a\":\"\xff\"}", faultNone},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sc := scanAll([]byte(c.body))
			if sc.fault != c.want {
				t.Errorf("fault %d at %d, want %d", sc.fault, sc.faultAt, c.want)
			}
			if c.want == faultSyntax && json.Valid([]byte(strings.TrimPrefix(c.body, "\xEF\xBB\xBF"))) {
				t.Errorf("the case is valid JSON for encoding/json")
			}
		})
	}
}

// acceptOnly is a shipperCheck that accepts one number (and none of
// another carrier).
type acceptOnly string

func (a acceptOnly) acceptsShipper(n []byte) bool {
	return !strings.EqualFold(string(n), "B22222") || string(a) == "B22222"
}

// scanSplit scans b as a prefix of n bytes and the rest in chunks of size
// chunk, as forward does with a body longer than body_scan_limit.
func scanSplit(b []byte, n, chunk int) *scanner {
	s := new(scanner)
	s.reset()
	s.feed(b[:n])
	s.endPrefix()
	s.check = acceptOnly("A11111")
	for rest := b[n:]; len(rest) > 0 && s.fault == faultNone; {
		k := min(chunk, len(rest))
		s.feed(rest[:k])
		rest = rest[k:]
	}
	s.finish()
	return s
}

func TestScanChecksTheRestOfTheBodyAsItStreams(t *testing.T) {
	pad := `"Pad":"` + strings.Repeat("x", 300) + `",`
	cases := []struct {
		name string
		body string
		want scanFault
	}{
		{"UPSSecurity after a long pad", `{` + pad + `"UPSSecurity":{"UsernameToken":{"Password":"p"}}}`, faultSecurity},
		{"UPSSecurity escaped and in lower case after a long pad", `{` + pad + `"ups\u0073ecurity":1}`, faultSecurity},
		{"another carrier's shipper number after a long pad",
			`{"RateRequest":{` + pad + `"Shipment":{"Shipper":{"ShipperNumber":"B22222"}}}}`, faultForeignShipper},
		{"another carrier's account in a ShipmentCharge array after a long pad",
			`{"RateRequest":{` + pad + `"Shipment":{"PaymentDetails":{"ShipmentCharge":[{},{"BillShipper":{"AccountNumber":"b22222"}}]}}}}`,
			faultForeignShipper},
		{"the chosen carrier's number after a long pad",
			`{"RateRequest":{` + pad + `"Shipment":{"Shipper":{"ShipperNumber":"A11111"}}}}`, faultNone},
		{"a nested UPSSecurity after a long pad is no legacy element", `{` + pad + `"X":{"UPSSecurity":1}}`, faultNone},
		{"invalid JSON after a long pad", `{` + pad + `"a":tru}`, faultSyntax},
		{"truncated after a long pad", `{` + pad + `"a":1`, faultSyntax},
		{"a number cut by the end after a long pad", `{` + pad + `"a":[1`, faultSyntax},
		{"a deep array after a long pad", `{` + pad + `"a":` + strings.Repeat("[", 100), faultDepth},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := []byte(c.body)
			for _, chunk := range []int{1, 7, 4096} {
				if sc := scanSplit(b, 100, chunk); sc.fault != c.want {
					t.Errorf("chunks of %d: fault %d at %d, want %d", chunk, sc.fault, sc.faultAt, c.want)
				}
			}
		})
	}
}

func TestScanGivesTheSameVerdictWhereverThePrefixEnds(t *testing.T) {
	for _, body := range []string{
		`{"RateRequest":{"Request":{"RequestOption":"Shop"},"Shipment":{"Shipper":{"ShipperNumber":"A11111","N":[1,-2.5e3,true,null,"\u00e9\"x"]}}}}`,
		`{"a":[1,2,{"b":"c\"d"}],"x":0.5E-3}`,
		`{"a":1.}`, `{"a":"\u12"}`, `[1,2]x`, ` {"a" : [ ] , "b" : { } } `,
	} {
		b := []byte(body)
		want := scanAll(b).fault
		for n := 0; n <= len(b); n++ {
			got := scanSplit(b, n, 3)
			if got.fault == faultSecurity || got.fault == faultForeignShipper {
				continue
			}
			if got.fault != want {
				t.Errorf("%s split at %d: fault %d at %d, whole: %d", body, n, got.fault, got.faultAt, want)
			}
		}
	}
}

// FuzzScanBody: whatever the body, the scanner never panics, reports only
// byte ranges inside it, judges it valid exactly when encoding/json does
// (but for its own limits, after a byte order mark), and when it lets a
// body through, no top-level UPSSecurity, in any case or escaping,
// survives its edits, whether the body was scanned whole or as a prefix
// and a streamed rest, and every other member does.
func FuzzScanBody(f *testing.F) {
	for _, s := range []string{
		`{"RateRequest":{"Shipment":{"Shipper":{"ShipperNumber":"W599Y7"}}}}`,
		`{"UPSSecurity":{"UsernameToken":{"Username":"u","Password":"p"}},"RateRequest":{"Request":{"RequestOption":"Shop"},"Shipment":{"Shipper":{}}}}`,
		`{"ShipmentRequest":{"Shipment":{"Shipper":{"Name":"x"},"PaymentInformation":{"ShipmentCharge":[{"BillShipper":{"AccountNumber":"B2"}}]}}},"UPSSecurity":1}`,
		`{"a":[1,2,{"b":"c\"d"}],"UPSSecurity":"x","UPSSecurity":null}`,
		`{"RateRequest":{"Shipment":{"Shipper":{"ShipperNumber":""}}}}`,
		`{"UPS\u0053ecurity":[]}`, `{"upssecurity":1}`, `{"UP\u0053\u017FECURITY":1}`, "{\"UPS\u017Fecurity\":1}",
		"\xEF\xBB\xBF{\"UPSSecurity\":{},\"a\":1}", "\xEF\xBB\xBF[]", "\xEF\xBB\xBF",
		`{}`, `[]`, `"x"`, `{"a"`, `{"a":tru`, `{,}`, `{"a":1,}`, `{"a" 1}`, `-0.0e-0`, `01`, `1.`, `"\u00"`,
		strings.Repeat("[", 100), strings.Repeat(`{"a":`, 70),
		`{"a":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `,"UPSSecurity":{}}`,
		`{"Pad":"` + strings.Repeat("x", 200) + `","UPSSecurity":{"Password":"p"}}`,
		`{"RateRequest":{"Pad":"` + strings.Repeat("x", 200) + `","Shipment":{"Shipper":{"ShipperNumber":"B22222"}}}}`,
	} {
		f.Add([]byte(s), uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, b []byte, split uint16) {
		sc := scanAll(b)
		r := &sc.r
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

		plain := b
		if r.bom {
			plain = b[len(utf8BOM):]
		}
		valid := json.Valid(plain)
		switch {
		case valid && sc.fault == faultSyntax:
			t.Fatalf("valid JSON judged invalid at %d: %q", sc.faultAt, b)
		case !valid && sc.fault == faultNone:
			t.Fatalf("invalid JSON judged valid: %q", b)
		case !valid && sc.fault != faultSyntax && sc.fault != faultDepth:
			// Other faults come from valid JSON only (depth can come
			// first: the scanner stops there).
			t.Fatalf("invalid JSON refused as fault %d, not as invalid: %q", sc.fault, b)
		}
		if sc.fault == faultNone {
			checkEdited(t, b, editBody(b, r, fillRoute))
		}

		// The same body as a prefix and a streamed rest: never a
		// UPSSecurity let through that the edits of the prefix miss.
		n := int(split) % (len(b) + 1)
		sp := scanSplit(b, n, 5)
		switch {
		case sp.fault == faultNone && sc.fault != faultNone:
			t.Fatalf("split at %d let through a body refused whole (fault %d): %q", n, sc.fault, b)
		case sp.fault == faultNone:
			edited := editBody(b[:n], &sp.r, &route{name: "nofill"})
			if edited == nil {
				edited = b[:n]
			}
			checkEdited(t, b, append(slices.Clone(edited), b[n:]...))
		}
	})
}

// checkEdited checks an edited body that the scanner let through: valid
// JSON without any top-level UPSSecurity, with every other member of b.
func checkEdited(t *testing.T, b, edited []byte) {
	t.Helper()
	if edited == nil {
		edited = b
	}
	if !json.Valid(edited) {
		t.Fatalf("edits made invalid JSON:\n%q\n->\n%q", b, edited)
	}
	var after map[string]json.RawMessage
	if json.Unmarshal(edited, &after) != nil {
		return // not an object
	}
	for k := range after {
		if strings.EqualFold(k, "UPSSecurity") {
			t.Fatalf("UPSSecurity survived as %q:\n%q\n->\n%q", k, b, edited)
		}
	}
	var before map[string]json.RawMessage
	if json.Unmarshal(bytes.TrimPrefix(b, utf8BOM), &before) != nil {
		t.Fatalf("the original is not an object, the edited one is: %q", b)
	}
	for k := range before {
		if strings.EqualFold(k, "UPSSecurity") {
			continue
		}
		if _, ok := after[k]; !ok {
			t.Fatalf("member %q lost:\n%q\n->\n%q", k, b, edited)
		}
	}
}
