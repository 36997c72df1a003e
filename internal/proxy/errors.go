package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"

	"github.com/upsproxy/upsproxy/internal/tokens"
	"github.com/upsproxy/upsproxy/internal/ups"
)

// Error codes the proxy answers with, in UPS's error envelope and in the
// X-Upsproxy-Error header. They are SPEC's contract: scripts match on them.
const (
	// CodeRefreshTokenExpired (401): the refresh token is past its expiry or
	// UPS rejected it; an admin must run `upsproxy login`.
	CodeRefreshTokenExpired = "UPSPROXY_REFRESH_TOKEN_EXPIRED"
	// CodeNotLoggedIn (401): no tokens are stored for the carrier/environment.
	CodeNotLoggedIn = "UPSPROXY_NOT_LOGGED_IN"
	// CodeProxyAuthRequired (407): client blocks exist and the proxy
	// credentials are missing or wrong.
	CodeProxyAuthRequired = "UPSPROXY_PROXY_AUTH_REQUIRED"
	// CodeNoCarrier (400): no carrier could be resolved for the request.
	CodeNoCarrier = "UPSPROXY_NO_CARRIER"
	// CodeCarrierInactive (403): the resolved carrier is marked inactive.
	CodeCarrierInactive = "UPSPROXY_CARRIER_INACTIVE"
	// CodeHostNotAllowed (403): the target is not a UPS API host; the proxy
	// is never an open proxy.
	CodeHostNotAllowed = "UPSPROXY_HOST_NOT_ALLOWED"
	// CodeEnvironmentMismatch (403): a request addressed to UPS's Test host
	// would go to Production, where real money is spent.
	CodeEnvironmentMismatch = "UPSPROXY_ENVIRONMENT_MISMATCH"
	// CodeTokenStoreUnavailable (503): Vault is unreachable or sealed and no
	// usable token is in memory.
	CodeTokenStoreUnavailable = "UPSPROXY_TOKEN_STORE_UNAVAILABLE"
	// CodeTokenRefreshFailed (502): UPS's token endpoint failed.
	CodeTokenRefreshFailed = "UPSPROXY_TOKEN_REFRESH_FAILED"
	// CodeUpstreamUnavailable (502, or 504 on timeout): UPS could not be
	// reached or did not answer in time.
	CodeUpstreamUnavailable = "UPSPROXY_UPSTREAM_UNAVAILABLE"
	// CodeRequestTooLarge (413): the request body is over the configured limit.
	CodeRequestTooLarge = "UPSPROXY_REQUEST_TOO_LARGE"
	// CodeClientNotAllowed (403): the client's source address is not in the
	// configuration's allow_cidrs. Not in SPEC's table: neither a forbidden
	// host nor missing credentials (which 407 would make the client retry
	// with), so it gets its own code and a message naming the address.
	CodeClientNotAllowed = "UPSPROXY_CLIENT_NOT_ALLOWED"
	// CodeMITMNotConfigured (403): a client asked for HTTPS proxying (CONNECT)
	// but the configuration has no mitm block, so the proxy cannot see (and
	// authorize) the requests inside the tunnel. Not in SPEC's table: it is
	// a configuration problem, distinct from a forbidden host.
	CodeMITMNotConfigured = "UPSPROXY_MITM_NOT_CONFIGURED"
	// CodeInvalidBody (400): the request body is not JSON the proxy can
	// check for legacy credentials and shipper numbers (malformed, or
	// nested or repeated beyond the scanner's limits). Not in SPEC's
	// table: the proxy refuses what it cannot classify rather than
	// forward it.
	CodeInvalidBody = "UPSPROXY_INVALID_BODY"
	// CodeMethodNotAllowed (405): the method is not one UPS APIs use
	// (TRACE would echo the bearer token, CONNECT inside a tunnel would
	// nest one); refused before anything is sent upstream.
	CodeMethodNotAllowed = "UPSPROXY_METHOD_NOT_ALLOWED"
	// CodeBadRequest (400, or 431 for headers over limits.max_header_bytes):
	// the request is not well-formed HTTP/1.1 (request line, headers,
	// chunked body framing). Nothing of it reaches UPS, or only an aborted
	// request UPS cannot act on.
	CodeBadRequest = "UPSPROXY_BAD_REQUEST"
	// CodeRequestTimeout (408): the client did not send its request in time
	// (limits.read_header_timeout, request_body_timeout and
	// request_body_min_rate); the connection is closed.
	CodeRequestTimeout = "UPSPROXY_REQUEST_TIMEOUT"
)

