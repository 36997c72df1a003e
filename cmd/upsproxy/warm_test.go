package main

import (
	"net/url"
	"reflect"
	"testing"

	"github.com/upsproxy/upsproxy/internal/config"
	"github.com/upsproxy/upsproxy/internal/ups"
)

func TestWarmHostsAreTheHTTPSHostsOfActiveCarriersOnce(t *testing.T) {
	mustURL := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	cfg := &config.Config{
		UPS: config.UPS{TestURL: mustURL("https://wwwcie.ups.com"), ProductionURL: mustURL("https://onlinetools.ups.com:8443")},
		Carriers: []config.Carrier{
			{Name: "a", Environment: ups.Test},
			{Name: "b", Environment: ups.Test},
			{Name: "c", Environment: ups.Production, Inactive: true},
		},
	}
	if got, want := warmHosts(cfg), []string{"wwwcie.ups.com:443"}; !reflect.DeepEqual(got, want) {
		t.Errorf("warmHosts = %v, want %v (one per host, inactive carriers' hosts left cold)", got, want)
	}
	cfg.Carriers[2].Inactive = false
	if got, want := warmHosts(cfg), []string{"wwwcie.ups.com:443", "onlinetools.ups.com:8443"}; !reflect.DeepEqual(got, want) {
		t.Errorf("warmHosts = %v, want %v", got, want)
	}
	cfg.UPS.TestURL = mustURL("http://127.0.0.1:8080") // a plain-HTTP simulator has no TLS to warm
	if got, want := warmHosts(cfg), []string{"onlinetools.ups.com:8443"}; !reflect.DeepEqual(got, want) {
		t.Errorf("warmHosts = %v, want %v", got, want)
	}
}
