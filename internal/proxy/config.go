package proxy

import (
	"net/netip"
	"net/url"
	"regexp"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// Config is everything about the request path that a configuration reload
// may change. It is validated and precomputed as a whole by New and Update
// and swapped atomically: a request sees either the old Config or the new
// one, never a mix.
type Config struct {
	// Carriers are the configured UPS carriers; at most one is Default.
	Carriers []Carrier
	// Upstreams is where each environment's requests go (the config's
	// test_url / production_url); only scheme and host are used, the
	// request's path and query are kept. http:// is allowed for the
	// simulator.
	Upstreams map[ups.Environment]*url.URL
	// Clients are the proxy users. When there is at least one, every
	// request must carry Proxy-Authorization (Basic) for one of them, in
	// every mode, base-URL mode included.
	Clients []Client
	// Rewrites are ops' own legacy path translations, tried in order
	// before the built-in table (see legacy.go); the first match wins.
	Rewrites []Rewrite
	// AllowCIDRs restricts the client source addresses; empty means every
	// address. Others are refused with UPSPROXY_CLIENT_NOT_ALLOWED.
	AllowCIDRs []netip.Prefix
	// TransactionSrc is the transactionSrc header added when the client
	// sent none; "" means "upsproxy".
	TransactionSrc string
	// MaxRequestBody is the largest request body accepted; larger ones get
	// UPSPROXY_REQUEST_TOO_LARGE. 0 means DefaultMaxRequestBody.
	MaxRequestBody int64
	// BodyScanLimit bounds how much of a request body is read before it is
	// forwarded, to find shipper numbers, fill a missing one, strip a
	// UPSSecurity element or keep a copy for a replay. 0 means
	// DefaultBodyScanLimit.
	BodyScanLimit int64
}

// Defaults of Config.
const (
	DefaultMaxRequestBody = 10 << 20
	DefaultBodyScanLimit  = 1 << 20
	defaultTransactionSrc = "upsproxy"
)

// Carrier is what the request path needs to know about a configured carrier.
type Carrier struct {
	Name        string
	Environment ups.Environment
	// Inactive carriers' requests are refused (UPSPROXY_CARRIER_INACTIVE).
	Inactive bool
	// Default marks the carrier used when a request names none; at most one.
	Default bool
	// ShipperNumbers are the UPS accounts billed through this carrier: a
	// request naming one of them (compared case-insensitively) is routed
	// here. A number may belong to one carrier only.
	ShipperNumbers []string
	// DefaultShipper is the account filled in when FillShipperNumber is set.
	DefaultShipper string
	// FillShipperNumber fills a missing or empty Shipper.ShipperNumber of a
	// Rate or Ship request with DefaultShipper.
	FillShipperNumber bool
	// ClientIDs are OAuth client ids whose tokens from the proxy's token
	// endpoint use this carrier; an id may belong to one carrier only.
	ClientIDs []string
	// RedirectURI is the redirect URI registered with the carrier's UPS
	// application; the proxy's authorize answer may redirect to it (a
	// client sharing that application registered the same one).
	RedirectURI string
}

// Client is a proxy user (an HCL client block).
type Client struct {
	// Name is the proxy-auth user name.
	Name string
	// PasswordHash is a bcrypt hash of the password.
	PasswordHash string
	// Carrier, when set, pins the client to that carrier: its requests use
	// it, and a request naming another carrier or another carrier's
	// shipper account is refused.
	Carrier string
	// RedirectURIs are the redirect URIs (compared exactly) the proxy's
	// authorize answer may send this client's browser to, besides the
	// loopback ones and the carriers' redirect_uri.
	RedirectURIs []string
}

// String keeps the hash out of logs.
func (c Client) String() string {
	return "proxy.Client{name=" + c.Name + " carrier=" + c.Carrier + " password_hash=<redacted>}"
}

// GoString keeps the hash out of %#v.
func (c Client) GoString() string { return c.String() }

// Rewrite translates a legacy request path into a UPS REST path: when Match
// matches the path, the whole path becomes Match's expansion of Replace
// ($1, ${name}), which always starts with /api/.
type Rewrite struct {
	Name    string
	Match   *regexp.Regexp
	Replace string
}

// apply returns the rewritten path when r matches path.
func (r *Rewrite) apply(path string) (string, bool) {
	m := r.Match.FindStringSubmatchIndex(path)
	if m == nil {
		return "", false
	}
	return string(r.Match.ExpandString(nil, r.Replace, path, m)), true
}
