package config

import (
	"net/url"
	"strings"
	"unicode"

	"github.com/hashicorp/hcl/v2"
)

// Console is the web console of `upsproxy serve`: the token state of every
// carrier and the login, refresh and delete actions, for the people who own
// the UPS login. nil when the config has no console block or it has no
// listen address (the console is off).
type Console struct {
	// Listen is the console's own listen address (host:port).
	Listen string
	// PublicURL is the address browsers use and UPS redirects to (its path,
	// if any, is the console's base path behind a reverse proxy). The OAuth
	// callback is PublicURL + "/callback".
	PublicURL *url.URL
	// TLSCert and TLSKey, both set or both empty, make the console serve
	// https itself (relative paths resolved against the config file).
	TLSCert, TLSKey string
	// Users may sign in to the console.
	Users []ConsoleUser
}

// ConsoleUser is one person who may sign in to the console.
type ConsoleUser struct {
	Name string
	// PasswordHash is a bcrypt hash, checked like a client block's.
	PasswordHash string
}

// Secure reports whether browsers reach the console over https, which
// decides the Secure flag of its cookies.
func (c *Console) Secure() bool { return c.PublicURL.Scheme == "https" }

// CallbackURL is the redirect URI to register at UPS for the console.
func (c *Console) CallbackURL() string {
	return strings.TrimSuffix(c.PublicURL.String(), "/") + "/callback"
}

type rawConsole struct {
	Listen    *string           `hcl:"listen,optional"`
	PublicURL *string           `hcl:"public_url,optional"`
	TLSCert   *string           `hcl:"tls_cert,optional"`
	TLSKey    *string           `hcl:"tls_key,optional"`
	Users     []*rawConsoleUser `hcl:"user,block"`
	Body      hcl.Body          `hcl:",body"`
	DeclRange hcl.Range         `hcl:",def_range"`
}

type rawConsoleUser struct {
	Name         string    `hcl:"name,label"`
	PasswordHash *string   `hcl:"password_hash,optional"`
	Body         hcl.Body  `hcl:",body"`
	DeclRange    hcl.Range `hcl:",def_range"`
}

func (r *rawConsole) build(bd *builder, cfg *Config) (*Console, hcl.Diagnostics) {
	if r == nil {
		return nil, nil
	}
	var diags hcl.Diagnostics
	b := bd.block(r.Body, r.DeclRange)
	out := &Console{}
	listenSet := b.given("listen", r.Listen != nil)
	if listenSet {
		switch why := hostPort(*r.Listen); {
		case why != "":
			diags = append(diags, b.errorf("listen", "Invalid listen address",
				"console listen must be host:port, like \"127.0.0.1:8443\": %s.", why))
		case (*r.Listen == cfg.Listen || *r.Listen == cfg.AdminListen) && !strings.HasSuffix(*r.Listen, ":0"):
			diags = append(diags, b.errorf("listen", "Invalid listen address",
				"console listen is %q, which the proxy or admin listener already uses; the console needs its own address.", *r.Listen))
		default:
			out.Listen = *r.Listen
		}
	}

	switch {
	case b.absent("public_url", r.PublicURL != nil):
		diags = append(diags, b.missing("public_url", "the address browsers use to reach the console, like \"https://upsproxy.example.com:8443\""))
	case b.given("public_url", r.PublicURL != nil):
		u, why := httpURL(*r.PublicURL)
		switch {
		case why != "":
		case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(*r.PublicURL, "?") || strings.HasSuffix(*r.PublicURL, "#"):
			why = "it must not have a query or fragment"
		case u.Path != "" && !validBasePath(u.Path):
			why = "its path must be plain segments of letters, digits, '-', '_' and '.'"
		}
		if why != "" {
			diags = append(diags, b.errorf("public_url", "Invalid public_url",
				"public_url must be the console's address, like \"https://upsproxy.example.com:8443\": %s.", why))
		} else {
			u.Path = strings.TrimSuffix(u.Path, "/")
			out.PublicURL = u
			if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagWarning,
					Summary:  "console is reached over plain http",
					Detail: "public_url is http:// on a host other than this machine, so console passwords and session cookies cross the network unencrypted. " +
						"Serve it over https (tls_cert/tls_key, or a TLS-terminating reverse proxy with an https public_url).",
					Subject: b.valueRange("public_url"),
					Context: b.attrRange("public_url"),
				})
			}
		}
	}

	certSet, keySet := b.given("tls_cert", r.TLSCert != nil), b.given("tls_key", r.TLSKey != nil)
	switch {
	case certSet && !keySet && !b.failed("tls_key"):
		diags = append(diags, b.errorf("tls_cert", "Incomplete console TLS", "tls_cert is set but tls_key is not: https needs both."))
	case keySet && !certSet && !b.failed("tls_cert"):
		diags = append(diags, b.errorf("tls_key", "Incomplete console TLS", "tls_key is set but tls_cert is not: https needs both."))
	case certSet && keySet:
		if *r.TLSCert == "" || *r.TLSKey == "" {
			diags = append(diags, b.blockErrorf("Invalid console TLS", "tls_cert and tls_key must not be empty."))
		} else {
			out.TLSCert, out.TLSKey = bd.path(*r.TLSCert), bd.path(*r.TLSKey)
		}
	}

	seen := map[string]*rawConsoleUser{}
	for _, ru := range r.Users {
		u, d := ru.build(bd)
		diags = append(diags, d...)
		if prev, dup := seen[ru.Name]; dup {
			diags = append(diags, duplicate("console user", ru.Name, ru.DeclRange, prev.DeclRange)...)
			continue
		}
		seen[ru.Name] = ru
		out.Users = append(out.Users, u)
	}
	if len(r.Users) == 0 {
		diags = append(diags, b.blockErrorf("Console without users",
			"A console block needs at least one user block, like user \"alice\" { password_hash = \"$2y$10$...\" } (make the hash with: htpasswd -nbBC 10 alice PASSWORD)."))
	}

	if !listenSet {
		if !b.failed("listen") {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagWarning,
				Summary:  "console is off",
				Detail:   "The console block has no listen address, so upsproxy serve does not start the console. Set listen, like \"127.0.0.1:8443\", to turn it on.",
				Subject:  r.DeclRange.Ptr(),
			})
		}
		return nil, diags
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return out, diags
}

func (r *rawConsoleUser) build(bd *builder) (ConsoleUser, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	b := bd.block(r.Body, r.DeclRange)
	out := ConsoleUser{Name: r.Name}
	if r.Name == "" || len(r.Name) > 128 || strings.ContainsFunc(r.Name, unicode.IsControl) {
		diags = append(diags, b.blockErrorf("Invalid console user name",
			"A console user name is what people type to sign in: 1 to 128 characters, no control characters or line breaks."))
	}
	var d *hcl.Diagnostic
	if out.PasswordHash, d = b.passwordHash(r.PasswordHash, "the user's console password"); d != nil {
		diags = append(diags, d)
	}
	return out, diags
}

// validBasePath accepts "/", "/a" or "/a/b/" made of safe segments: the
// console mounts its pages under it.
func validBasePath(p string) bool {
	p = strings.Trim(p, "/")
	if p == "" {
		return true
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for _, c := range seg {
			if !(c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				return false
			}
		}
	}
	return true
}

func isLoopbackHost(h string) bool {
	return h == "localhost" || isLoopbackListen(h+":0") || isLoopbackListen("["+h+"]:0")
}
