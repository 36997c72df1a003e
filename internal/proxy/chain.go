package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// chain is the request path, the same for all three modes: serveHTTP runs
// it for origin-form and absolute-form requests, serveTunnel for requests
// decrypted from a CONNECT tunnel, whose via is the *tunnel (nil
// otherwise). rd is the client's connection, for the body's read deadlines
// (nil: none). It sends the request upstream itself and returns the
// response for the client. Every step reads the one configuration loaded
// here.
func (p *Proxy) chain(req *http.Request, via *tunnel, rd readDeadliner) *http.Response {
	x := p.newExchange(req)
	rt := p.routing.Load()
	body := req.Body
	hasBody := body != nil && body != http.NoBody && req.ContentLength != 0
	// Until the body is read to its end, a refusal closes the connection:
	// it is answered at once, never after waiting for a body it ignores.
	x.bodyOpen = hasBody

	// 0. Only the methods UPS APIs use: TRACE would echo the bearer token
	// back, CONNECT inside a tunnel would open another one.
	if !allowedMethod(req.Method) {
		return x.fail(req, errMethodNotAllowed)
	}

	// 1. Did the client address UPS (or the proxy itself, in base-URL mode)?
	addressed, tun, err := addressedEnvironment(req, via)
	if err != nil {
		return x.fail(req, err)
	}
	if hasHeader(req.Header, transIDHeader) {
		x.transID = clip(req.Header[transIDHeader][0], maxLoggedTransID)
	}
	// UPS's OAuth paths are answered by the proxy itself; a bearer it
	// issued is checked (oauthendpoint.go).
	if isOAuthPath(x.path) {
		return p.serveOAuth(x, req, rt, rd)
	}
	tok, err := p.presentedToken(req.Header)
	if err != nil {
		return x.fail(req, err)
	}

	// 2. Who is asking? With client blocks, proxy credentials are required.
	var cl *client
	if rt.clients != nil {
		auth := ""
		if v := req.Header["Proxy-Authorization"]; len(v) > 0 {
			auth = v[0]
		} else if tun != nil {
			auth = tun.auth
		}
		if cl, err = rt.identify(req.Context(), auth, tok); err != nil {
			return x.fail(req, err)
		}
		x.client = cl.name
	}

	// 3. A body over the limit is refused before anything is read or dialled.
	if req.ContentLength > rt.maxBody {
		return x.failClose(req, rt.errTooLarge)
	}
	if hasBody {
		x.reqBody = clientBody{rc: body, left: -1, exceeded: &x.tooLarge,
			conn: rd, grace: p.limits.BodyTimeout, rate: p.limits.BodyMinRate}
		if req.ContentLength < 0 {
			x.reqBody.left = rt.maxBody
		}
		body = &x.reqBody
	}

	// 4. Legacy URL shapes become today's /api/ paths.
	tr := rt.translate(x.path)

	// 5. Which carrier? The client's pin, the header or its OAuth token
	// come first, then the shipper numbers of the body.
	pin, err := rt.pinnedWithToken(cl, tok, req.Header)
	if err != nil {
		return x.fail(req, err)
	}
	replay := replayable(req.Method, tr.path)
	// Every body is scanned, whatever the path, method, Content-Type or
	// configuration: any JSON body could carry UPSSecurity or another
	// carrier's shipper number, and whatever the scanner cannot classify
	// is refused before anything is sent (scan.go).
	var (
		prefix []byte // the body's first bytes, read
		whole  bool   // prefix is all of it
	)
	res := &noBody
	if hasBody {
		prefix, whole, err = readPrefix(body, req.ContentLength, rt.scanLimit)
		if err != nil {
			if x.tooLarge.Load() {
				return x.failClose(req, rt.errTooLarge)
			}
			return x.fail(req, &clientBodyError{err: err})
		}
		x.bodyOpen = !whole
		if whole && len(prefix) == 0 {
			// A chunked body with no bytes at all.
			hasBody, body, req.ContentLength = false, http.NoBody, 0
		} else {
			// Allocated here, not in the exchange: requests without a
			// body (Track) do not pay for it.
			sc := new(scanner)
			sc.reset()
			x.scan = sc
			res = &sc.r
			sc.feed(prefix)
			if whole {
				sc.finish()
			} else {
				sc.endPrefix()
			}
			if sc.fault != faultNone {
				e := scanFaultError(sc.fault, sc.faultAt, rt.scanLimit)
				if !whole {
					return x.failClose(req, e)
				}
				return x.fail(req, e)
			}
		}
	}
	r, err := rt.resolve(cl, pin, req.Header, prefix, res)
	if err != nil {
		return x.fail(req, err)
	}
	x.route = r
	if r.inactive {
		return x.fail(req, r.errs.inactive)
	}

	// 6. The carrier's environment picks the UPS host; never let a request
	// meant for Test spend real money in Production.
	switch {
	case addressed == ups.Test && r.env == ups.Production:
		return x.fail(req, r.errs.mismatch)
	case addressed == ups.Production && r.env == ups.Test:
		if ce := p.log.Check(zap.DebugLevel, "production host addressed, carrier is a test carrier: sending to test"); ce != nil {
			ce.Write(zap.String("carrier", r.name), zap.String("path", x.path))
		}
	}

	// 7. The body: cut out UPSSecurity, fill a missing shipper number.
	path := tr.path
	length := req.ContentLength
	if hasBody {
		if tr.rateFromBody {
			op := ""
			if res.requestOptionFound {
				op = string(res.requestOption.value(prefix))
			}
			path = "/api/rating/v1/" + rateOperation(op)
		}
		if edited := editBody(prefix, res, r); edited != nil {
			if length >= 0 {
				length += int64(len(edited) - len(prefix))
			}
			prefix = edited
		}
		if whole {
			// All of it is in memory. Handed over as a NopCloser'd
			// bytes.Reader, net/http knows and writes the request's
			// headers and body in one go; any other body has the headers
			// flushed first (one more syscall and packet per request),
			// in case it blocks.
			length = int64(len(prefix))
			x.body.Reset(prefix)
			body = io.NopCloser(&x.body)
		} else {
			// The rest is scanned as it streams: a fault cuts the request
			// off before the refused bytes, so UPS never gets it whole.
			rest := &scannedBody{rc: body, x: x, left: -1, rt: rt, route: r, pin: pin, cl: cl}
			x.scan.check = rest
			if req.ContentLength >= 0 {
				rest.left = req.ContentLength - int64(x.scan.off)
			}
			pb := &prefixBody{rest: rest}
			pb.r.Reset(prefix)
			body = pb
		}
	}
	if path != x.path {
		x.upstreamPath = path
		if ce := p.log.Check(zap.DebugLevel, "legacy path translated"); ce != nil {
			ce.Write(zap.String("path", x.path), zap.String("upstream_path", path), zap.String("rule", tr.rule))
		}
	}

	// 8. Header hygiene, then the carrier's token and UPS's transaction headers.
	stripRequestHeaders(req.Header)
	token, err := p.tokens.Token(req.Context(), r.name, r.env)
	if err != nil {
		return x.fail(req, &tokenError{route: r, err: err})
	}
	req.Header[authorizationHeader] = r.authorization(token)
	if x.transID == "" {
		x.transID = newTransID()
		x.transIDValue[0] = x.transID
		req.Header[transIDHeader] = x.transIDValue[:]
	}
	if !hasHeader(req.Header, transactionSrcHeader) {
		req.Header[transactionSrcHeader] = rt.transactionSrc
	}

	// 9. Forward, streaming both bodies; replay once if UPS refused a token
	// it should have accepted and the operation is safe to repeat.
	out := x.outbound(req, r, path, body, length)
	// The transport reads the client's body while the response may
	// already be coming back (see respond).
	x.liveBody = hasBody && !whole
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		if x.tooLarge.Load() {
			return x.failClose(req, rt.errTooLarge)
		}
		if be := x.reqBody.failed.Load(); be != nil {
			// The client's body broke (malformed chunking, a stall): the
			// transport aborted the upstream request midway, so UPS got
			// no complete request, and the fault is the client's.
			return x.fail(req, be)
		}
		if e := x.bodyFault.Load(); e != nil {
			// The scanner refused the rest of the body as it streamed:
			// the upstream request was aborted before the offending bytes.
			return x.failClose(req, e)
		}
		return x.fail(req, &upstreamError{route: r, err: err})
	}
	if replay && resp.StatusCode == http.StatusUnauthorized && (!hasBody || whole) {
		if resp, err = p.replay(x, r, token, resp, prefix); err != nil {
			return x.fail(req, err)
		}
	}
	return x.deliver(resp)
}

