package config

import (
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/upsproxy/upsproxy/internal/ups"
)

// Carrier is one UPS application (client ID) in one environment, with the
// shipper accounts it bills.
type Carrier struct {
	// Name identifies the carrier in commands, Vault paths, logs and metrics.
	Name        string
	Environment ups.Environment
	// Inactive carriers get no reminders and their requests are refused.
	Inactive bool
	// Default carriers serve requests no other rule resolved.
	Default bool
	// Grant is ups.GrantAuthorizationCode or ups.GrantClientCredentials.
	Grant    string
	ClientID string
	// ClientSecret may be unset for authorization_code (PKCE); it may be a
	// Vault reference the caller resolves.
	ClientSecret Secret
	// RedirectURI is the registered redirect URI (authorization_code).
	RedirectURI string
	// MerchantID is sent as x-merchant-id with client_credentials.
	MerchantID string
	// Scope is sent when asking for a token; usually empty.
	Scope string
	// FillShipperNumber fills a missing Shipper.ShipperNumber with the
	// default shipper account's number.
	FillShipperNumber bool
	ShipperAccounts   []ShipperAccount
	// ClientIDs are OAuth client ids of the proxy's own clients whose
	// tokens (from upsproxy's token endpoint) use this carrier.
	ClientIDs []string
	DeclRange hcl.Range
}

// ShipperAccount is a UPS account number billed through a carrier.
type ShipperAccount struct {
	Name string
	// Number is the UPS shipper number, upper-cased.
	Number      string
	PostalCode  string
	CountryCode string
	Default     bool
	DeclRange   hcl.Range
}

// DefaultShipperAccount returns the account marked default = true, if any.
func (c *Carrier) DefaultShipperAccount() (*ShipperAccount, bool) {
	for i := range c.ShipperAccounts {
		if c.ShipperAccounts[i].Default {
			return &c.ShipperAccounts[i], true
		}
	}
	return nil, false
}

type rawCarrier struct {
	Name              string               `hcl:"name,label"`
	Environment       *string              `hcl:"environment,optional"`
	Inactive          bool                 `hcl:"inactive,optional"`
	Default           bool                 `hcl:"default,optional"`
	Grant             *string              `hcl:"grant,optional"`
	ClientID          *string              `hcl:"client_id,optional"`
	ClientSecret      hcl.Expression       `hcl:"client_secret,optional"`
	RedirectURI       *string              `hcl:"redirect_uri,optional"`
	MerchantID        string               `hcl:"merchant_id,optional"`
	Scope             string               `hcl:"scope,optional"`
	FillShipperNumber bool                 `hcl:"fill_shipper_number,optional"`
	ClientIDs         []string             `hcl:"client_ids,optional"`
	ShipperAccounts   []*rawShipperAccount `hcl:"shipper_account,block"`
	Body              hcl.Body             `hcl:",body"`
	DeclRange         hcl.Range            `hcl:",def_range"`
}

type rawShipperAccount struct {
	Name        string    `hcl:"name,label"`
	Number      *string   `hcl:"number,optional"`
	PostalCode  string    `hcl:"postal_code,optional"`
	CountryCode *string   `hcl:"country_code,optional"`
	Default     bool      `hcl:"default,optional"`
	Body        hcl.Body  `hcl:",body"`
	DeclRange   hcl.Range `hcl:",def_range"`
}

