package proxy

import (
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/clienttoken"
	"github.com/upsproxy/upsproxy/internal/ups"
)

// forward is the request path, the same for all three modes: serveHTTP
// runs it for origin-form and absolute-form requests, serveTunnel for
// requests decrypted from a CONNECT tunnel tun (nil otherwise). conn is
// the client's connection, for the body's read deadlines (nil: none). It
// sends the request upstream itself and returns the response for the
// client, UPS's or the proxy's refusal. Every step reads the one
// configuration loaded here.
func (p *Proxy) forward(req *http.Request, tun *tunnel, conn readDeadliner) *http.Response {
	x := p.newExchange(req)
	rt := p.routing.Load()
	x.body.begin(req)

	// 0. Only the methods UPS APIs use: TRACE would echo the bearer token
	// back, CONNECT inside a tunnel would open another one.
	if !allowedMethod(req.Method) {
		return x.fail(req, errMethodNotAllowed)
	}

	// 1. Did the client address UPS (or the proxy itself, in base-URL mode)?
	addressed, err := addressedEnvironment(req, tun)
	if err != nil {
		return x.fail(req, err)
	}
	if hasHeader(req.Header, transIDHeader) {
		x.transID = clip(req.Header[transIDHeader][0], maxLoggedTransID)
	}
	// UPS's OAuth paths are answered by the proxy itself; a bearer it
	// issued is checked (oauthendpoint.go).
	if isOAuthPath(x.path) {
		return p.serveOAuth(x, req, rt, conn)
	}
	tok, err := p.presentedToken(req.Header)
	if err != nil {
		return x.fail(req, err)
	}

	// 2. Who is asking? With client blocks, proxy credentials are required.
	cl, err := p.proxyUser(rt, req, tun, tok)
	if err != nil {
		return x.fail(req, err)
	}
	if cl != nil {
		x.client = cl.name
	}

	// 3. A body over the limit is refused before anything is read or dialled.
	if err := x.body.limit(rt, conn, &p.limits); err != nil {
		return x.failClose(req, err)
	}

	// 4. Legacy URL shapes become today's /api/ paths.
	translated := rt.translate(x.path)

	// 5. Which carrier? The client's pin, the header or its OAuth token
	// come first, then the shipper numbers of the body's prefix, read and
	// scanned here.
	pin, err := rt.pinnedWithToken(cl, tok, req.Header)
	if err != nil {
		return x.fail(req, err)
	}
	if err := x.body.read(rt); err != nil {
		return x.fail(req, err)
	}
	r, err := rt.resolve(cl, pin, req.Header, x.body.prefix, x.body.result())
	if err != nil {
		return x.fail(req, err)
	}
	x.route = r
	if r.inactive {
		return x.fail(req, r.errs.inactive)
	}

	// 6. The carrier's environment picks the UPS host; never let a request
	// meant for Test spend real money in Production.
	if err := p.checkEnvironment(addressed, r, x.path); err != nil {
		return x.fail(req, err)
	}

	// 7. The path UPS gets (a legacy Rate call's operation is in the
	// body), then the body: cut out UPSSecurity, fill a missing shipper
	// number.
	path := p.upstreamPath(x, translated)
	x.body.edit(rt, r, pin, cl)

	// 8. Header hygiene, then the carrier's token and UPS's transaction headers.
	stripRequestHeaders(req.Header)
	token, err := p.tokens.Token(req.Context(), r.name, r.env)
	if err != nil {
		return x.fail(req, &tokenError{route: r, err: err})
	}
	x.setRequestHeaders(req.Header, r, token, rt)

	// 9. Forward, streaming both bodies; replay once if UPS refused a token
	// it should have accepted and the operation is safe to repeat.
	resp, err := p.transport.RoundTrip(x.outbound(req, r, path))
	if err != nil {
		return x.fail(req, x.body.sendError(rt, r, err))
	}
	if resp.StatusCode == http.StatusUnauthorized && replayable(req.Method, translated.path) {
		if body, ok := x.body.inMemory(); ok {
			if resp, err = p.replay(x, r, token, resp, body); err != nil {
				return x.fail(req, err)
			}
		}
	}
	return x.deliver(resp)
}

