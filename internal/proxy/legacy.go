package proxy

import (
	"regexp"
	"strings"
)

// Legacy URL shapes. Before OAuth, UPS JSON clients called paths without
// the /api prefix; today every UPS REST path starts with /api/. Each entry
// below translates one shape that was confirmed from two sides: public code
// that sent it with access-key credentials, and the operation in UPS's own
// OpenAPI specs (third_party/ups-openapi, UPS-API/api-documentation) that
// takes the same body, whose deprecatedVersion list still routes the
// version numbers those clients used. The version segment is kept as the
// client sent it.
//
// Shapes seen in the wild but NOT translated, because the request itself
// would have to be reshaped (body fields moved into the path, another
// method) or because no source confirmed the equivalence: /rest/Track,
// /rest/Void, /rest/XAV, /rest/TimeInTransit, /rest/Locator,
// /rest/LBRecovery, /rest/Pickup, /addressvalidation/v1/..., the XML
// /ups.app/xml/... and SOAP /webservices/... endpoints. They are forwarded
// unchanged (UPS answers 404), and ops can add a rewrite block for any of
// them.
//
// Ops' rewrite blocks are tried first, then this table: a site that knows
// better can always override a built-in translation.

// legacyRoute is one built-in translation.
type legacyRoute struct {
	name    string
	match   *regexp.Regexp
	replace string // regexp.Expand template; "" for rateFromBody
	// rateFromBody: the rating operation (Rate, Shop, ...) is not in the
	// path but in the body's RateRequest.Request.RequestOption, which the
	// body scanner reads.
	rateFromBody bool
}

// Path segments the translations capture: versions ("v1801", "1701"), UPS
// operations, and identifiers (shipment and tracking numbers), which are
// alphanumeric. Nothing else is captured, so no translation can produce
// "..", "//" or an encoded character.
const (
	versionSeg = `([vV]?[0-9]{1,4})`
	idSeg      = `([A-Za-z0-9]{1,64})`
)

