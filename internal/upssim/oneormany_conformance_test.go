package upssim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
)

// arrayNote is UPS's one-or-many note on a list property: "For versions >=
// v2409, this element will always be returned as an array. For requests
// using versions < v2409, ... a single object if there is only 1."
var arrayNote = regexp.MustCompile(`For versions? >= v(\d+), this element will always be returned as an array`)

// undocumentedOneOrMany are lists UPS returns one-or-many although the
// spec declares a plain array, each with the evidence (see the simulator's
// code): property name -> the version from which it is always an array.
var undocumentedOneOrMany = map[string]int{
	"LabelResults": labelResultsArraysSince, // abantecart/ups-php issue 12: a v1 recovery answered a lone object
}

// fixSpec corrects contradictions inside UPS's specs that no answer could
// satisfy, each named.
func fixSpec(doc *openapi3.T) {
	// Shipping.yaml: LabelImage_LabelImageFormat.Code has minLength 4,
	// while its own description says "Valid value returned is GIF or PDF".
	if ref := doc.Components.Schemas["LabelImage_LabelImageFormat"]; ref != nil && ref.Value != nil {
		if code := ref.Value.Properties["Code"]; code != nil && code.Value != nil {
			code.Value.MinLength = 3
		}
	}
}

// oneOrManyShapes checks every one-or-many list in res against the spec's
// notes for a request of API version version: from the note's version on
// it must be an array; below it a lone item must be a bare object and
// several an array. It returns the body with bare objects wrapped in
// arrays (nil when nothing changed) for validation against the schema.
func (sp *apiSpec) oneOrManyShapes(route *routers.Route, res response, version int) (normalized []byte, problems []string) {
	ref := route.Operation.Responses.Status(res.Status)
	if ref == nil || ref.Value == nil {
		return nil, nil
	}
	mt := ref.Value.Content.Get("application/json")
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal(res.Body, &v); err != nil {
		return nil, nil
	}
	changed := false
	v = walkOneOrMany(mt.Schema.Value, v, "", version, &problems, &changed)
	if !changed {
		return nil, problems
	}
	b, _ := json.Marshal(v)
	return b, problems
}

func walkOneOrMany(s *openapi3.Schema, v any, at string, version int, problems *[]string, changed *bool) any {
	if s == nil {
		return v
	}
	switch val := v.(type) {
	case map[string]any:
		props := schemaProperties(s)
		for k, child := range val {
			p, ok := props[k]
			if !ok || p.Value == nil {
				continue
			}
			if since, ok := arraysSince(k, p.Value); ok {
				switch c := child.(type) {
				case map[string]any:
					if version >= since {
						*problems = append(*problems, at+"/"+k+" is a lone object; from v"+strconv.Itoa(since)+" on the spec wants an array")
					}
					child = []any{c}
					*changed = true
				case []any:
					if version < since && len(c) == 1 {
						*problems = append(*problems, at+"/"+k+" is a one-element array; before v"+strconv.Itoa(since)+" UPS sends a lone object")
					}
				}
			}
			val[k] = walkOneOrMany(p.Value, child, at+"/"+k, version, problems, changed)
		}
		return val
	case []any:
		items := schemaItems(s)
		for i, child := range val {
			val[i] = walkOneOrMany(items, child, at+"/"+strconv.Itoa(i), version, problems, changed)
		}
		return val
	}
	return v
}

// arraysSince reads the version from which property name (schema s) is
// always an array.
func arraysSince(name string, s *openapi3.Schema) (int, bool) {
	if m := arrayNote.FindStringSubmatch(s.Description); m != nil {
		n, err := strconv.Atoi(m[1])
		return n, err == nil
	}
	n, ok := undocumentedOneOrMany[name]
	return n, ok
}

// shape returns "object" or "array" for the JSON value at the dotted path
// (array elements by index) of body.
func shape(t *testing.T, body []byte, path string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("answer is not JSON: %v\n%s", err, clip(string(body), 500))
	}
	for _, p := range strings.Split(path, ".") {
		switch c := v.(type) {
		case map[string]any:
			v = c[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(c) {
				t.Fatalf("%s: no element %s in %s", path, p, clip(string(body), 500))
			}
			v = c[i]
		}
	}
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	t.Fatalf("%s is neither object nor array in %s", path, clip(string(body), 500))
	return ""
}