// Header names that are part of the proxy's contract with clients.
const (
	// ErrorHeader names the proxy as the source of an error response; UPS
	// can never set it (the proxy strips it from upstream responses).
	ErrorHeader = "X-Upsproxy-Error"
	// CarrierHeader lets a client pick a carrier by name.
	CarrierHeader = "X-Upsproxy-Carrier"
)

// statusFor is SPEC's table of error codes and HTTP statuses, in one place.
// CodeUpstreamUnavailable's 504 variant is chosen by upstreamTimeoutStatus.
func statusFor(code string) int {
	switch code {
	case CodeRefreshTokenExpired, CodeNotLoggedIn:
		return http.StatusUnauthorized
	case CodeProxyAuthRequired:
		return http.StatusProxyAuthRequired
	case CodeNoCarrier, CodeInvalidBody:
		return http.StatusBadRequest
	case CodeCarrierInactive, CodeHostNotAllowed, CodeEnvironmentMismatch, CodeMITMNotConfigured, CodeClientNotAllowed:
		return http.StatusForbidden
	case CodeTokenStoreUnavailable:
		return http.StatusServiceUnavailable
	case CodeTokenRefreshFailed, CodeUpstreamUnavailable:
		return http.StatusBadGateway
	case CodeRequestTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeBadRequest:
		return http.StatusBadRequest
	case CodeRequestTimeout:
		return http.StatusRequestTimeout
	}
	return http.StatusBadGateway
}

// Statuses of SPEC codes that have a second one besides statusFor's.
const (
	// upstreamTimeoutStatus: UPSPROXY_UPSTREAM_UNAVAILABLE when UPS did not
	// answer in time.
	upstreamTimeoutStatus = http.StatusGatewayTimeout
	// clientPinnedStatus: UPSPROXY_NO_CARRIER when the proxy user's client
	// block pins another carrier than the request names. The carrier
	// exists, the client may not use it: 403, not 400.
	clientPinnedStatus = http.StatusForbidden
	// headersTooLargeStatus: UPSPROXY_BAD_REQUEST when the request line and
	// headers exceed limits.max_header_bytes.
	headersTooLargeStatus = http.StatusRequestHeaderFieldsTooLarge
	// bearerRequiredStatus: UPSPROXY_PROXY_AUTH_REQUIRED for a base-URL
	// mode request that carries no credentials at all (errBearerRequired).
	bearerRequiredStatus = http.StatusUnauthorized
)

// proxyError is an answer the proxy gives itself instead of UPS's. Its body
// is rendered once, when it is built: most are built at start-up (per
// carrier), so a refused request costs no JSON encoding.
type proxyError struct {
	code    string
	status  int
	message string
	body    []byte
	// Header values, shared read-only by every response carrying this error.
	codeValue   []string
	lengthValue []string
	// authenticate, when set, is sent as Proxy-Authenticate (407 only).
	authenticate []string
	// wwwAuthenticate, when set, is sent as WWW-Authenticate (401 only).
	wwwAuthenticate []string
	// allow, when set, is sent as Allow (405 only).
	allow []string
}

func newProxyError(code, message string) *proxyError {
	return newProxyErrorStatus(code, statusFor(code), message)
}

func newProxyErrorStatus(code string, status int, message string) *proxyError {
	body := ups.EncodeEnvelope(code, message)
	return &proxyError{
		code:        code,
		status:      status,
		message:     message,
		body:        body,
		codeValue:   []string{code},
		lengthValue: []string{strconv.Itoa(len(body))},
	}
}

func (e *proxyError) Error() string { return e.code + ": " + e.message }

var jsonContentType = []string{"application/json"}

