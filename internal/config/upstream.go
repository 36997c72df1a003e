package config

import (
	"net"
	"net/url"
	"strconv"

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
	// WarmConnections is how many spare TLS connections upsproxy keeps
	// dialled to each HTTPS UPS host its carriers use, so that a request
	// never waits for TCP and TLS handshakes; 0 turns that off.
	WarmConnections int
	// HTTP2 offers HTTP/2 to UPS over ALPN (HTTP/1.1 when UPS declines).
	HTTP2 bool
	// Egress is the forward proxy every connection to UPS goes through
	// (API requests and OAuth calls); nil means UPS is dialled directly.
	Egress *Egress
}

// Egress is a corporate forward proxy on the way to UPS: upsproxy opens a
// CONNECT tunnel through it and speaks TLS to UPS inside, end to end.
type Egress struct {
	// URL is http://host:port or https://host:port, without user info.
	URL *url.URL
	// Username and Password, when Username is set, go to the egress proxy
	// as Proxy-Authorization Basic. Password prints redacted.
	Username string
	Password Secret
}

// String shows the egress proxy without its password.
func (e *Egress) String() string {
	if e == nil {
		return "<direct>"
	}
	if e.Username == "" {
		return e.URL.String()
	}
	return e.URL.Scheme + "://" + e.Username + ":" + e.Password.String() + "@" + e.URL.Host
}

// DefaultWarmConnections is ups.warm_connections when not set: enough for
// a client's first two concurrent calls after a quiet period.
const DefaultWarmConnections = 2

// maxWarmConnections bounds ups.warm_connections: each spare is a TLS
// connection UPS keeps open for nothing until a request takes it.
const maxWarmConnections = 64

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
	EgressProxy   *string  `hcl:"egress_proxy,optional"`
	WarmConns     *int     `hcl:"warm_connections,optional"`
	HTTP2         *bool    `hcl:"http2,optional"`
	Body          hcl.Body `hcl:",body"`
}

func (r *rawUPS) build(bd *builder) (UPS, hcl.Diagnostics) {
	out := UPS{TestURL: mustDefaultURL(ups.DefaultTestURL), ProductionURL: mustDefaultURL(ups.DefaultProductionURL),
		WarmConnections: DefaultWarmConnections}
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
	if b.given("egress_proxy", r.EgressProxy != nil) && *r.EgressProxy != "" {
		var d *hcl.Diagnostic
		out.Egress, d = egressProxy(b, *r.EgressProxy)
		if d != nil {
			diags = append(diags, d)
		}
	}
	if b.given("warm_connections", r.WarmConns != nil) {
		if n := *r.WarmConns; n < 0 || n > maxWarmConnections {
			diags = append(diags, b.errorf("warm_connections", "Invalid warm_connections",
				"warm_connections must be between 0 (off) and %d, not %d.", maxWarmConnections, n))
		} else {
			out.WarmConnections = n
		}
	}
	if b.given("http2", r.HTTP2 != nil) {
		out.HTTP2 = *r.HTTP2
	}
	return out, diags
}

// egressProxy checks the egress_proxy URL. Its diagnostics never repeat the
// value (it may hold a password); the printed snippet masks it
// (secretAttributes).
func egressProxy(b block, s string) (*Egress, *hcl.Diagnostic) {
	const name = "egress_proxy"
	u, err := url.Parse(s)
	hasPassword := false
	if err == nil && u.User != nil {
		_, hasPassword = u.User.Password()
	}
	literalPassword := hasPassword && b.attr(name) != nil && isLiteral(b.attr(name).Expr)
	why := ""
	switch {
	case err != nil:
		why = "it is not a URL (a password with special characters must be percent-encoded: @ as %40, : as %3A)"
	case u.Scheme != "http" && u.Scheme != "https":
		why = "it must start with http:// (or https:// for a proxy that is itself reached over TLS); SOCKS proxies are not supported"
	case u.Hostname() == "":
		why = "it has no host name"
	case u.Port() == "":
		why = "it has no port; give it, like http://proxy.example:3128"
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "":
		why = "give only scheme, optional user:password@, host and port"
	case u.User != nil && u.User.Username() == "":
		why = "it has a password but no user name"
	}
	if why == "" {
		if p, perr := strconv.Atoi(u.Port()); perr != nil || p < 1 || p > 65535 {
			why = "its port must be a number from 1 to 65535"
		}
	}
	if why != "" {
		return nil, b.errorf(name, "Invalid egress_proxy",
			"egress_proxy must be the URL of an HTTP proxy, like \"http://user:password@proxy.example:3128\": %s.", why)
	}
	out := &Egress{URL: &url.URL{Scheme: u.Scheme, Host: net.JoinHostPort(u.Hostname(), u.Port())}}
	if u.User != nil {
		out.Username = u.User.Username()
		out.Password.Value, _ = u.User.Password()
	}
	if literalPassword {
		return out, &hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  "egress_proxy has a password written in the config file; use env() or file()",
			Detail:   "Anyone who can read this file or its backups can use the proxy account. Write egress_proxy = env(\"UPSPROXY_EGRESS_PROXY\") or file(...) instead.",
			Subject:  b.valueRange(name),
			Context:  b.attrRange(name),
		}
	}
	return out, nil
}

// mustDefaultURL parses one of the compiled-in UPS URLs, which always parse.
func mustDefaultURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		return &url.URL{}
	}
	return u
}