// UPS's one-or-many lists follow the version notes of its specs: a Rate
// answer's RatedShipment is an object for the versions legacy clients use
// (v1 ... v2403) and an array from v2409; a Shop answer's is an array
// always. Every answer also passes roundTrip's generic check of every noted
// list against the vendored specs.
func TestOneOrManyListsFollowTheSpecNotes(t *testing.T) {
	rating := loadSpec(t, "Rating.yaml", "/api")
	shipping := loadSpec(t, "Shipping.yaml", "/api")
	xav := loadSpec(t, "AddressValidation.yaml", "/api")
	s, _ := newTestServer(t)
	tok := login(t, s)["access_token"]
	req := func(method, path string, body []byte) *http.Request {
		return apiRequest(method, "wwwcie.ups.com", path, tok, body)
	}
	type want struct{ path, shape string }
	check := func(t *testing.T, res response, wants ...want) {
		t.Helper()
		if res.Status != 200 {
			t.Fatalf("status %d: %s", res.Status, clip(string(res.Body), 500))
		}
		for _, w := range wants {
			if got := shape(t, res.Body, w.path); got != w.shape {
				t.Errorf("%s is an %s, want an %s", w.path, got, w.shape)
			}
		}
	}
	rateBody := func(option string, packages int) []byte {
		m := specRate(t, rating)
		set(t, m, "RateRequest.Request.RequestOption", option)
		pkgs := m["RateRequest"].(map[string]any)["Shipment"].(map[string]any)["Package"].([]any)
		for len(pkgs) < packages {
			pkgs = append(pkgs, pkgs[0])
		}
		set(t, m, "RateRequest.Shipment.Package", pkgs[:packages])
		return jsonBody(t, m)
	}

	for _, tt := range []struct {
		version, option string
		packages        int
		wants           []want
	}{
		{"v1", "Rate", 1, []want{{"RateResponse.RatedShipment", "object"}, {"RateResponse.RatedShipment.RatedPackage", "object"}, {"RateResponse.Response.Alert", "object"}}},
		{"v2205", "Rate", 2, []want{{"RateResponse.RatedShipment", "object"}, {"RateResponse.RatedShipment.RatedPackage", "array"}}},
		{"v2403", "Rate", 1, []want{{"RateResponse.RatedShipment", "object"}, {"RateResponse.RatedShipment.RatedPackage", "array"}, {"RateResponse.Response.Alert", "array"}}},
		{"v2409", "Rate", 1, []want{{"RateResponse.RatedShipment", "array"}, {"RateResponse.RatedShipment.0.RatedPackage", "array"}}},
		{"v1", "Shop", 1, []want{{"RateResponse.RatedShipment", "array"}, {"RateResponse.RatedShipment.0.RatedPackage", "object"}}},
		{"v2409", "Shop", 1, []want{{"RateResponse.RatedShipment", "array"}, {"RateResponse.RatedShipment.0.RatedPackage", "array"}}},
	} {
		t.Run(tt.option+" "+tt.version, func(t *testing.T) {
			path := "/api/rating/" + tt.version + "/" + tt.option
			check(t, rating.roundTrip(t, s, req(http.MethodPost, path, rateBody(tt.option, tt.packages)), true), tt.wants...)
		})
	}

	shipBody := func(packages int) []byte {
		m := specShip(t, shipping)
		pkgs := m["ShipmentRequest"].(map[string]any)["Shipment"].(map[string]any)["Package"].([]any)
		for len(pkgs) < packages {
			pkgs = append(pkgs, pkgs[0])
		}
		set(t, m, "ShipmentRequest.Shipment.Package", pkgs[:packages])
		return jsonBody(t, m)
	}
	var shipped []string // tracking numbers of a one-package v1 shipment, then a two-package one
	for _, tt := range []struct {
		version  string
		packages int
		want     string
	}{
		{"v1", 1, "object"}, {"v2205", 2, "array"}, {"v2403", 1, "array"}, {"v2409", 1, "array"},
	} {
		t.Run("Ship "+tt.version, func(t *testing.T) {
			res := shipping.roundTrip(t, s, req(http.MethodPost, "/api/shipments/"+tt.version+"/ship", shipBody(tt.packages)), true)
			check(t, res, want{"ShipmentResponse.ShipmentResults.PackageResults", tt.want})
			var out shipJSON
			_ = json.Unmarshal(res.Body, &out)
			for _, p := range out.ShipmentResponse.ShipmentResults.PackageResults {
				shipped = append(shipped, p.TrackingNumber)
			}
		})
	}
	if len(shipped) < 3 {
		t.Fatalf("shipped %v", shipped)
	}

	recovery := func(tracking ...string) []byte {
		m := shipping.example(t, "/labels/{version}/recovery", http.MethodPost, "1")
		set(t, m, "LabelRecoveryRequest.TrackingNumber", tracking[0])
		set(t, m, "LabelRecoveryRequest.LabelSpecification.LabelImageFormat.Code", "GIF")
		if len(tracking) > 1 {
			delete(m["LabelRecoveryRequest"].(map[string]any), "TrackingNumber")
			set(t, m, "LabelRecoveryRequest.TrackingNumbers", tracking)
		}
		return jsonBody(t, m)
	}
	t.Run("Label Recovery v1 of one label", func(t *testing.T) {
		// Shipping.yaml requires TrackingNumbers and ReferenceValues, which
		// its own standard example (TrackingNumber only) lacks: only the
		// answer is checked.
		res := shipping.roundTrip(t, s, req(http.MethodPost, "/api/labels/v1/recovery", recovery(shipped[0])), false)
		check(t, res, want{"LabelRecoveryResponse.LabelResults", "object"})
		if !bytes.Contains(res.Body, []byte(`"TrackingNumber":"`+shipped[0]+`"`)) {
			t.Errorf("the recovered label is not %s's: %s", shipped[0], clip(string(res.Body), 300))
		}
	})
	t.Run("Label Recovery where the legacy translation leads", func(t *testing.T) {
		// internal/proxy/legacy.go keeps the client's version segment:
		// /ship/V1903/shipments/labels becomes /api/labels/V1903/recovery.
		res := shipping.roundTrip(t, s, req(http.MethodPost, "/api/labels/V1903/recovery", recovery(shipped[0])), false)
		check(t, res, want{"LabelRecoveryResponse.LabelResults", "object"})
	})
	t.Run("Label Recovery v2409 of two labels", func(t *testing.T) {
		res := shipping.roundTrip(t, s, req(http.MethodPost, "/api/labels/v2409/recovery", recovery(shipped[1], shipped[2])), false)
		check(t, res, want{"LabelRecoveryResponse.LabelResults", "array"})
	})
	t.Run("Label Recovery of an unknown number", func(t *testing.T) {
		wantEnvelope(t, shipping.roundTrip(t, s, req(http.MethodPost, "/api/labels/v1/recovery", recovery("1Z999AA10123456784")), false), 400, codeNotValid, "")
	})
	t.Run("Void v1 of one package", func(t *testing.T) {
		res := shipping.roundTrip(t, s, req(http.MethodDelete, "/api/shipments/v1/void/cancel/"+shipped[1]+"?trackingnumber="+shipped[1], nil), true)
		check(t, res, want{"VoidShipmentResponse.PackageLevelResults", "object"})
	})
	t.Run("Label Recovery of a voided package", func(t *testing.T) {
		wantEnvelope(t, shipping.roundTrip(t, s, req(http.MethodPost, "/api/labels/v1/recovery", recovery(shipped[1])), false), 400, codeNotValid, "")
	})

	for _, tt := range []struct{ version, want string }{{"v1", "object"}, {"v2", "array"}} {
		t.Run("Address Validation "+tt.version, func(t *testing.T) {
			body := jsonBody(t, xav.example(t, "/addressvalidation/{version}/{requestoption}", http.MethodPost, "json"))
			res := xav.roundTrip(t, s, req(http.MethodPost, "/api/addressvalidation/"+tt.version+"/3", body), true)
			check(t, res, want{"XAVResponse.Candidate", tt.want})
		})
	}
}
