// Package upssim is a faithful, in-memory stand-in for UPS: the OAuth
// endpoints (authorize, token, refresh) and the common REST APIs (Rating,
// Shipping, Void, Label Recovery, Tracking, Address Validation). It backs the tests, `make
// demo` (through `upsproxy sandbox`) and users wiring up their software
// without UPS credentials.
//
// It is host-agnostic: one Server answers for wwwcie.ups.com,
// onlinetools.ups.com, 127.0.0.1:port or whatever Host it is addressed as.
// The one place the host matters: a code or token minted while addressed as
// one real UPS host is refused on the other real UPS host, because UPS's
// test and production environments never accept each other's tokens.
//
// Wire behaviour follows UPS's published OpenAPI specs (vendored in
// third_party/ups-openapi) and the project's UPS-FACTS notes: every token field is
// a JSON string, errors use UPS's {"response":{"errors":[...]}} envelope,
// refresh tokens are single-use, and API calls without a valid bearer token
// get 401 with code 250002. Where real UPS is more lenient than its spec
// (a lone object where the spec wants an array, numbers sent as JSON
// numbers), the simulator accepts what UPS accepts.
//
// OAuth answers, all in the envelope unless 200/302:
//
//	authorize      unknown client_id            401 10401 "ClientId is Invalid"
//	               bad response_type/redirect   400 10400
//	token, refresh no/garbled Authorization     401 10400 "Invalid/Missing Authorization Header"
//	               wrong client id or secret    401 10401 "ClientId is Invalid"
//	token          bad, used, expired code      400 10400 "Invalid Authorization Code"
//	               redirect_uri mismatch        400 10400 "Invalid Redirect URL"
//	               PKCE verifier mismatch       400 10400 "Invalid code_verifier"
//	refresh        spent, unknown, expired,     401 10400 "Invalid Refresh Token"
//	               rejected or foreign token
//
// Basic credentials are compared raw (base64 decoded, split at the first
// colon, never URL-unescaped), as UPS's own SDK sends them. Codes are
// single-use and live CodeTTL; a redemption attempt by an authenticated
// client spends the code even when it then fails (wrong verifier or
// redirect_uri), so guesses cannot be retried. Refreshing spends the refresh token, returns a new pair and
// keeps the chain's original refresh_token_issued_at and expiry; the old
// access token stays valid until its own expiry.
package upssim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// Defaults applied by New for zero Options fields.
const (
	DefaultAccessTTL  = 4 * time.Hour
	DefaultRefreshTTL = 60 * 24 * time.Hour // UPS: refresh_token_expires_in "5183999"
	// CodeTTL is how long an authorization code can be exchanged.
	CodeTTL = 5 * time.Minute
)

const (
	// recordLimit caps the body kept per recorded request.
	recordLimit = 1 << 20
	// apiBodyLimit caps what an API handler reads; UPS requests with
	// several packages and forms stay far below it.
	apiBodyLimit = 8 << 20
	// formBodyLimit caps OAuth form bodies, which are a few hundred bytes.
	formBodyLimit = 64 << 10
	// maxRecorded bounds each request log, so a sandbox left running for
	// weeks does not grow without limit; tests never get near it.
	maxRecorded = 10000
)

// Options configure a Server. The zero value is usable but has no clients,
// so every OAuth request fails client authentication.
type Options struct {
	// Clients maps client_id to client_secret. A client whose secret is ""
	// is a public PKCE client.
	Clients map[string]string
	// AccessTTL is the access-token lifetime; default 4h.
	AccessTTL time.Duration
	// RefreshTTL is the refresh-token lifetime, fixed at first issue and
	// not extended by refreshes; default 60 days.
	RefreshTTL time.Duration
	// Clock drives every expiry decision; default time.Now. Fault delays
	// are wall-clock time regardless.
	Clock func() time.Time
	// Logger receives one debug line per request and info lines for token
	// events; default zap.NewNop(). Token values and secrets never reach it.
	Logger *zap.Logger
}

// Stats counts what the simulator did. Tests use it to prove, for example,
// that a storm of concurrent requests caused exactly one refresh.
type Stats struct {
	// AuthorizationCodeGrants counts successful code exchanges.
	AuthorizationCodeGrants int
	// ClientCredentialsGrants counts successful client_credentials grants.
	ClientCredentialsGrants int
	// Refreshes counts successful refreshes.
	Refreshes int
	// RefreshRejected counts refresh attempts answered with 10400 "Invalid
	// Refresh Token" (spent, unknown, expired, rejected or another client's
	// token); client-authentication failures are not counted here.
	RefreshRejected int
	// APICalls counts every /api/... request received, whatever its outcome.
	APICalls int
	// APIUnauthorized counts API requests answered 401/250002.
	APIUnauthorized int
}

// Recorded is one request as the simulator received it.
type Recorded struct {
	Method   string
	Host     string
	Path     string
	RawQuery string
	Header   http.Header
	// Body holds at most the first 1 MiB of the request body.
	Body []byte
}

