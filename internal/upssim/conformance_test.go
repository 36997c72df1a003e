package upssim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// These tests hold the simulator to UPS's own OpenAPI specs: every test
// request is first proved spec-valid, then the simulator's answer is
// validated against the operation's response schema, and must not carry
// fields the spec does not declare.
//
// UPS's request examples contradict UPS's schemas in places (a lone
// Package object where the schema wants an array, RequestOption missing
// although required, "" account numbers under a minLength of 6...). The
// requests below start from the spec's examples and fix exactly those
// contradictions, each named where it is made. TestSpecExamplesAsSentByClients
// checks that the simulator, like UPS, also accepts the examples unfixed.

// specDir is the repository's vendored copy of UPS's specs
// (third_party/ups-openapi), relative to this package's folder, which is
// the working directory of `go test`.
const specDir = "../../third_party/ups-openapi"

type apiSpec struct {
	name   string
	doc    *openapi3.T
	router routers.Router
}

var specs sync.Map // file name -> *apiSpec, loaded once per test binary

// loadSpec loads a UPS spec with its servers replaced by base, a path
// without host, so the router matches whatever host the simulator is
// addressed as. UPS declares servers such as https://wwwcie.ups.com/api
// at the top level and https://wwwcie.ups.com/security per operation;
// gorillamux only honours top-level and path-level servers, so the
// operation-level ones are dropped too.
func loadSpec(t *testing.T, file, base string) *apiSpec {
	t.Helper()
	if v, ok := specs.Load(file); ok {
		return v.(*apiSpec)
	}
	path := filepath.Join(specDir, file)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("UPS OpenAPI spec %s is missing (%v): the conformance tests need the repository's third_party/ups-openapi folder", path, err)
	}
	// UPS's files fail kin-openapi's own document validation (empty
	// info.version, examples that contradict their schemas), so the
	// document is loaded but not Validate()d; request and response
	// validation work regardless.
	doc, err := openapi3.NewLoader().LoadFromFile(path)
	if err != nil {
		t.Fatalf("loading %s: %v", path, err)
	}
	doc.Servers = openapi3.Servers{{URL: base}}
	for _, item := range doc.Paths.Map() {
		item.Servers = nil
		for _, op := range item.Operations() {
			op.Servers = nil
		}
	}
	fixSpec(doc)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("routing %s: %v", file, err)
	}
	sp := &apiSpec{name: file, doc: doc, router: router}
	specs.Store(file, sp)
	return sp
}

func validationOptions(responses bool) *openapi3filter.Options {
	return &openapi3filter.Options{
		// The simulator's own tests cover authentication; the spec's
		// security schemes only say "Basic" or "OAuth2".
		AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
		// Validate what is sent, not what kin-openapi would add.
		SkipSettingDefaults:     true,
		MultiError:              true,
		IncludeResponseStatus:   responses,
		SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.DisableSchemaErrorDetails()},
	}
}

// roundTrip proves req spec-valid (when checkRequest), runs it through the
// simulator and validates the answer against the spec.
func (sp *apiSpec) roundTrip(t *testing.T, s *Server, req *http.Request, checkRequest bool) response {
	t.Helper()
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
	}
	reset := func() { req.Body = io.NopCloser(bytes.NewReader(body)) }
	reset()
	route, params, err := sp.router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s has no operation for %s %s: %v", sp.name, req.Method, req.URL.Path, err)
	}
	ctx := context.Background()
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: validationOptions(false)}
	if checkRequest {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			t.Errorf("the test's own %s request is not valid for %s %s: %v", route.Operation.OperationID, sp.name, route.Path, err)
		}
		reset()
	}
	res := serve(s, req)

	// UPS's one-or-many lists: the shape must follow the spec's note for
	// the request's version; a lone object is then validated as the
	// one-element array the schema declares.
	body = res.Body
	if normalized, problems := sp.oneOrManyShapes(route, res, apiVersion(req.URL.Path)); len(problems) > 0 {
		t.Errorf("simulator's answer to %s %s breaks the one-or-many notes of %s: %v", route.Operation.OperationID, req.URL.Path, sp.name, problems)
	} else if normalized != nil {
		body = normalized
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.Status, Header: res.Header, Options: validationOptions(true)}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("simulator's %d answer to %s breaks %s: %v\nbody: %s", res.Status, route.Operation.OperationID, sp.name, err, clip(string(res.Body), 2000))
	}
	if extra := sp.undeclaredFields(route, res); len(extra) > 0 {
		t.Errorf("simulator's answer to %s has fields %s does not declare: %v", route.Operation.OperationID, sp.name, extra)
	}
	return res
}

