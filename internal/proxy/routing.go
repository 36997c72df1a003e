package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// routing is everything the request path needs to know about carriers and
// upstreams. It is immutable once built and swapped whole (Proxy.Update),
// so a request sees either the old configuration or the new one, never a mix.
type routing struct {
	byName map[string]*route
	def    *route // the default carrier; nil when none is marked
}

// route is one carrier, with what its requests need precomputed.
type route struct {
	name     string
	env      ups.Environment
	inactive bool
	scheme   string // upstream, from Options.Upstreams[env]
	host     string
	errs     routeErrors
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

func buildRouting(carriers []Carrier, upstreams map[ups.Environment]*url.URL) (*routing, error) {
	rt := &routing{byName: make(map[string]*route, len(carriers))}
	for _, c := range carriers {
		if c.Name == "" {
			return nil, errors.New("carrier with an empty name")
		}
		if _, dup := rt.byName[c.Name]; dup {
			return nil, fmt.Errorf("carrier %q: defined twice", c.Name)
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
		if c.Default {
			if rt.def != nil {
				return nil, fmt.Errorf("carriers %q and %q are both marked default", rt.def.name, c.Name)
			}
			rt.def = r
		}
		rt.byName[c.Name] = r
	}
	return rt, nil
}

// resolve picks the carrier of a request: the one named in the
// X-Upsproxy-Carrier header, else the default one.
func (rt *routing) resolve(h http.Header) (*route, error) {
	// Direct map access: the key is canonical and net/http (and goproxy's
	// MITM reader) canonicalize incoming header names.
	if names := h[CarrierHeader]; len(names) > 0 {
		if r := rt.byName[names[0]]; r != nil {
			return r, nil
		}
		return nil, unknownCarrierError(names[0])
	}
	if rt.def == nil {
		return nil, errNoCarrier
	}
	return rt.def, nil
}