// response renders e for req. The header map is fresh on every call
// because the tunnel loop edits a response's framing; the values are shared
// (nobody appends to them in place).
func (e *proxyError) response(req *http.Request) *http.Response {
	h := make(http.Header, 4)
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = e.lengthValue
	h[ErrorHeader] = e.codeValue
	if e.authenticate != nil {
		h["Proxy-Authenticate"] = e.authenticate
	}
	if e.wwwAuthenticate != nil {
		h["Www-Authenticate"] = e.wwwAuthenticate
	}
	if e.allow != nil {
		h["Allow"] = e.allow
	}
	return &http.Response{
		StatusCode:    e.status,
		Status:        strconv.Itoa(e.status) + " " + http.StatusText(e.status),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(e.body)),
		ContentLength: int64(len(e.body)),
		Request:       req,
	}
}

// Errors that do not depend on the carrier.
var (
	errHostNotAllowed = newProxyError(CodeHostNotAllowed,
		"upsproxy only forwards requests for the UPS API hosts "+ups.TestHost+" and "+ups.ProductionHost+
			" (HTTPS on port 443, HTTP on port 80), or requests sent to the proxy itself as the UPS base URL.")
	errNoCarrier = newProxyError(CodeNoCarrier,
		"No UPS carrier could be resolved for this request: name one in the "+CarrierHeader+
			" header, or mark a carrier as default in the upsproxy configuration.")
	errMITMNotConfigured = newProxyError(CodeMITMNotConfigured,
		"HTTPS proxying (CONNECT) needs a mitm block (ca_cert, ca_key) in the upsproxy configuration. "+
			"Create a CA with `upsproxy ca init`, or set the client's UPS base URL to the proxy instead.")
	errCarrierHeaderTwice = newProxyError(CodeNoCarrier,
		"The request carries more than one "+CarrierHeader+" header, with different carriers: send one.")
	errForwardFailed = newProxyError(CodeUpstreamUnavailable,
		"upsproxy could not forward the request to UPS.")
	errProxyAuthMissing = withAuthenticate(newProxyError(CodeProxyAuthRequired,
		"This upsproxy requires proxy authentication: set the proxy user name and password of a client block "+
			"in your software's proxy settings (sent as Proxy-Authorization: Basic)."))
	errProxyAuthFailed = withAuthenticate(newProxyError(CodeProxyAuthRequired,
		"The proxy user name or password is wrong."))
	// errBearerRequired is UPSPROXY_PROXY_AUTH_REQUIRED for a base-URL mode
	// request with no credentials at all (see proxyUser): 401 with
	// WWW-Authenticate: Bearer, the answer that makes an OAuth client fetch
	// its token (many do so only after a 401), instead of a 407 such a
	// client does not understand, since it knows of no proxy.
	errBearerRequired = func() *proxyError {
		e := newProxyErrorStatus(CodeProxyAuthRequired, bearerRequiredStatus,
			"This upsproxy requires its clients to authenticate: fetch an OAuth token from /security/v1/oauth/token "+
				"with a client block's name and password as client id and secret, or send Proxy-Authorization: Basic.")
		e.wwwAuthenticate = []string{`Bearer realm="upsproxy"`}
		return e
	}()
)

// Refusals of malformed, slow or disallowed requests.
var (
	errMethodNotAllowed = func() *proxyError {
		e := newProxyError(CodeMethodNotAllowed,
			"upsproxy only forwards the methods UPS APIs use: "+allowedMethods+".")
		e.allow = []string{allowedMethods}
		return e
	}()
	errMalformedRequest = newProxyError(CodeBadRequest,
		"The request is not well-formed HTTP/1.1 (request line or headers); nothing was sent to UPS.")
	errMalformedBody = newProxyError(CodeBadRequest,
		"The request body could not be read: its chunked encoding is malformed or it ended early. "+
			"UPS got no complete request.")
	errHeadersTimeout = newProxyError(CodeRequestTimeout,
		"The request line and headers did not arrive within limits.read_header_timeout; nothing was sent to UPS.")
	errBodyTimeout = newProxyError(CodeRequestTimeout,
		"The request body did not arrive in time (limits.request_body_timeout, request_body_min_rate). "+
			"UPS got no complete request.")
)

