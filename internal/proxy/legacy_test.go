package proxy

import (
	"regexp"
	"strings"
	"testing"
)

func TestEachConfirmedLegacyURLShapeIsTranslatedToTodaysAPIPath(t *testing.T) {
	cases := []struct {
		name, path, want string
		rateFromBody     bool
	}{
		{"ship-rating: /ship/v1/rating/Rate", "/ship/v1/rating/Rate", "/api/rating/v1/Rate", false},
		{"ship-rating: Shop with a 2018 version", "/ship/v1807/rating/Shop", "/api/rating/v1807/Shop", false},
		{"ship-rating: Ratetimeintransit, any case", "/ship/v1/rating/RateTimeInTransit", "/api/rating/v1/RateTimeInTransit", false},
		{"ship-rating: Shoptimeintransit, version without v", "/ship/1707/rating/Shoptimeintransit", "/api/rating/1707/Shoptimeintransit", false},
		{"ship-shipments: create a shipment", "/ship/v1801/shipments", "/api/shipments/v1801/ship", false},
		{"ship-shipments: capital V as some clients send it", "/ship/V1801/shipments", "/api/shipments/V1801/ship", false},
		{"ship-cancel: void a shipment", "/ship/v1/shipments/cancel/1ZISDE016691676846", "/api/shipments/v1/void/cancel/1ZISDE016691676846", false},
		{"ship-labels: label recovery", "/ship/V1903/shipments/labels", "/api/labels/V1903/recovery", false},
		{"track-details: tracking", "/track/v1/details/1Z999AA10123456784", "/api/track/v1/details/1Z999AA10123456784", false},
		{"rest-ship: pre-2019 Ship", "/rest/Ship", "/api/shipments/v1/ship", false},
		{"rest-rate: pre-2019 Rate, operation from the body", "/rest/Rate", "/api/rating/v1/Rate", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := translateBuiltin(c.path)
			if got.path != c.want || got.rateFromBody != c.rateFromBody || got.rule == "" {
				t.Errorf("translate(%q) = %+v, want %q (rateFromBody %v)", c.path, got, c.want, c.rateFromBody)
			}
		})
	}
}

func TestUnconfirmedOrReshapingLegacyShapesAndTodaysPathsAreLeftAlone(t *testing.T) {
	for _, p := range []string{
		"/api/rating/v2409/Rate", "/api/track/v1/details/1Z", "/rest/Track", "/rest/Void", "/rest/XAV",
		"/rest/TimeInTransit", "/rest/Locator", "/rest/LBRecovery", "/rest/Pickup", "/addressvalidation/v1/1",
		"/ups.app/xml/Rate", "/webservices/Ship", "/ship/v1/rating/Quote", "/ship/v1/shipments/cancel/../../security",
		"/track/v1/details/1Z/../../x", "/track/v1/details/", "/ship//rating/Rate", "/ship/v12345/rating/Rate", "/",
	} {
		if got := translateBuiltin(p); got.path != p || got.rule != "" {
			t.Errorf("translate(%q) = %+v, want it unchanged", p, got)
		}
	}
}

func TestOpsRewritesAreTriedBeforeTheBuiltInTable(t *testing.T) {
	rt := &routing{rewrites: []Rewrite{
		{Name: "mine", Match: regexp.MustCompile(`^/ship/v1/rating/(Rate)$`), Replace: "/api/rating/v2409/$1"},
		{Name: "erp", Match: regexp.MustCompile(`^/erp/track/(?P<n>[A-Z0-9]+)$`), Replace: "/api/track/v1/details/${n}"},
	}}
	cases := map[string]translation{
		"/ship/v1/rating/Rate": {path: "/api/rating/v2409/Rate", rule: "mine"},
		"/ship/v1/rating/Shop": {path: "/api/rating/v1/Shop", rule: "ship-rating"},
		"/erp/track/1Z999":     {path: "/api/track/v1/details/1Z999", rule: "erp"},
	}
	for in, want := range cases {
		if got := rt.translate(in); got != want {
			t.Errorf("translate(%q) = %+v, want %+v", in, got, want)
		}
	}
}

// FuzzTranslateLegacyPath: whatever path a client sends, a built-in
// translation only ever produces a clean /api/ path built from
// alphanumeric segments, and anything else is left exactly as it was.
func FuzzTranslateLegacyPath(f *testing.F) {
	for _, s := range []string{
		"/ship/v1/rating/Rate", "/ship/V1801/shipments", "/ship/v1/shipments/cancel/1Z", "/ship/v1903/shipments/labels",
		"/track/v1/details/1Z999", "/rest/Rate", "/rest/ship", "/api/rating/v2409/Rate", "/ship/v1/rating/Rate/..",
		"/track/v1/details/%2e%2e", "/rest/Rate?x=1", "/ship/v1/rating/Rate\n", "//track/v1/details/1", "",
	} {
		f.Add(s)
	}
	segment := regexp.MustCompile(`^[A-Za-z0-9]+$`)
	f.Fuzz(func(t *testing.T, path string) {
		got := translateBuiltin(path)
		if got.rule == "" {
			if got.path != path {
				t.Fatalf("%q changed to %q without a rule", path, got.path)
			}
			return
		}
		rest, ok := strings.CutPrefix(got.path, "/api/")
		if !ok {
			t.Fatalf("%q translated outside /api/: %q", path, got.path)
		}
		for _, seg := range strings.Split(rest, "/") {
			if !segment.MatchString(seg) {
				t.Fatalf("%q translated to %q with segment %q", path, got.path, seg)
			}
		}
	})
}

func TestOnlyIdempotentOperationsAreReplayable(t *testing.T) {
	cases := []struct {
		method, path string
		want         bool
	}{
		{"POST", "/api/rating/v2409/Rate", true},
		{"POST", "/api/rating/v2409/Shop", true},
		{"POST", "/api/rating/v2409/Shoptimeintransit", true},
		{"GET", "/api/track/v1/details/1Z999AA10123456784", true},
		{"GET", "/api/track/v1/reference/details/REF1", true},
		{"POST", "/api/addressvalidation/v2/1", true},
		{"POST", "/api/shipments/v1/transittimes", true},
		{"POST", "/api/locations/v3/search/availabilities/1", true},
		{"POST", "/api/shipments/v2409/ship", false},
		{"DELETE", "/api/shipments/v2409/void/cancel/1Z", false},
		{"POST", "/api/shipments/v2409/pickup/01", false},
		{"POST", "/api/pickupcreation/v2409/pickup", false},
		{"POST", "/api/labels/v1/recovery", false},
		{"POST", "/api/paperlessdocuments/v2/upload", false},
		{"DELETE", "/api/track/v1/details/1Z", false},
		{"POST", "/api/rating", false},
		{"POST", "/rest/Rate", false},
		{"POST", "/api/unknown/v1/x", false},
	}
	for _, c := range cases {
		if got := replayable(c.method, c.path); got != c.want {
			t.Errorf("replayable(%s %s) = %v, want %v", c.method, c.path, got, c.want)
		}
	}
}
