package config

import (
	"strings"

	"github.com/hashicorp/hcl/v2"
	"golang.org/x/crypto/bcrypt"
)

// Client is a proxy user. When any client exists, every request must carry
// Proxy-Authorization with a client's name and password.
type Client struct {
	// Name is the proxy-auth user name.
	Name string
	// PasswordHash is a bcrypt hash ($2a$, $2b$ or $2y$) of the password.
	PasswordHash string
	// Carrier, when set, is the carrier this client's requests use;
	// otherwise the carrier is resolved from the request.
	Carrier string
	// RedirectURIs are where the proxy's OAuth authorize answer may send
	// this client's browser, besides loopback URIs and the carriers'
	// redirect_uri.
	RedirectURIs []string
	DeclRange    hcl.Range
}

type rawClient struct {
	Name         string    `hcl:"name,label"`
	PasswordHash *string   `hcl:"password_hash,optional"`
	Carrier      string    `hcl:"carrier,optional"`
	RedirectURIs *[]string `hcl:"redirect_uris,optional"`
	Body         hcl.Body  `hcl:",body"`
	DeclRange    hcl.Range `hcl:",def_range"`
}

func (r *rawClient) build(bd *builder) (Client, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	b := bd.block(r.Body, r.DeclRange)
	out := Client{Name: r.Name, Carrier: r.Carrier, DeclRange: r.DeclRange}
	if r.Name == "" || strings.ContainsAny(r.Name, ":\r\n") {
		// The name travels in HTTP Basic credentials, where ':' ends it.
		diags = append(diags, b.blockErrorf("Invalid client name",
			"A client name is the proxy user name: it must not be empty or contain ':' or line breaks."))
	}
	var d *hcl.Diagnostic
	if out.PasswordHash, d = b.passwordHash(r.PasswordHash, "the client's proxy password"); d != nil {
		diags = append(diags, d)
	}
	if b.given("redirect_uris", r.RedirectURIs != nil) {
		for _, raw := range *r.RedirectURIs {
			if u, why := httpURL(raw); why != "" || u.Fragment != "" {
				if why == "" {
					why = "it must not have a #fragment"
				}
				diags = append(diags, b.errorf("redirect_uris", "Invalid redirect URI",
					"Each of redirect_uris must be an absolute http(s) URL, like \"https://app.example/callback\": %q: %s.", raw, why))
				continue
			}
			out.RedirectURIs = append(out.RedirectURIs, raw)
		}
	}
	return out, diags
}

// passwordHash validates a required password_hash (a proxy client's or a
// console user's): written, and a bcrypt hash. whose says whose password it
// hashes, for the missing-argument message. The hash is "" with an error.
func (b block) passwordHash(v *string, whose string) (string, *hcl.Diagnostic) {
	switch {
	case b.absent("password_hash", v != nil):
		return "", b.missing("password_hash", "a bcrypt hash of "+whose)
	case !b.given("password_hash", v != nil):
		return "", nil // gohcl has reported it already
	case !isBcryptHash(*v):
		// The value is not echoed: it may be a password pasted by mistake.
		return "", b.errorf("password_hash", "Invalid password hash",
			"password_hash must be a bcrypt hash starting with $2a$, $2b$ or $2y$ (for example from: htpasswd -nbBC 10 USER PASSWORD).")
	}
	return *v, nil
}

// isBcryptHash checks the shape of a bcrypt hash: version, cost that
// bcrypt.Cost accepts, and 53 characters of bcrypt's base64 (salt and hash).
// bcrypt.Cost alone would accept a truncated or garbled tail.
func isBcryptHash(h string) bool {
	if len(h) != 60 || !strings.HasPrefix(h, "$2a$") && !strings.HasPrefix(h, "$2b$") && !strings.HasPrefix(h, "$2y$") {
		return false
	}
	if _, err := bcrypt.Cost([]byte(h)); err != nil {
		return false
	}
	for _, c := range []byte(h[7:]) {
		if !(c == '.' || c == '/' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return h[6] == '$'
}