// headersTooLargeError refuses a request whose line and headers exceed limit.
func headersTooLargeError(limit int) *proxyError {
	return newProxyErrorStatus(CodeBadRequest, headersTooLargeStatus, fmt.Sprintf(
		"The request line and headers exceed %d bytes (limits.max_header_bytes); nothing was sent to UPS.", limit))
}

// proxyAuthenticateValue is the Proxy-Authenticate header of the 407 answers.
var proxyAuthenticateValue = []string{`Basic realm="upsproxy"`}

func withAuthenticate(e *proxyError) *proxyError {
	e.authenticate = proxyAuthenticateValue
	return e
}

func clientNotAllowedError(addr string) *proxyError {
	return newProxyError(CodeClientNotAllowed, fmt.Sprintf(
		"Client address %s may not use this upsproxy (allow_cidrs).", clip(addr, maxEchoedName)))
}

// clientPinnedError refuses a request of a client pinned to a carrier that
// names another carrier (what says how: a header or a shipper number).
func clientPinnedError(cl *client, what string) *proxyError {
	return newProxyErrorStatus(CodeNoCarrier, clientPinnedStatus, fmt.Sprintf(
		"Proxy client %q may only use carrier %q, but %s.", cl.name, cl.pin.name, what))
}

// carrierConflictError refuses a request whose carrier sources disagree.
func carrierConflictError(what string) *proxyError {
	return newProxyError(CodeNoCarrier, "The request names more than one UPS carrier: "+what+
		". Send one carrier's shipper numbers, or drop the "+CarrierHeader+" header.")
}

// scanFaultError tells the client why the body scanner refused its body;
// at is the offset of the byte where it stopped (scan.go).
func scanFaultError(f scanFault, at int, limit int64) *proxyError {
	switch f {
	case faultSecurity:
		return newProxyError(CodeRequestTooLarge, fmt.Sprintf(
			"The request body carries a legacy UPSSecurity element that upsproxy cannot remove: it does not lie within "+
				"the first %d bytes (limits.body_scan_limit), or there are more than %d of them. upsproxy never forwards "+
				"UPS credentials; remove UPSSecurity from the request.", limit, maxSecuritySpans))
	case faultDepth:
		return newProxyError(CodeInvalidBody, fmt.Sprintf(
			"The request body nests JSON deeper than %d levels (at byte %d); upsproxy forwards only bodies it can check.",
			maxScanDepth, at))
	case faultNumbers:
		return newProxyError(CodeInvalidBody, fmt.Sprintf(
			"The request body names more than %d shipper numbers (at byte %d); upsproxy forwards only bodies it can check.",
			maxScanNumbers, at))
	}
	return newProxyError(CodeInvalidBody, fmt.Sprintf(
		"The request body is not valid JSON (at byte %d). upsproxy forwards only JSON bodies, which it checks for "+
			"legacy credentials; fix the request.", at))
}

// lateShipperError refuses a body whose shipper number of another carrier
// came after the prefix the carrier was chosen from.
func lateShipperError(number, owner, chosen string, limit int64) *proxyError {
	return newProxyError(CodeRequestTooLarge, fmt.Sprintf(
		"Shipper number %q of carrier %q appears after the first %d bytes of the body (limits.body_scan_limit), "+
			"when upsproxy had already chosen carrier %q; the request was stopped before it reached UPS. "+
			"Put the Shipper first in the body, or raise body_scan_limit.", number, owner, limit, chosen))
}

// echoNumber bounds a client-sent shipper number in a message.
func echoNumber(b []byte) string { return clip(string(b), maxShipperNumberLen) }

// maxEchoedName bounds how much of a client-sent carrier name is echoed
// back, so the error body stays small whatever the client sends.
const maxEchoedName = 64

func unknownCarrierError(name string) *proxyError {
	if len(name) > maxEchoedName {
		name = name[:maxEchoedName] + "..."
	}
	return newProxyError(CodeNoCarrier, fmt.Sprintf(
		"No UPS carrier named %q is configured in upsproxy (from the %s header).", name, CarrierHeader))
}

// routeErrors are a carrier's refusals, rendered once when routing is built.
type routeErrors struct {
	inactive, mismatch                           *proxyError
	notLoggedIn, storeUnavailable, refreshFailed *proxyError
	upstreamUnavailable, upstreamTimeout         *proxyError
	loginCommand                                 string
}