// proxyUser authenticates the client when client blocks are configured
// (nil client otherwise): by the request's Proxy-Authorization, or the
// credentials its CONNECT tunnel was opened with, or the upsproxy OAuth
// token it presented (tok; see identify).
func (p *Proxy) proxyUser(rt *routing, req *http.Request, tun *tunnel, tok clienttoken.Claims) (*client, error) {
	if rt.clients == nil {
		return nil, nil
	}
	auth := ""
	if v := req.Header["Proxy-Authorization"]; len(v) > 0 {
		auth = v[0]
	} else if tun != nil {
		auth = tun.auth
	}
	cl, err := rt.identify(req.Context(), auth, tok)
	if err == errProxyAuthMissing && auth == "" && tun == nil && req.URL.Host == baseURLHost &&
		len(req.Header[authorizationHeader]) == 0 {
		// Base-URL mode and no credentials of any kind: the client knows
		// of no proxy, so it is most likely an OAuth client that fetches
		// its token only once refused (npm ups-api does). Proxy-aware
		// modes and clients that sent something keep the 407.
		return nil, errBearerRequired
	}
	return cl, err
}

// checkEnvironment refuses a request for the Test host that resolved to a
// Production carrier; the reverse is sent to Test, and logged.
func (p *Proxy) checkEnvironment(addressed ups.Environment, r *route, path string) error {
	switch {
	case addressed == ups.Test && r.env == ups.Production:
		return r.errs.mismatch
	case addressed == ups.Production && r.env == ups.Test:
		if ce := p.log.Check(zap.DebugLevel, "production host addressed, carrier is a test carrier: sending to test"); ce != nil {
			ce.Write(zap.String("carrier", r.name), zap.String("path", path))
		}
	}
	return nil
}

// upstreamPath is the path UPS gets: the translated one, with the rating
// operation of a legacy /rest/Rate call taken from its body (before the
// body is edited: the scan result points into the prefix as read).
func (p *Proxy) upstreamPath(x *exchange, t translation) string {
	path := t.path
	if t.rateFromBody && x.body.present {
		path = "/api/rating/v1/" + rateOperation(x.body.requestOption())
	}
	if path != x.path {
		x.upstreamPath = path
		if ce := p.log.Check(zap.DebugLevel, "legacy path translated"); ce != nil {
			ce.Write(zap.String("path", x.path), zap.String("upstream_path", path), zap.String("rule", t.rule))
		}
	}
	return path
}

// setRequestHeaders adds the carrier's token and UPS's transaction headers
// (a transId of our own when the client sent none) to h, already cleaned.
func (x *exchange) setRequestHeaders(h http.Header, r *route, token string, rt *routing) {
	h[authorizationHeader] = r.authorization(token)
	if x.transID == "" {
		x.transID = newTransID()
		x.transIDValue[0] = x.transID
		h[transIDHeader] = x.transIDValue[:]
	}
	if !hasHeader(h, transactionSrcHeader) {
		h[transactionSrcHeader] = rt.transactionSrc
	}
}

// addressedEnvironment checks the request's target against the allow-list
// and tells which UPS environment the client addressed ("" in base-URL
// mode); tun is the CONNECT tunnel it came through, if any.
func addressedEnvironment(req *http.Request, tun *tunnel) (ups.Environment, error) {
	t := requestTarget(req.URL)
	if t == nil {
		return "", errHostNotAllowed
	}
	if tun != nil && tun.target != nil {
		// Decrypted from a CONNECT tunnel: the URL's host comes from the
		// inner Host header, which must name UPS too. If either names the
		// Test host, the client meant Test.
		if t == baseURLTarget {
			return "", errHostNotAllowed
		}
		if tun.target.env == ups.Test {
			return ups.Test, nil
		}
		return t.env, nil
	}
	if t == baseURLTarget {
		// Base-URL mode addresses no particular host, unless the client
		// sent the Test host's name as Host (hosts-file redirection): then
		// it believes it talks to Test, and the mismatch guard must hold.
		if lookupUPSHost(hostname(req.Host)) == testTarget {
			return ups.Test, nil
		}
		return "", nil
	}
	return t.env, nil
}