// undeclaredFields lists JSON members of res that the operation's response
// schema does not name: the simulator must not invent UPS fields.
func (sp *apiSpec) undeclaredFields(route *routers.Route, res response) []string {
	ref := route.Operation.Responses.Status(res.Status)
	if ref == nil || ref.Value == nil {
		return nil
	}
	mt := ref.Value.Content.Get("application/json")
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
		return nil
	}
	var v any
	if err := json.Unmarshal(res.Body, &v); err != nil {
		return nil // ValidateResponse reports bodies that are not JSON
	}
	var out []string
	walkUndeclared(mt.Schema.Value, v, "", &out)
	sort.Strings(out)
	return out
}

func walkUndeclared(s *openapi3.Schema, v any, at string, out *[]string) {
	if s == nil {
		return
	}
	switch val := v.(type) {
	case map[string]any:
		props := schemaProperties(s)
		if len(props) == 0 {
			return // a free-form object
		}
		for k, child := range val {
			p, ok := props[k]
			if !ok || p.Value == nil {
				*out = append(*out, at+"/"+k)
				continue
			}
			walkUndeclared(p.Value, child, at+"/"+k, out)
		}
	case []any:
		items := schemaItems(s)
		for i, child := range val {
			walkUndeclared(items, child, at+"/"+strconv.Itoa(i), out)
		}
	}
}

func schemaProperties(s *openapi3.Schema) map[string]*openapi3.SchemaRef {
	props := map[string]*openapi3.SchemaRef{}
	for k, v := range s.Properties {
		props[k] = v
	}
	for _, group := range []openapi3.SchemaRefs{s.AllOf, s.OneOf, s.AnyOf} {
		for _, ref := range group {
			if ref != nil && ref.Value != nil {
				for k, v := range schemaProperties(ref.Value) {
					props[k] = v
				}
			}
		}
	}
	return props
}

func schemaItems(s *openapi3.Schema) *openapi3.Schema {
	if s.Items != nil {
		return s.Items.Value
	}
	for _, group := range []openapi3.SchemaRefs{s.AllOf, s.OneOf, s.AnyOf} {
		for _, ref := range group {
			if ref != nil && ref.Value != nil {
				if it := schemaItems(ref.Value); it != nil {
					return it
				}
			}
		}
	}
	return nil
}

