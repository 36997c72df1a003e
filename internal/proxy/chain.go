package proxy

import (
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"
	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// handle is the request path, the same for all three modes (goproxy calls
// it for absolute-form requests, for requests decrypted from a CONNECT
// tunnel, and for origin-form requests via serveOriginForm). It sends the
// request upstream itself and returns the response, so goproxy's own
// forwarding (and its TLS-skipping transport) is never used.
func (p *Proxy) handle(req *http.Request, pctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
	x := p.newExchange(req)

	// 1. Did the client address UPS (or the proxy itself, in base-URL mode)?
	addressed, err := addressedEnvironment(req, pctx)
	if err != nil {
		return req, x.fail(req, err)
	}

	// 2. Which carrier?
	r, err := p.routing.Load().resolve(req.Header)
	if err != nil {
		return req, x.fail(req, err)
	}
	x.route = r
	if r.inactive {
		return req, x.fail(req, r.errs.inactive)
	}

	// 3. The carrier's environment picks the UPS host; never let a request
	// meant for Test spend real money in Production.
	switch {
	case addressed == ups.Test && r.env == ups.Production:
		return req, x.fail(req, r.errs.mismatch)
	case addressed == ups.Production && r.env == ups.Test:
		if ce := p.log.Check(zap.DebugLevel, "production host addressed, carrier is a test carrier: sending to test"); ce != nil {
			ce.Write(zap.String("carrier", r.name), zap.String("path", x.path))
		}
	}

	// 4. Header hygiene, then the carrier's token and UPS's transaction headers.
	stripRequestHeaders(req.Header)
	token, err := p.tokens.Token(req.Context(), r.name, r.env)
	if err != nil {
		return req, x.fail(req, &tokenError{route: r, err: err})
	}
	req.Header[authorizationHeader] = r.authorization(token)
	if hasHeader(req.Header, transIDHeader) {
		x.transID = clip(req.Header[transIDHeader][0], maxLoggedTransID)
	} else {
		x.transID = newTransID()
		x.transIDValue[0] = x.transID
		req.Header[transIDHeader] = x.transIDValue[:]
	}
	if !hasHeader(req.Header, transactionSrcHeader) {
		req.Header[transactionSrcHeader] = p.transactionSrc
	}

	// 5. Forward, streaming both bodies.
	resp, err := p.transport.RoundTrip(x.outbound(req, r))
	if err != nil {
		return req, x.fail(req, &upstreamError{route: r, err: err})
	}
	return req, x.deliver(resp)
}

// addressedEnvironment checks the request's target against the allow-list
// and tells which UPS environment the client addressed ("" in base-URL mode).
func addressedEnvironment(req *http.Request, pctx *goproxy.ProxyCtx) (ups.Environment, error) {
	t := requestTarget(req.URL)
	if t == nil {
		return "", errHostNotAllowed
	}
	tunnel, inTunnel := pctx.UserData.(*target)
	if inTunnel && tunnel != nil {
		// Decrypted from a CONNECT tunnel: the URL's host comes from the
		// inner Host header, which must name UPS too. If either names the
		// Test host, the client meant Test.
		if t == baseURLTarget {
			return "", errHostNotAllowed
		}
		if tunnel.env == ups.Test {
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

// maxLoggedTransID bounds a client-sent transId in the log (UPS allows 32).
const maxLoggedTransID = 64

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// exchange is one request's state, from arrival to the access log line. It
// is also the response body handed to goproxy, so that the log line is
// written when the body has been streamed (goproxy always closes it). One
// allocation holds the outbound request and URL too.
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

	upstreamBody io.ReadCloser
	logged       atomic.Bool

	out          http.Request
	url          url.URL
	transIDValue [1]string
}

func (p *Proxy) newExchange(req *http.Request) *exchange {
	x := &exchange{p: p, start: p.now(), method: req.Method}
	if req.URL != nil {
		x.path = req.URL.Path
	}
	return x
}

// outbound is req addressed to the route's upstream. A shallow copy, so
// that the client connection's settings (Close, RequestURI) stay goproxy's
// while the upstream connection is pooled.
func (x *exchange) outbound(req *http.Request, r *route) *http.Request {
	x.url = *req.URL
	x.url.Scheme = r.scheme
	x.url.Host = r.host
	x.url.User = nil
	x.out = *req
	x.out.URL = &x.url
	x.out.Host = r.host
	x.out.RequestURI = ""
	// A client that closes its connection after each request (HTTP/1.0
	// software) must not make us close, and re-handshake, UPS's.
	x.out.Close = false
	return &x.out
}

// deliver prepares UPS's response for the client: unchanged but for the
// headers the client must not see.
func (x *exchange) deliver(resp *http.Response) *http.Response {
	cleanResponseHeaders(resp.Header)
	if resp.ContentLength < 0 && x.method != http.MethodHead && bodyAllowed(resp.StatusCode) {
		// UPS streams a body of unknown length. goproxy flushes each write
		// to a plain-HTTP client only when it sees this header (the value
		// net/http keeps in resp.TransferEncoding instead); without it the
		// first bytes wait in the server's buffer. net/http's server and
		// Response.Write both frame the body themselves and never send the
		// header twice.
		resp.Header["Transfer-Encoding"] = chunkedValue
	}
	x.status = resp.StatusCode
	x.upstreamBody = resp.Body
	resp.Body = x
	return resp
}

// Read streams UPS's response body.
func (x *exchange) Read(b []byte) (int, error) { return x.upstreamBody.Read(b) }

// Close ends the exchange; goproxy calls it once the body is copied (or
// the client went away).
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
	case *tokenError, *upstreamError:
		x.cause = err
	}
	if x.route != nil && (e.code == CodeNotLoggedIn || e.code == CodeRefreshTokenExpired) {
		x.login = x.route.errs.loginCommand
	}
	x.logAccess()
	return e.response(req)
}

// logAccess writes the request's access log line, once. It never logs
// header values, tokens or bodies.
func (x *exchange) logAccess() {
	if !x.logged.CompareAndSwap(false, true) {
		return
	}
	ce := x.p.log.Check(zap.InfoLevel, "request")
	if ce == nil {
		return
	}
	fields := make([]zap.Field, 0, 11)
	if x.route != nil {
		fields = append(fields, zap.String("carrier", x.route.name), zap.String("environment", string(x.route.env)))
	}
	fields = append(fields,
		zap.String("method", x.method),
		zap.String("path", x.path),
		zap.Int("status", x.status),
		zap.Duration("duration", x.p.now().Sub(x.start)),
	)
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
}

var chunkedValue = []string{"chunked"}

// bodyAllowed reports whether a response with status may have a body
// (RFC 9110: not 1xx, 204 or 304).
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}
