package proxy

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// routing is a Config with everything the request path needs precomputed.
// It is immutable once built and swapped whole (Proxy.Update), so a request
// sees either the old configuration or the new one, never a mix.
type routing struct {
	byName map[string]*route
	def    *route // the default carrier; nil when none is marked
	// byShipper maps upper-cased shipper numbers to their carrier.
	byShipper map[string]*route
	// byClientID maps the carriers' client_ids to their carrier (OAuth
	// clients, oauthendpoint.go).
	byClientID map[string]*route
	// redirects are the carriers' redirect_uri values, where the
	// authorize answer may send any client (oauthendpoint.go).
	redirects map[string]bool

	// clients is nil when no client block exists: no proxy auth.
	clients map[string]*client
	auth    *authCache

	rewrites       []Rewrite
	allow          []netip.Prefix
	transactionSrc []string
	maxBody        int64
	scanLimit      int64
	errTooLarge    *proxyError
}

// route is one carrier, with what its requests need precomputed.
type route struct {
	name     string
	env      ups.Environment
	inactive bool
	scheme   string // upstream, from Config.Upstreams[env]
	host     string
	errs     routeErrors
	// fill: a missing Shipper.ShipperNumber is filled with fillNumber.
	fill       bool
	fillNumber string
	// bearer caches the Authorization header value for the current access
	// token, so the hot path builds it once per token, not once per request.
	bearer atomic.Pointer[bearerHeader]
}

// bearerHeader is an Authorization header value and the token it was built from.
type bearerHeader struct {
	token string
	value []string // shared read-only by every request using this token
}

// String keeps the token out of %v.
func (b *bearerHeader) String() string { return "Bearer <redacted>" }

// GoString keeps the token out of %#v.
func (b *bearerHeader) GoString() string { return b.String() }

// authorization returns the Authorization header value for token. The
// slice is shared between concurrent requests: it is only ever read
// (Header.Add on it would copy, since len == cap).
func (r *route) authorization(token string) []string {
	if b := r.bearer.Load(); b != nil && b.token == token {
		return b.value
	}
	b := &bearerHeader{token: token, value: []string{"Bearer " + token}}
	r.bearer.Store(b)
	return b.value
}

// client is a proxy user, with the carrier it is pinned to.
type client struct {
	name      string
	hash      []byte
	pin       *route          // nil: the carrier is resolved from the request
	redirects map[string]bool // its redirect_uris (authorize)
}

// maxShipperNumberLen bounds a shipper number looked up or echoed; UPS
// account numbers are 6 characters (10 with leading zeros in some tools).
const maxShipperNumberLen = 32