func (r *rawCarrier) build(bd *builder) (Carrier, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	b := bd.block(r.Body, r.DeclRange)
	out := Carrier{
		Name:              r.Name,
		Inactive:          r.Inactive,
		Default:           r.Default,
		Grant:             ups.GrantAuthorizationCode,
		MerchantID:        r.MerchantID,
		Scope:             r.Scope,
		FillShipperNumber: r.FillShipperNumber,
		DeclRange:         r.DeclRange,
	}
	for _, id := range r.ClientIDs {
		if id == "" || len(id) > 255 || strings.ContainsAny(id, ":") {
			diags = append(diags, b.errorf("client_ids", "Invalid client id",
				"client_ids lists OAuth client ids (up to 255 characters, no ':'); %q does not fit.", id))
			continue
		}
		out.ClientIDs = append(out.ClientIDs, id)
	}
	if !validName(r.Name) {
		diags = append(diags, b.blockErrorf("Invalid carrier name",
			"Carrier names appear in Vault paths, commands and metrics: use letters, digits, '-', '_' and '.', starting with a letter or digit; %q does not fit.", r.Name))
	}

	switch {
	case b.absent("environment", r.Environment != nil):
		diags = append(diags, b.missing("environment", `set it to "test" or "production"`))
	case b.given("environment", r.Environment != nil):
		if env := ups.Environment(*r.Environment); env.Valid() {
			out.Environment = env
		} else {
			diags = append(diags, b.errorf("environment", "Invalid environment",
				"environment must be %q or %q, not %q.", ups.Test, ups.Production, *r.Environment))
		}
	}

	if b.failed("grant") {
		out.Grant = "" // unknown: skip the checks that depend on it
	} else if r.Grant != nil {
		switch *r.Grant {
		case ups.GrantAuthorizationCode, ups.GrantClientCredentials:
			out.Grant = *r.Grant
		default:
			diags = append(diags, b.errorf("grant", "Invalid grant",
				"grant must be %q or %q, not %q.", ups.GrantAuthorizationCode, ups.GrantClientCredentials, *r.Grant))
			out.Grant = ""
		}
	}

	switch {
	case b.absent("client_id", r.ClientID != nil):
		diags = append(diags, b.missing("client_id", "the client ID of the UPS application"))
	case !b.given("client_id", r.ClientID != nil):
	case *r.ClientID == "":
		diags = append(diags, b.errorf("client_id", "Invalid client_id", "client_id must not be empty."))
	default:
		out.ClientID = *r.ClientID
	}

	secret, sdiags := bd.secret(b, "client_secret", r.ClientSecret)
	diags = append(diags, sdiags...)
	out.ClientSecret = secret
	if out.Grant == ups.GrantClientCredentials && !secret.IsSet() && !sdiags.HasErrors() {
		if b.attr("client_secret") != nil {
			diags = append(diags, b.errorf("client_secret", "Missing client secret",
				"The client_credentials grant needs a client secret, and this one is empty."))
		} else {
			diags = append(diags, b.missing("client_secret", "the client_credentials grant needs a client secret"))
		}
	}

	switch {
	case b.absent("redirect_uri", r.RedirectURI != nil) && out.Grant == ups.GrantAuthorizationCode:
		diags = append(diags, b.missing("redirect_uri",
			"the authorization_code grant needs the redirect URI registered with the UPS application"))
	case b.given("redirect_uri", r.RedirectURI != nil):
		u, why := httpURL(*r.RedirectURI)
		if why == "" && u.Fragment != "" {
			why = "an OAuth redirect URI must not have a fragment"
		}
		if why != "" {
			diags = append(diags, b.errorf("redirect_uri", "Invalid redirect_uri",
				"redirect_uri must be the absolute http(s) URL registered with the UPS application, like \"https://127.0.0.1/upscallback\": %s.", why))
		} else {
			out.RedirectURI = *r.RedirectURI
		}
	}

	var firstDefault *rawShipperAccount
	names := map[string]*rawShipperAccount{}
	for _, ra := range r.ShipperAccounts {
		a, d := ra.build(bd)
		diags = append(diags, d...)
		ab := bd.block(ra.Body, ra.DeclRange)
		if prev, dup := names[ra.Name]; dup {
			diags = append(diags, ab.blockErrorf("Duplicate shipper_account name "+strconv.Quote(ra.Name),
				"Carrier %q already has a shipper_account %q, defined at %s.", r.Name, ra.Name, position(&prev.DeclRange)))
		} else {
			names[ra.Name] = ra
		}
		if ra.Default {
			if firstDefault != nil {
				diags = append(diags, ab.errorf("default", "Two default shipper accounts",
					"Carrier %q already has a default shipper_account, %q at %s; only one may be the default.",
					r.Name, firstDefault.Name, position(&firstDefault.DeclRange)))
			} else {
				firstDefault = ra
			}
		}
		out.ShipperAccounts = append(out.ShipperAccounts, a)
	}
	if r.FillShipperNumber && firstDefault == nil {
		diags = append(diags, b.errorf("fill_shipper_number", "No default shipper account",
			"fill_shipper_number fills requests with the default shipper account's number, but carrier %q has no shipper_account with default = true.", r.Name))
	}
	return out, diags
}

func (r *rawShipperAccount) build(bd *builder) (ShipperAccount, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	b := bd.block(r.Body, r.DeclRange)
	out := ShipperAccount{Name: r.Name, PostalCode: r.PostalCode, Default: r.Default, DeclRange: r.DeclRange}
	switch {
	case b.absent("number", r.Number != nil):
		diags = append(diags, b.missing("number", "the UPS shipper (account) number"))
	case b.given("number", r.Number != nil):
		n := strings.ToUpper(strings.TrimSpace(*r.Number))
		if n == "" || !isAlnum(n) {
			diags = append(diags, b.errorf("number", "Invalid shipper number",
				"A UPS shipper number is letters and digits, like \"W599Y7\"; %q is not.", *r.Number))
		} else {
			out.Number = n
		}
	}
	if b.given("country_code", r.CountryCode != nil) {
		cc := strings.ToUpper(*r.CountryCode)
		if len(cc) != 2 || !isUpperLetter(cc[0]) || !isUpperLetter(cc[1]) {
			diags = append(diags, b.errorf("country_code", "Invalid country_code",
				"country_code must be a two-letter ISO country code like \"US\", not %q.", *r.CountryCode))
		} else {
			out.CountryCode = cc
		}
	}
	return out, diags
}

// validName accepts names safe in Vault paths, command lines and metric
// labels.
func validName(s string) bool {
	if s == "" || !isAlnum(s[:1]) {
		return false
	}
	for _, c := range []byte(s) {
		if !(isAlnumByte(c) || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func isAlnum(s string) bool {
	for _, c := range []byte(s) {
		if !isAlnumByte(c) {
			return false
		}
	}
	return true
}

func isAlnumByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isUpperLetter(c byte) bool { return c >= 'A' && c <= 'Z' }