// Server is the simulator. It implements http.Handler and is safe for
// concurrent use.
type Server struct {
	// clients maps client id to secret; SetClientSecret changes it.
	clientsMu  sync.RWMutex
	clients    map[string]string
	accessTTL  time.Duration
	refreshTTL time.Duration
	now        func() time.Time
	log        *zap.Logger

	mu            sync.Mutex
	codes         map[string]*authCode
	access        map[string]*accessToken
	refresh       map[string]*refreshToken
	shipments     map[string]*shipment // by shipment identification number
	packages      map[string]string    // tracking number -> shipment id
	trackingSeq   uint64
	issuedSince   int // tokens minted since the last sweep of expired ones
	stats         Stats
	apiRequests   []Recorded
	oauthRequests []Recorded
	faults        map[string]*activeFault
}

// New returns a Server with opts' zero fields defaulted. The Clients map is
// copied, so later changes by the caller have no effect.
func New(opts Options) *Server {
	s := &Server{
		clients:    make(map[string]string, len(opts.Clients)),
		accessTTL:  opts.AccessTTL,
		refreshTTL: opts.RefreshTTL,
		now:        opts.Clock,
		log:        opts.Logger,
		codes:      make(map[string]*authCode),
		access:     make(map[string]*accessToken),
		refresh:    make(map[string]*refreshToken),
		shipments:  make(map[string]*shipment),
		packages:   make(map[string]string),
		faults:     make(map[string]*activeFault),
	}
	for id, secret := range opts.Clients {
		s.clients[id] = secret
	}
	if s.accessTTL <= 0 {
		s.accessTTL = DefaultAccessTTL
	}
	if s.refreshTTL <= 0 {
		s.refreshTTL = DefaultRefreshTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	s.trackingSeq = randomSeed()
	return s
}

// ServeHTTP routes a request to the OAuth endpoints or the APIs.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		// Only method, path and status: queries carry codes and states,
		// headers and bodies carry secrets.
		s.log.Debug("upssim request", zap.String("method", r.Method), zap.String("path", r.URL.Path),
			zap.Int("status", sw.status), zap.Duration("duration", time.Since(start)))
	}()
	switch {
	case r.URL.Path == ups.AuthorizePath:
		s.handleAuthorize(sw, r)
	case r.URL.Path == ups.TokenPath:
		s.handleToken(sw, r)
	case r.URL.Path == ups.RefreshPath:
		s.handleRefresh(sw, r)
	case r.URL.Path == "/api" || strings.HasPrefix(r.URL.Path, "/api/"):
		s.handleAPI(sw, r)
	default:
		writeEnvelope(sw, http.StatusNotFound, "404", "Resource not found: "+r.Method+" "+r.URL.Path)
	}
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Requests returns every API (/api/...) request seen since the last
// ResetRequests, in arrival order, including those answered with an error
// or a fault. Past 10000 records the oldest half is dropped.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneRecorded(s.apiRequests)
}

// OAuthRequests returns every authorize, token and refresh request seen
// since the last ResetRequests, in arrival order. Tests use it to check what
// a client really sent: the raw Basic header, x-merchant-id, or that a
// failed exchange was not silently retried. The records hold credentials;
// keep them out of logs.
func (s *Server) OAuthRequests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneRecorded(s.oauthRequests)
}

// ResetRequests forgets the recorded API and OAuth requests.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiRequests = nil
	s.oauthRequests = nil
}

// appendRecord adds rec to list. At the cap it drops the older half in one
// go, so a long run costs one copy per 5000 requests, not one per request.
func appendRecord(list []Recorded, rec Recorded) []Recorded {
	if len(list) >= maxRecorded {
		list = append([]Recorded(nil), list[len(list)-maxRecorded/2:]...)
	}
	return append(list, rec)
}

func cloneRecorded(in []Recorded) []Recorded {
	out := make([]Recorded, len(in))
	for i, rec := range in {
		rec.Header = rec.Header.Clone()
		rec.Body = bytes.Clone(rec.Body)
		out[i] = rec
	}
	return out
}

// readBody reads at most limit bytes of r's body. tooLarge reports a body
// over the limit; the returned bytes are then truncated.
func readBody(r *http.Request, limit int64) (body []byte, tooLarge bool, err error) {
	if r.Body == nil {
		return nil, false, nil
	}
	body, err = io.ReadAll(io.LimitReader(r.Body, limit+1))
	if int64(len(body)) > limit {
		return body[:limit], true, err
	}
	return body, false, err
}

func record(r *http.Request, body []byte) Recorded {
	if len(body) > recordLimit {
		body = body[:recordLimit]
	}
	return Recorded{
		Method:   r.Method,
		Host:     r.Host,
		Path:     r.URL.Path,
		RawQuery: r.URL.RawQuery,
		Header:   r.Header.Clone(),
		Body:     bytes.Clone(body),
	}
}

// hostEnvironment names the UPS environment a Host header addresses, or ""
// for any other host (loopback, a test server), which matches every
// environment.
func hostEnvironment(host string) ups.Environment {
	h := strings.ToLower(host)
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	switch h {
	case ups.TestHost:
		return ups.Test
	case ups.ProductionHost:
		return ups.Production
	}
	return ""
}

// sameEnvironment reports whether something minted in environment a may be
// used in environment b.
func sameEnvironment(a, b ups.Environment) bool {
	return a == "" || b == "" || a == b
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Our response types hold only strings, numbers and bools.
		writeEnvelope(w, http.StatusInternalServerError, "500", "simulator could not encode its response")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeEnvelope(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(ups.EncodeEnvelope(code, message))
}

// statusWriter remembers the status for the request log line.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