func newRouteErrors(name string, env ups.Environment, upstreamHost string) routeErrors {
	login := tokens.LoginCommand(name, env)
	return routeErrors{
		loginCommand: login,
		inactive: newProxyError(CodeCarrierInactive, fmt.Sprintf(
			"The UPS carrier %q is marked inactive in the upsproxy configuration; its requests are refused.", name)),
		mismatch: newProxyError(CodeEnvironmentMismatch, fmt.Sprintf(
			"The request addressed UPS's test host %s, but carrier %q is a production carrier: "+
				"upsproxy refuses to send a test request to production. Use a test carrier or the production host %s.",
			ups.TestHost, name, ups.ProductionHost)),
		notLoggedIn: newProxyError(CodeNotLoggedIn, fmt.Sprintf(
			"No UPS tokens are stored for carrier %q (%s). An admin must run: %s", name, env, login)),
		storeUnavailable: newProxyError(CodeTokenStoreUnavailable, fmt.Sprintf(
			"The token store (Vault) is unavailable and no usable UPS token for carrier %q (%s) is in memory. Try again later.",
			name, env)),
		refreshFailed: newProxyError(CodeTokenRefreshFailed, fmt.Sprintf(
			"UPS's token endpoint failed while refreshing the token of carrier %q (%s). Try again later.", name, env)),
		upstreamUnavailable: newProxyError(CodeUpstreamUnavailable, fmt.Sprintf(
			"upsproxy could not reach UPS (%s, %s).", env, upstreamHost)),
		upstreamTimeout: newProxyErrorStatus(CodeUpstreamUnavailable, upstreamTimeoutStatus, fmt.Sprintf(
			"UPS (%s, %s) did not answer in time.", env, upstreamHost)),
	}
}

// tokenError is a failure of the TokenSource for a route.
type tokenError struct {
	route *route
	err   error
}

func (e *tokenError) Error() string { return "token for " + e.route.name + ": " + e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// upstreamError is a failure to get a response from UPS.
type upstreamError struct {
	route *route
	err   error
}

func (e *upstreamError) Error() string { return "forward to " + e.route.host + ": " + e.err.Error() }
func (e *upstreamError) Unwrap() error { return e.err }

// clientError decides what the client is told about err. It is the only
// place that maps failures of the request path to codes and statuses.
func clientError(err error) *proxyError {
	var pe *proxyError
	if errors.As(err, &pe) {
		return pe
	}
	var te *tokenError
	if errors.As(err, &te) {
		var expired *tokens.RefreshExpiredError
		switch TokenErrorCode(te.err) {
		case CodeRefreshTokenExpired:
			// Its text is SPEC's message, naming the login to run.
			errors.As(te.err, &expired)
			return newProxyError(CodeRefreshTokenExpired, expired.Error())
		case CodeNotLoggedIn:
			return te.route.errs.notLoggedIn
		case CodeTokenRefreshFailed:
			return te.route.errs.refreshFailed
		default:
			return te.route.errs.storeUnavailable
		}
	}
	var be *clientBodyError
	if errors.As(err, &be) {
		if isTimeout(be.err) {
			return errBodyTimeout
		}
		return errMalformedBody
	}
	var ue *upstreamError
	if errors.As(err, &ue) {
		if isTimeout(ue.err) {
			return ue.route.errs.upstreamTimeout
		}
		return ue.route.errs.upstreamUnavailable
	}
	return errForwardFailed
}

// TokenErrorCode is the code a client gets for an error of the token
// broker ("" for nil): clientError's own table, exported so that /status
// and the broker's logs name the same code (cmd injects it as
// tokens.Options.ErrorCode; tokens cannot import proxy).
func TokenErrorCode(err error) string {
	var expired *tokens.RefreshExpiredError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &expired):
		return CodeRefreshTokenExpired
	case errors.Is(err, tokens.ErrNotLoggedIn):
		return CodeNotLoggedIn
	case errors.Is(err, tokens.ErrRefreshFailed):
		return CodeTokenRefreshFailed
	}
	// ErrStoreUnavailable, and anything a TokenSource should not have
	// returned: either way no token can be had right now.
	return CodeTokenStoreUnavailable
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