func buildRouting(cfg Config) (*routing, error) {
	rt := &routing{
		byName:    make(map[string]*route, len(cfg.Carriers)),
		byShipper: make(map[string]*route),
		maxBody:   cfg.MaxRequestBody,
		scanLimit: cfg.BodyScanLimit,
	}
	if rt.maxBody < 0 || rt.scanLimit < 0 {
		return nil, errors.New("MaxRequestBody and BodyScanLimit must not be negative")
	}
	if rt.maxBody == 0 {
		rt.maxBody = DefaultMaxRequestBody
	}
	if rt.scanLimit == 0 {
		rt.scanLimit = DefaultBodyScanLimit
	}
	rt.errTooLarge = newProxyError(CodeRequestTooLarge, fmt.Sprintf(
		"The request body is larger than the %d bytes upsproxy accepts (limits.max_request_body).", rt.maxBody))
	src := cfg.TransactionSrc
	if src == "" {
		src = defaultTransactionSrc
	}
	rt.transactionSrc = []string{src}

	for _, c := range cfg.Carriers {
		r, err := buildRoute(c, cfg.Upstreams)
		if err != nil {
			return nil, err
		}
		if _, dup := rt.byName[c.Name]; dup {
			return nil, fmt.Errorf("carrier %q: defined twice", c.Name)
		}
		if c.Default {
			if rt.def != nil {
				return nil, fmt.Errorf("carriers %q and %q are both marked default", rt.def.name, c.Name)
			}
			rt.def = r
		}
		rt.byName[c.Name] = r
		for _, n := range c.ShipperNumbers {
			key := strings.ToUpper(strings.TrimSpace(n))
			if key == "" || len(key) > maxShipperNumberLen {
				return nil, fmt.Errorf("carrier %q: shipper number %q is empty or longer than %d characters", c.Name, n, maxShipperNumberLen)
			}
			if other := rt.byShipper[key]; other != nil && other != r {
				return nil, fmt.Errorf("shipper number %s belongs to carriers %q and %q", key, other.name, c.Name)
			}
			rt.byShipper[key] = r
		}
	}
	for _, c := range cfg.Carriers {
		if c.RedirectURI == "" {
			continue
		}
		if !validRedirect(c.RedirectURI) {
			return nil, fmt.Errorf("carrier %q: redirect URI %q is not an absolute http(s) URL without a fragment", c.Name, c.RedirectURI)
		}
		if rt.redirects == nil {
			rt.redirects = make(map[string]bool)
		}
		rt.redirects[c.RedirectURI] = true
	}
	var err error
	if rt.byClientID, err = buildClientIDs(cfg.Carriers, rt.byName); err != nil {
		return nil, err
	}

	if len(cfg.Clients) > 0 {
		rt.clients = make(map[string]*client, len(cfg.Clients))
		for _, c := range cfg.Clients {
			if c.Name == "" || strings.Contains(c.Name, ":") {
				return nil, fmt.Errorf("client %q: a proxy user name must not be empty or contain ':'", c.Name)
			}
			if _, dup := rt.clients[c.Name]; dup {
				return nil, fmt.Errorf("client %q: defined twice", c.Name)
			}
			if !strings.HasPrefix(c.PasswordHash, "$2") {
				return nil, fmt.Errorf("client %q: password hash is not a bcrypt hash", c.Name)
			}
			cl := &client{name: c.Name, hash: []byte(c.PasswordHash)}
			for _, u := range c.RedirectURIs {
				if !validRedirect(u) {
					return nil, fmt.Errorf("client %q: redirect URI %q is not an absolute http(s) URL without a fragment", c.Name, u)
				}
				if cl.redirects == nil {
					cl.redirects = make(map[string]bool, len(c.RedirectURIs))
				}
				cl.redirects[u] = true
			}
			if c.Carrier != "" {
				if cl.pin = rt.byName[c.Carrier]; cl.pin == nil {
					return nil, fmt.Errorf("client %q: unknown carrier %q", c.Name, c.Carrier)
				}
			}
			rt.clients[c.Name] = cl
		}
		rt.auth = newAuthCache()
	}

	for i, rw := range cfg.Rewrites {
		if rw.Match == nil || !strings.HasPrefix(rw.Replace, "/api/") {
			return nil, fmt.Errorf("rewrite %q: needs a match pattern and a replacement starting with /api/", rw.Name)
		}
		rt.rewrites = append(rt.rewrites, cfg.Rewrites[i])
	}
	for _, p := range cfg.AllowCIDRs {
		if !p.IsValid() {
			return nil, errors.New("allow_cidrs: invalid prefix")
		}
		rt.allow = append(rt.allow, p.Masked())
	}
	return rt, nil
}

func buildRoute(c Carrier, upstreams map[ups.Environment]*url.URL) (*route, error) {
	if c.Name == "" {
		return nil, errors.New("carrier with an empty name")
	}
	if !c.Environment.Valid() {
		return nil, fmt.Errorf("carrier %q: environment %q is neither %q nor %q", c.Name, c.Environment, ups.Test, ups.Production)
	}
	up := upstreams[c.Environment]
	if up == nil {
		return nil, fmt.Errorf("carrier %q: no upstream URL for environment %s", c.Name, c.Environment)
	}
	if (up.Scheme != "https" && up.Scheme != "http") || up.Host == "" {
		return nil, fmt.Errorf("carrier %q: upstream URL %q for %s must be http(s)://host[:port]", c.Name, up.Redacted(), c.Environment)
	}
	r := &route{
		name:     c.Name,
		env:      c.Environment,
		inactive: c.Inactive,
		scheme:   up.Scheme,
		host:     up.Host,
		errs:     newRouteErrors(c.Name, c.Environment, up.Host),
	}
	if c.FillShipperNumber {
		n := strings.TrimSpace(c.DefaultShipper)
		if n == "" || len(n) > maxShipperNumberLen || strings.ContainsAny(n, "\"\\") {
			return nil, fmt.Errorf("carrier %q: fill_shipper_number needs a default shipper account number", c.Name)
		}
		r.fill, r.fillNumber = true, n
	}
	return r, nil
}

// allowed reports whether a client at remoteAddr ("ip:port", as net/http
// sets it) may use the proxy.
func (rt *routing) allowed(remoteAddr string) bool {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range rt.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// shipperOwner returns the carrier owning a shipper number, or nil.
func (rt *routing) shipperOwner(number []byte) *route {
	n := trimSpaceBytes(number)
	if len(n) == 0 || len(n) > maxShipperNumberLen {
		return nil
	}
	var buf [maxShipperNumberLen]byte
	for i, c := range n {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	// The compiler turns a map index by string(bytes) into a lookup
	// without allocating.
	return rt.byShipper[string(buf[:len(n)])]
}

func trimSpaceBytes(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