// addressedEnvironment checks the request's target against the allow-list
// and tells which UPS environment the client addressed ("" in base-URL
// mode), and the CONNECT tunnel it came through, if any.
func addressedEnvironment(req *http.Request, tun *tunnel) (ups.Environment, *tunnel, error) {
	t := requestTarget(req.URL)
	if t == nil {
		return "", nil, errHostNotAllowed
	}
	var in *target
	if tun != nil {
		in = tun.target
	}
	if in != nil {
		// Decrypted from a CONNECT tunnel: the URL's host comes from the
		// inner Host header, which must name UPS too. If either names the
		// Test host, the client meant Test.
		if t == baseURLTarget {
			return "", nil, errHostNotAllowed
		}
		if in.env == ups.Test {
			return ups.Test, tun, nil
		}
		return t.env, tun, nil
	}
	if t == baseURLTarget {
		// Base-URL mode addresses no particular host, unless the client
		// sent the Test host's name as Host (hosts-file redirection): then
		// it believes it talks to Test, and the mismatch guard must hold.
		if lookupUPSHost(hostname(req.Host)) == testTarget {
			return ups.Test, nil, nil
		}
		return "", nil, nil
	}
	return t.env, nil, nil
}

// noBody is the scan result of a request without a body (read only).
var noBody = scanResult{shipperOpen: -1}

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
// is also the body of the response the chain returns, so that the log line
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
	liveBody     bool        // the upstream request streams the client's body
	bodyOpen     bool        // the client's body may hold unread bytes
	readErr      bool        // reading UPS's response body failed midway
	tooLarge     atomic.Bool // set by clientBody
	// The body scanner (nil without a body), and the refusal of the rest
	// of a body streamed past the prefix (scannedBody).
	scan      *scanner
	bodyFault atomic.Pointer[proxyError]

	upstreamBody io.ReadCloser
	logged       atomic.Bool

	out          http.Request
	url          url.URL
	body         bytes.Reader // the request body sent upstream, when read whole
	reqBody      clientBody   // the client's body, paced and checked
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
// body as the chain prepared them. A shallow copy, so that the client
// connection's settings (Close, RequestURI) stay the client's while the
// upstream connection is pooled.
func (x *exchange) outbound(req *http.Request, r *route, path string, body io.ReadCloser, length int64) *http.Request {
	x.url = *req.URL
	x.url.Scheme = r.scheme
	x.url.Host = r.host
	x.url.User = nil
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
	resp.Close = x.bodyOpen
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
