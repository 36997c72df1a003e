package config

import (
	"net/url"

	"github.com/hashicorp/hcl/v2"
	"github.com/upsproxy/upsproxy/internal/ups"
)

// UPS holds the upstream base URLs, one per environment. Tests point them at
// the simulator; in production they stay at UPS's hosts.
type UPS struct {
	// TestURL and ProductionURL are scheme://host[:port] with no path.
	TestURL, ProductionURL *url.URL
	// CAFile is an extra PEM bundle trusted for upstream TLS (the
	// simulator's certificate in tests); empty means the system roots only.
	CAFile string
}

// URL returns the base URL for env, or nil for an invalid environment.
func (u UPS) URL(env ups.Environment) *url.URL {
	switch env {
	case ups.Test:
		return u.TestURL
	case ups.Production:
		return u.ProductionURL
	}
	return nil
}

type rawUPS struct {
	TestURL       *string  `hcl:"test_url,optional"`
	ProductionURL *string  `hcl:"production_url,optional"`
	CAFile        string   `hcl:"ca_file,optional"`
	Body          hcl.Body `hcl:",body"`
}

func (r *rawUPS) build(bd *builder) (UPS, hcl.Diagnostics) {
	out := UPS{TestURL: mustDefaultURL(ups.DefaultTestURL), ProductionURL: mustDefaultURL(ups.DefaultProductionURL)}
	if r == nil {
		return out, nil
	}
	var diags hcl.Diagnostics
	b := bd.block(r.Body, hcl.Range{})
	base := func(name string, p *string, def *url.URL) *url.URL {
		if !b.given(name, p != nil) {
			return def
		}
		u, why := httpURL(*p)
		if why == "" && u.Path != "" && u.Path != "/" {
			why = "it has the path " + u.Path + "; give only scheme, host and port, the proxy adds the API paths"
		}
		if why == "" && (u.RawQuery != "" || u.Fragment != "" || u.ForceQuery) {
			why = "it must not have a query or fragment"
		}
		if why != "" {
			diags = append(diags, b.errorf(name, "Invalid UPS base URL",
				"%s must be an absolute http(s) URL with no path, like %q: %s.", name, def.String(), why))
			return def
		}
		u.Path, u.RawPath = "", ""
		return u
	}
	out.TestURL = base("test_url", r.TestURL, out.TestURL)
	out.ProductionURL = base("production_url", r.ProductionURL, out.ProductionURL)
	out.CAFile = bd.path(r.CAFile)
	return out, diags
}

// mustDefaultURL parses one of the compiled-in UPS URLs, which always parse.
func mustDefaultURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		return &url.URL{}
	}
	return u
}