// allowedMethods are the methods UPS APIs use, as the 405 answer lists them.
const allowedMethods = "GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS"

func allowedMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}

// maxLoggedTransID bounds a client-sent transId in the log (UPS allows 32).
const maxLoggedTransID = 64

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// exchange is one request's state, from arrival to the access log line. It
// is also the body of the response forward returns, so that the log line
// is written when the body has been streamed (respond and the tunnel always
// close it). One allocation holds the outbound request, its URL and body
// reader too.
type exchange struct {
	p         *Proxy
	start     time.Time
	method    string
	path      string
	authority string // CONNECT requests only
	route     *route
	transID   string
	status    int
	errCode   string
	cause     error // logged for failures whose text helps ops (network, token store)
	login     string
	client    string // proxy user, when proxy auth is on
	// upstreamPath is the translated path, when it differs from path.
	upstreamPath string
	replayed     bool
	readErr      bool // reading UPS's response body failed midway

	body requestBody // the client's body on its way to UPS

	upstreamBody io.ReadCloser
	logged       atomic.Bool

	out          http.Request
	url          url.URL
	transIDValue [1]string
}

func (p *Proxy) newExchange(req *http.Request) *exchange {
	path := ""
	if req.URL != nil {
		path = req.URL.Path
	}
	return p.startExchange(req.Method, path)
}

// startExchange starts an exchange for a request known by its method and
// path (both "" for a request that could not be parsed).
func (p *Proxy) startExchange(method, path string) *exchange {
	p.inflight.Add(1)
	return &exchange{p: p, start: p.now(), method: method, path: path}
}

// outbound is req addressed to the route's upstream, with its path and
// body as forward prepared them. A shallow copy, so that the client
// connection's settings (Close, RequestURI) stay the client's while the
// upstream connection is pooled.
func (x *exchange) outbound(req *http.Request, r *route, path string) *http.Request {
	body, length := x.body.upstream()
	x.url = *req.URL
	x.url.Scheme = r.scheme
	x.url.Host = r.host
	x.url.User = nil
	x.url.RawQuery = stripQueryCredentials(x.url.RawQuery)
	if path != x.url.Path {
		x.url.Path, x.url.RawPath = path, ""
	}
	x.out = *req
	x.out.URL = &x.url
	x.out.Host = r.host
	x.out.RequestURI = ""
	x.out.Body = body
	x.out.ContentLength = length
	// Trailers bypass header hygiene (a client can send Authorization or
	// AccessLicenseNumber as one): none is forwarded, in any mode.
	x.out.Trailer = nil
	if body == nil || length == 0 {
		x.out.Body = http.NoBody
	}
	// A client that closes its connection after each request (HTTP/1.0
	// software) must not make us close, and re-handshake, UPS's.
	x.out.Close = false
	return &x.out
}

// deliver prepares UPS's response for the client: unchanged but for the
// headers the client must not see.
func (x *exchange) deliver(resp *http.Response) *http.Response {
	cleanResponseHeaders(resp.Header)
	x.status = resp.StatusCode
	x.upstreamBody = resp.Body
	resp.Body = x
	return resp
}

// Read streams UPS's response body.
func (x *exchange) Read(b []byte) (int, error) {
	n, err := x.upstreamBody.Read(b)
	if err != nil && err != io.EOF && !x.readErr {
		// Logged with the access line: the client got a cut-off body
		// (and, from respond, a connection closed without the body's end).
		x.readErr = true
		if x.cause == nil {
			x.cause = &upstreamBodyError{err: err}
		}
	}
	return n, err
}