// example returns a deep copy of one of the spec's request examples.
func (sp *apiSpec) example(t *testing.T, path, method, name string) map[string]any {
	t.Helper()
	item := sp.doc.Paths.Value(path)
	if item == nil || item.GetOperation(method) == nil || item.GetOperation(method).RequestBody == nil {
		t.Fatalf("%s has no %s %s with a request body", sp.name, method, path)
	}
	mt := item.GetOperation(method).RequestBody.Value.Content.Get("application/json")
	ex, ok := mt.Examples[name]
	if !ok || ex.Value == nil {
		t.Fatalf("%s %s %s has no example %q", sp.name, method, path, name)
	}
	b, err := json.Marshal(ex.Value.Value)
	if err != nil {
		t.Fatalf("example %q: %v", name, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("example %q is not an object: %v", name, err)
	}
	return m
}

// Dotted-path edits of example bodies ("A.B.0.C").

func lookup(t *testing.T, m map[string]any, path string) (parent any, key string) {
	t.Helper()
	parts := strings.Split(path, ".")
	var cur any = m
	for _, p := range parts[:len(parts)-1] {
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[p]
			if !ok {
				next = map[string]any{}
				c[p] = next
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(c) {
				t.Fatalf("example path %s: no element %s", path, p)
			}
			cur = c[i]
		default:
			t.Fatalf("example path %s: %s is not a container", path, p)
		}
	}
	return cur, parts[len(parts)-1]
}

func set(t *testing.T, m map[string]any, path string, v any) {
	t.Helper()
	parent, key := lookup(t, m, path)
	obj, ok := parent.(map[string]any)
	if !ok {
		t.Fatalf("example path %s: parent is not an object", path)
	}
	obj[key] = v
}

// asArray wraps a lone object in an array, as the schema wants.
func asArray(t *testing.T, m map[string]any, path string) {
	t.Helper()
	parent, key := lookup(t, m, path)
	obj := parent.(map[string]any)
	if _, already := obj[key].([]any); !already {
		obj[key] = []any{obj[key]}
	}
}

func jsonBody(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// specRate is Rating.yaml's "Simple Rate Example", made schema-valid.
func specRate(t *testing.T, sp *apiSpec) map[string]any {
	m := sp.example(t, "/rating/{version}/{requestoption}", http.MethodPost, "1")
	set(t, m, "RateRequest.Request.RequestOption", "Rate")                                                // required by the schema, absent in the example
	asArray(t, m, "RateRequest.Shipment.Package")                                                         // schema: array
	set(t, m, "RateRequest.Shipment.PaymentDetails.ShipmentCharge.0.BillShipper.AccountNumber", "W599Y7") // "" under minLength 6
	set(t, m, "RateRequest.Shipment.Service.Code", "003")                                                 // Rating's schema wants 3 characters
	set(t, m, "RateRequest.Shipment.Shipper.ShipperNumber", "W599Y7")                                     // "ShipperNumber" over maxLength 6
	return m
}

// specShopTimeInTransit is Rating.yaml's example 10, made schema-valid.
func specShopTimeInTransit(t *testing.T, sp *apiSpec) map[string]any {
	m := sp.example(t, "/rating/{version}/{requestoption}", http.MethodPost, "10")
	set(t, m, "RateRequest.Request.SubVersion", "2409")               // "" under minLength 4
	asArray(t, m, "RateRequest.Shipment.Package")                     // schema: array
	set(t, m, "RateRequest.Shipment.Shipper.ShipperNumber", "W599Y7") // placeholder under minLength 6
	return m
}

// specShip is Shipping.yaml's "Shipping Request (Standard Example)", made
// schema-valid.
func specShip(t *testing.T, sp *apiSpec) map[string]any {
	m := sp.example(t, "/shipments/{version}/ship", http.MethodPost, "1")
	set(t, m, "ShipmentRequest.LabelSpecification.LabelStockSize", map[string]any{"Height": "6", "Width": "4"})   // required, absent
	set(t, m, "ShipmentRequest.Request.TransactionReference.CustomerContext", "conformance")                      // "" under minLength 1
	asArray(t, m, "ShipmentRequest.Shipment.Package")                                                             // schema: array
	asArray(t, m, "ShipmentRequest.Shipment.PaymentInformation.ShipmentCharge")                                   // schema: array
	set(t, m, "ShipmentRequest.Shipment.Shipper.ShipperNumber", "W599Y7")                                         // " " under minLength 6
	set(t, m, "ShipmentRequest.Shipment.PaymentInformation.ShipmentCharge.0.BillShipper.AccountNumber", "W599Y7") // " " under minLength 6
	return m
}

func TestOAuthConformsToUPSSpecs(t *testing.T) {
	authCode := loadSpec(t, "OAuthAuthCode.yaml", "/security")
	clientCreds := loadSpec(t, "OAuthClientCredentials.yaml", "/")
	s, _ := newTestServer(t)

	authorize := func(q url.Values) *http.Request {
		return httptest.NewRequest(http.MethodGet, "http://wwwcie.ups.com"+ups.AuthorizePath+"?"+q.Encode(), nil)
	}
	var code string
	t.Run("authorize redirects back with a code", func(t *testing.T) {
		res := authCode.roundTrip(t, s, authorize(url.Values{
			"client_id": {confID}, "redirect_uri": {redirectURI}, "response_type": {"code"},
			"state": {"st-1"}, "scope": {"read"}, "code_challenge": {challengeFor(testVerifier)},
		}), true)
		if res.Status != http.StatusFound {
			t.Fatalf("status %d", res.Status)
		}
		loc, _ := url.Parse(res.Header.Get("Location"))
		code = loc.Query().Get("code")
	})
	t.Run("authorize with an unknown client", func(t *testing.T) {
		res := authCode.roundTrip(t, s, authorize(url.Values{"client_id": {"nobody"}, "redirect_uri": {redirectURI}, "response_type": {"code"}}), true)
		wantEnvelope(t, res, 401, ups.CodeInvalidClient, "")
	})

	var refresh string
	t.Run("pkce code exchange", func(t *testing.T) {
		res := authCode.roundTrip(t, s, formRequest("wwwcie.ups.com", ups.TokenPath, pkceForm(code, confID, testVerifier)), true)
		if res.Status != 200 {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
	})
	t.Run("basic code exchange", func(t *testing.T) {
		req := formRequest("wwwcie.ups.com", ups.TokenPath, codeForm(s.IssueCode(confID, redirectURI, "")))
		req.SetBasicAuth(confID, confSecret)
		res := authCode.roundTrip(t, s, req, true)
		if res.Status != 200 {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
		refresh = stringFields(t, res.Body)["refresh_token"]
	})
	t.Run("reused code", func(t *testing.T) {
		res := authCode.roundTrip(t, s, formRequest("wwwcie.ups.com", ups.TokenPath, pkceForm(code, confID, testVerifier)), true)
		wantEnvelope(t, res, 400, ups.CodeInvalidRequest, ups.MsgInvalidCode)
	})
	t.Run("refresh", func(t *testing.T) {
		res := authCode.roundTrip(t, s, refreshRequest("wwwcie.ups.com", refresh), true)
		if res.Status != 200 {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
	})
	t.Run("spent refresh token", func(t *testing.T) {
		res := authCode.roundTrip(t, s, refreshRequest("wwwcie.ups.com", refresh), true)
		wantEnvelope(t, res, 401, ups.CodeInvalidRequest, ups.MsgInvalidRefreshToken)
	})
	t.Run("client credentials with merchant id", func(t *testing.T) {
		req := formRequest("onlinetools.ups.com", ups.TokenPath, url.Values{"grant_type": {"client_credentials"}})
		req.SetBasicAuth(confID, confSecret)
		req.Header.Set("x-merchant-id", "W599Y7")
		if res := clientCreds.roundTrip(t, s, req, true); res.Status != 200 {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
	})
	t.Run("client credentials with a wrong secret", func(t *testing.T) {
		req := formRequest("onlinetools.ups.com", ups.TokenPath, url.Values{"grant_type": {"client_credentials"}})
		req.SetBasicAuth(confID, "wrong")
		wantEnvelope(t, clientCreds.roundTrip(t, s, req, true), 401, ups.CodeInvalidClient, "")
	})
}

func TestAPIsConformToUPSSpecs(t *testing.T) {
	rating := loadSpec(t, "Rating.yaml", "/api")
	shipping := loadSpec(t, "Shipping.yaml", "/api")
	tracking := loadSpec(t, "Tracking.yaml", "/api")
	xav := loadSpec(t, "AddressValidation.yaml", "/api")
	s, _ := newTestServer(t)
	tok := login(t, s)["access_token"]
	req := func(method, path string, body []byte) *http.Request {
		return apiRequest(method, "wwwcie.ups.com", path, tok, body)
	}

	t.Run("Rate", func(t *testing.T) {
		res := rating.roundTrip(t, s, req(http.MethodPost, "/api/rating/v2409/Rate", jsonBody(t, specRate(t, rating))), true)
		if res.Status != 200 {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
	})
	t.Run("Shop", func(t *testing.T) {
		m := specRate(t, rating)
		set(t, m, "RateRequest.Request.RequestOption", "Shop")
		res := rating.roundTrip(t, s, req(http.MethodPost, "/api/rating/v2409/Shop", jsonBody(t, m)), true)
		var out rateJSON
		_ = json.Unmarshal(res.Body, &out)
		if res.Status != 200 || len(out.RateResponse.RatedShipment) < 2 {
			t.Fatalf("status %d with %d rated shipments, want several", res.Status, len(out.RateResponse.RatedShipment))
		}
	})
	t.Run("Shop with additionalinfo timeintransit", func(t *testing.T) {
		res := rating.roundTrip(t, s, req(http.MethodPost, "/api/rating/v2409/Shop?additionalinfo=timeintransit", jsonBody(t, specShopTimeInTransit(t, rating))), true)
		if res.Status != 200 || !bytes.Contains(res.Body, []byte(`"TimeInTransit"`)) {
			t.Fatalf("status %d without TimeInTransit: %s", res.Status, clip(string(res.Body), 500))
		}
	})
	t.Run("Shoptimeintransit", func(t *testing.T) {
		// Rating.yaml caps requestoption at 10 characters, which rules
		// out its own Ratetimeintransit and Shoptimeintransit: only the
		// answer is checked here.
		res := rating.roundTrip(t, s, req(http.MethodPost, "/api/rating/v2409/Shoptimeintransit", jsonBody(t, specShopTimeInTransit(t, rating))), false)
		if res.Status != 200 {
			t.Fatalf("status %d", res.Status)
		}
	})
	t.Run("Rate without a token", func(t *testing.T) {
		r := req(http.MethodPost, "/api/rating/v2409/Rate", jsonBody(t, specRate(t, rating)))
		r.Header.Del("Authorization")
		wantEnvelope(t, rating.roundTrip(t, s, r, true), 401, ups.CodeInvalidAuth, ups.MsgInvalidAuth)
	})
	t.Run("Rate with a malformed body", func(t *testing.T) {
		res := rating.roundTrip(t, s, req(http.MethodPost, "/api/rating/v2409/Rate", []byte(`{"RateRequest":`)), false)
		wantEnvelope(t, res, 400, codeNotWellFormed, "")
	})

	var shipmentID string
	t.Run("Ship", func(t *testing.T) {
		res := shipping.roundTrip(t, s, req(http.MethodPost, "/api/shipments/v2409/ship", jsonBody(t, specShip(t, shipping))), true)
		var out shipJSON
		_ = json.Unmarshal(res.Body, &out)
		shipmentID = out.ShipmentResponse.ShipmentResults.ShipmentIdentificationNumber
		if res.Status != 200 || shipmentID == "" {
			t.Fatalf("status %d, shipment %q", res.Status, shipmentID)
		}
	})
	t.Run("Track a shipped package", func(t *testing.T) {
		res := tracking.roundTrip(t, s, req(http.MethodGet, "/api/track/v1/details/"+shipmentID+"?locale=en_US&returnSignature=false", nil), true)
		if res.Status != 200 || !bytes.Contains(res.Body, []byte(shipmentID)) {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
	})
	t.Run("Track a UPS sample number", func(t *testing.T) {
		if res := tracking.roundTrip(t, s, req(http.MethodGet, "/api/track/v1/details/1Z12345E0205271688", nil), true); res.Status != 200 {
			t.Fatalf("status %d", res.Status)
		}
	})
	t.Run("Track an unknown number", func(t *testing.T) {
		if res := tracking.roundTrip(t, s, req(http.MethodGet, "/api/track/v1/details/1Z999AA10123456784", nil), true); res.Status != 200 {
			t.Fatalf("status %d", res.Status)
		}
	})
	t.Run("Track an invalid number", func(t *testing.T) {
		wantEnvelope(t, tracking.roundTrip(t, s, req(http.MethodGet, "/api/track/v1/details/1Z1", nil), true), 400, "TV1002", "")
	})
	t.Run("Void", func(t *testing.T) {
		res := shipping.roundTrip(t, s, req(http.MethodDelete, "/api/shipments/v2409/void/cancel/"+shipmentID, nil), true)
		if res.Status != 200 {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
	})
	t.Run("Void again", func(t *testing.T) {
		wantEnvelope(t, shipping.roundTrip(t, s, req(http.MethodDelete, "/api/shipments/v2409/void/cancel/"+shipmentID, nil), true), 400, "190102", "")
	})
	for _, option := range []string{"1", "2", "3"} {
		t.Run("Address Validation option "+option, func(t *testing.T) {
			body := jsonBody(t, xav.example(t, "/addressvalidation/{version}/{requestoption}", http.MethodPost, "json"))
			res := xav.roundTrip(t, s, req(http.MethodPost, "/api/addressvalidation/v2/"+option, body), true)
			if res.Status != 200 {
				t.Fatalf("status %d: %s", res.Status, res.Body)
			}
		})
	}
}

// Real clients send what UPS's examples show, not what its schemas say;
// UPS accepts those requests, so the simulator must too. The few examples
// that lack what the simulator needs to price a shipment (a package, a
// service it knows, the ShipmentRequest wrapper) get a 400 envelope, never
// a crash.
func TestSpecExamplesAsSentByClients(t *testing.T) {
	rating := loadSpec(t, "Rating.yaml", "/api")
	shipping := loadSpec(t, "Shipping.yaml", "/api")
	xav := loadSpec(t, "AddressValidation.yaml", "/api")
	tests := []struct {
		sp       *apiSpec
		specPath string
		url      string
		refused  map[string]string // example name -> why the simulator answers 400
	}{
		{rating, "/rating/{version}/{requestoption}", "/api/rating/v2409/Rate", map[string]string{
			"6": "no Package (a time-in-transit-only request)",
		}},
		{shipping, "/shipments/{version}/ship", "/api/shipments/v2409/ship", map[string]string{
			"14": "Trade Direct master shipment without Package",
			"16": "Trade Direct service T1, which the simulator does not price",
			"17": "WorldEase example has no ShipmentRequest wrapper",
		}},
		{xav, "/addressvalidation/{version}/{requestoption}", "/api/addressvalidation/v2/3", nil},
	}
	for _, tt := range tests {
		op := tt.sp.doc.Paths.Value(tt.specPath).Post
		examples := op.RequestBody.Value.Content.Get("application/json").Examples
		names := make([]string, 0, len(examples))
		for name := range examples {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			t.Run(fmt.Sprintf("%s example %s %s", tt.sp.name, name, examples[name].Value.Summary), func(t *testing.T) {
				s, _ := newTestServer(t)
				tok := login(t, s)["access_token"]
				body := jsonBody(t, tt.sp.example(t, tt.specPath, http.MethodPost, name))
				res := serve(s, apiRequest(http.MethodPost, "wwwcie.ups.com", tt.url, tok, body))
				if why, refused := tt.refused[name]; refused {
					t.Logf("expected refusal: %s", why)
					wantEnvelope(t, res, 400, codeNotValid, "")
					return
				}
				if res.Status != 200 {
					t.Errorf("status %d, want 200: %s", res.Status, res.Body)
				}
			})
		}
	}
}