var legacyRoutes = []legacyRoute{
	{
		// Legacy: POST https://onlinetools.ups.com/ship/v1/rating/Rate with
		// AccessLicenseNumber/Username/Password headers (e.g. a C# RestSharp
		// sample posting to wwwcie.ups.com/ship/v1/rating/Ratetimeintransit
		// with those three headers; Java com.freightcom.clickship...ups.
		// UPSEndpoints RATE "/ship/v1/rating/Shop?additionalinfo=
		// timeintransit"). Today: Rating.yaml "/rating/{deprecatedVersion}/
		// {requestoption}", deprecatedVersion v1, v1601, v1607, 1701, 1707,
		// requestoption Rate | Shop | Ratetimeintransit | Shoptimeintransit,
		// the same RateRequest body.
		name:    "ship-rating",
		match:   regexp.MustCompile(`^/ship/` + versionSeg + `/rating/((?i:rate|shop|ratetimeintransit|shoptimeintransit))$`),
		replace: "/api/rating/$1/$2",
	},
	{
		// Legacy: POST /ship/v1801/shipments with a ShipmentRequest body and
		// access-key headers (e.g. ripe-tech/ups-api-js js/shipment.js
		// createShipment; Vendidero\Germanized\UPS\Api\Api (WooCommerce
		// Germanized UPS) posting "shipments" under onlinetools.ups.com/ship/
		// v1/; Spring clients of wwwcie.ups.com/ship/v1801/shipments with
		// AccessLicenseNumber headers). Today: Shipping.yaml "/shipments/
		// {deprecatedVersion}/ship", v1 ... v1801, v1807, the same
		// ShipmentRequest body and additionaladdressvalidation query.
		name:    "ship-shipments",
		match:   regexp.MustCompile(`^/ship/` + versionSeg + `/shipments$`),
		replace: "/api/shipments/$1/ship",
	},
	{
		// Legacy: DELETE /ship/v1/shipments/cancel/{id} answered with a
		// VoidShipmentResponse (ripe-tech/ups-api-js cancelShipment;
		// Germanized's Api::cancel_label). Today: Shipping.yaml
		// "/shipments/{deprecatedVersion}/void/cancel/
		// {shipmentidentificationnumber}", deprecatedVersion v1.
		name:    "ship-cancel",
		match:   regexp.MustCompile(`^/ship/` + versionSeg + `/shipments/cancel/` + idSeg + `$`),
		replace: "/api/shipments/$1/void/cancel/$2",
	},
	{
		// Legacy: POST /ship/{version}/shipments/labels with a
		// LabelRecoveryRequest body (ripe-tech/ups-api-js getWaybill; a
		// Python client of onlinetools.ups.com/ship/V1903/shipments/labels).
		// Today: Shipping.yaml "/labels/{version}/recovery", versions v1,
		// v1701, V1903, the same LabelRecoveryRequest body.
		name:    "ship-labels",
		match:   regexp.MustCompile(`^/ship/` + versionSeg + `/shipments/labels$`),
		replace: "/api/labels/$1/recovery",
	},
	{
		// Legacy: GET /track/v1/details/{inquiryNumber} with access-key
		// headers (ripe-tech/ups-api-js js/tracking.js; freightcom's
		// UPSEndpoints TRACKING "/track/v1/details/"; a Node client config
		// with AccessLicenseNumber and tracking url "/track/v1/details/0").
		// Today: Tracking.yaml
		// "/track/v1/details/{inquiryNumber}", same query parameters.
		name:    "track-details",
		match:   regexp.MustCompile(`^/track/v1/details/` + idSeg + `$`),
		replace: "/api/track/v1/details/$1",
	},
	{
		// Legacy: POST /rest/Ship with {"UPSSecurity":{...},
		// "ShipmentRequest":{...}} (e.g. bamboo\business\carrier\CUPSHandler,
		// an Italian shop's PHP, on onlinetools.ups.com/rest/Ship, reading a
		// ShipmentResponse).
		// Once UPSSecurity is stripped the body is today's ShipmentRequest:
		// Shipping.yaml "/shipments/{deprecatedVersion}/ship", v1.
		name:    "rest-ship",
		match:   regexp.MustCompile(`^/rest/(?i:ship)$`),
		replace: "/api/shipments/v1/ship",
	},
	{
		// Legacy: POST /rest/Rate with {"UPSSecurity":{...},
		// "RateRequest":{"Request":{"RequestOption":"Shop",...},...}} (e.g.
		// PHP clients setting $json->UPSSecurity before posting to
		// wwwcie.ups.com/rest/Rate; the RateRequest of UPS's "Rating Package
		// RESTful Developer Guide" (July 2020) quoted in vallka/django-presta
		// mysite/urls-rate.py). The operation is the body's RequestOption; Rating.yaml
		// "/rating/{deprecatedVersion}/{requestoption}" says Rate is the
		// default when none is given.
		name:         "rest-rate",
		match:        regexp.MustCompile(`^/rest/(?i:rate)$`),
		rateFromBody: true,
	},
}

// legacyRestPrefix marks the pre-2019 JSON endpoints, whose bodies carry
// the UPSSecurity credentials element.
const legacyRestPrefix = "/rest/"

// translation is the outcome of translating a request path.
type translation struct {
	path         string // the path to send upstream
	rule         string // name of the rewrite or built-in rule; "" when none applied
	rateFromBody bool   // the operation segment still comes from the body
}

// translate applies ops' rewrites, then the built-in table. Paths already
// under /api/ skip the built-in table without any matching, which keeps
// the common case free.
func (rt *routing) translate(path string) translation {
	for i := range rt.rewrites {
		if out, ok := rt.rewrites[i].apply(path); ok {
			return translation{path: out, rule: rt.rewrites[i].Name}
		}
	}
	return translateBuiltin(path)
}

func translateBuiltin(path string) translation {
	if strings.HasPrefix(path, "/api/") {
		return translation{path: path}
	}
	for i := range legacyRoutes {
		lr := &legacyRoutes[i]
		m := lr.match.FindStringSubmatchIndex(path)
		if m == nil {
			continue
		}
		if lr.rateFromBody {
			return translation{path: "/api/rating/v1/Rate", rule: lr.name, rateFromBody: true}
		}
		return translation{path: string(lr.match.ExpandString(nil, lr.replace, path, m)), rule: lr.name}
	}
	return translation{path: path}
}

// rateOperation maps a RequestOption from a legacy /rest/Rate body to the
// path segment of today's Rating API. Unknown or missing values give
// "Rate", UPS's documented default.
func rateOperation(option string) string {
	switch {
	case strings.EqualFold(option, "Shop"):
		return "Shop"
	case strings.EqualFold(option, "Ratetimeintransit"):
		return "Ratetimeintransit"
	case strings.EqualFold(option, "Shoptimeintransit"):
		return "Shoptimeintransit"
	}
	return "Rate"
}