// upstreamBodyError is a failure to read UPS's response body after its
// headers were relayed: too late for an error response.
type upstreamBodyError struct{ err error }

func (e *upstreamBodyError) Error() string { return "read UPS response body: " + e.err.Error() }
func (e *upstreamBodyError) Unwrap() error { return e.err }

// Close ends the exchange; respond or the tunnel calls it once the body is
// copied (or the client went away).
func (x *exchange) Close() error {
	err := x.upstreamBody.Close()
	x.logAccess()
	return err
}

// fail answers the client with err, in UPS's envelope.
func (x *exchange) fail(req *http.Request, err error) *http.Response {
	e := clientError(err)
	x.status, x.errCode = e.status, e.code
	switch err.(type) {
	case *tokenError, *upstreamError, *clientBodyError:
		x.cause = err
	}
	if x.route != nil && (e.code == CodeNotLoggedIn || e.code == CodeRefreshTokenExpired) {
		x.login = x.route.errs.loginCommand
	}
	x.logAccess()
	resp := e.response(req)
	// A body left unread (or broken) cannot be skipped to the next
	// request: close, rather than wait for bytes the client may never send.
	resp.Close = x.body.open
	return resp
}

// failClose is fail for refusals that leave the client's body unread: the
// connection cannot carry another request.
func (x *exchange) failClose(req *http.Request, err error) *http.Response {
	resp := x.fail(req, err)
	resp.Close = true
	return resp
}

// logAccess writes the request's access log line and tells the Observer,
// once. It never logs header values, tokens or bodies.
func (x *exchange) logAccess() {
	if !x.logged.CompareAndSwap(false, true) {
		return
	}
	x.p.inflight.Add(-1)
	d := x.p.now().Sub(x.start)
	if x.p.observer != nil {
		var carrier string
		var env ups.Environment
		if x.route != nil {
			carrier, env = x.route.name, x.route.env
		}
		x.p.observer.ObserveRequest(carrier, env, x.status, x.errCode, d)
	}
	ce := x.p.log.Check(zap.InfoLevel, "request")
	if ce == nil {
		return
	}
	fb := accessFields.Get().(*fieldBuf)
	fields := fb[:0]
	if x.route != nil {
		fields = append(fields, zap.String("carrier", x.route.name), zap.String("environment", string(x.route.env)))
	}
	fields = append(fields,
		zap.String("method", x.method),
		zap.String("path", x.path),
		zap.Int("status", x.status),
		zap.Duration("duration", d),
	)
	if x.upstreamPath != "" {
		fields = append(fields, zap.String("upstream_path", x.upstreamPath))
	}
	if x.client != "" {
		fields = append(fields, zap.String("client", x.client))
	}
	if x.replayed {
		fields = append(fields, zap.Bool("replayed", true))
	}
	if x.authority != "" {
		fields = append(fields, zap.String("host", x.authority))
	}
	if x.transID != "" {
		fields = append(fields, zap.String("trans_id", x.transID))
	}
	if x.errCode != "" {
		fields = append(fields, zap.String("error_code", x.errCode))
	}
	if x.login != "" {
		fields = append(fields, zap.String("login_command", x.login))
	}
	if x.cause != nil {
		fields = append(fields, zap.Error(x.cause))
	}
	ce.Write(fields...)
	// zap's cores encode fields during Write and keep none of them (the
	// observer core of tests copies them), so the array can serve the next
	// line; cleared first, so that it holds no request's strings or error.
	clear(fb[:])
	accessFields.Put(fb)
}

// fieldBuf holds an access line's fields (at most 14 today; more would
// still work, in a slice of their own).
type fieldBuf [16]zap.Field

// accessFields recycles the access lines' field arrays: one fewer 1 KiB
// allocation per request at level info.
var accessFields = sync.Pool{New: func() any { return new(fieldBuf) }}
