package proxy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/clienttoken"
	"github.com/upsproxy/upsproxy/internal/ups"
)

// upsproxy is the OAuth token endpoint of its clients. Software written for
// UPS's OAuth asks /security/v1/oauth/token (or /refresh, or the authorize
// page) for its own token with its own client id and secret. Forwarded,
// that request would carry the carrier's bearer instead of the client's
// Basic credentials and fail, and the real UPS tokens must never leave the
// proxy anyway. So no request under /security/v1/oauth/ is ever forwarded:
// the proxy answers it in UPS's token format with a token it signed
// (internal/clienttoken), and replaces that bearer with the carrier's real
// token on every API call, as it replaces any other.
//
// With client blocks, the token request's client id and secret are a client
// block's name and password (checked like proxy credentials, bcrypt with
// the same bounded cache), and the token then counts as proxy
// authentication: base-URL mode clients cannot send Proxy-Authorization.
// Without client blocks the token is a placeholder that grants nothing.
//
// Answering never touches Vault or UPS (the signing key is loaded once), so
// a client that loops on its token request costs an HMAC per request.

// OAuth paths, compared case-insensitively.
const (
	oauthPrefix        = "/security/v1/oauth/"
	oauthTokenPath     = oauthPrefix + "token"
	oauthRefreshPath   = oauthPrefix + "refresh"
	oauthAuthorizePath = oauthPrefix + "authorize"
)

// Lifetimes of the tokens the proxy issues. The access token lives as long
// as UPS's (UPS answers expires_in "14399" for its four hours); the refresh
// token as long as UPS's longest (60 days).
const (
	clientAccessTTL  = 4 * time.Hour
	clientRefreshTTL = 60 * 24 * time.Hour
	clientCodeTTL    = 5 * time.Minute
)

// maxOAuthForm bounds a token request's body. UPS's forms are a few
// hundred bytes.
const maxOAuthForm = 16 << 10

// maxOAuthClientID bounds a token request's client id (UPS's are 48
// characters; a client block's name is a short proxy user name).
const maxOAuthClientID = 256

// Error codes of the token endpoint and of presented proxy tokens, in the
// X-Upsproxy-Error header. The body is UPS's own error for the same
// mistake (10400, 10401, 250002), so the client's error handling works.
const (
	// CodeOAuthInvalidClient (401): the token request's client id or
	// secret matches no client block, or is missing.
	CodeOAuthInvalidClient = "UPSPROXY_OAUTH_INVALID_CLIENT"
	// CodeOAuthInvalidRequest (400, 401, 404, 405): a token request UPS
	// would refuse too (grant, method, code, refresh token, redirect URI).
	CodeOAuthInvalidRequest = "UPSPROXY_OAUTH_INVALID_REQUEST"
	// CodeOAuthInvalidToken (401): the bearer is an upsproxy token that is
	// expired, tampered with, signed with another key or issued to another
	// client. The client fetches a new one, as it would from UPS.
	CodeOAuthInvalidToken = "UPSPROXY_OAUTH_INVALID_TOKEN"
)

// upsShapedError is an answer of the proxy in UPS's envelope with UPS's
// code for the same mistake; the X-Upsproxy-Error header still names the
// proxy (code) as its source.
func upsShapedError(status int, code, upsCode, message string) *proxyError {
	e := newProxyErrorStatus(code, status, message)
	e.body = ups.EncodeEnvelope(upsCode, message)
	e.lengthValue = []string{strconv.Itoa(len(e.body))}
	return e
}

// UPS's codes and messages, as the simulator answers them too.
var (
	errOAuthMissingAuth = upsShapedError(http.StatusUnauthorized, CodeOAuthInvalidClient, ups.CodeInvalidRequest,
		ups.MsgMissingAuthHeader)
	errOAuthInvalidClient = upsShapedError(http.StatusUnauthorized, CodeOAuthInvalidClient, ups.CodeInvalidClient,
		ups.MsgInvalidClient)
	errOAuthBadRefresh = upsShapedError(http.StatusUnauthorized, CodeOAuthInvalidRequest, ups.CodeInvalidRequest,
		ups.MsgInvalidRefreshToken)
	errOAuthBadCode = upsShapedError(http.StatusBadRequest, CodeOAuthInvalidRequest, ups.CodeInvalidRequest,
		ups.MsgInvalidCode)
	errOAuthBadRedirect = upsShapedError(http.StatusBadRequest, CodeOAuthInvalidRequest, ups.CodeInvalidRequest,
		ups.MsgInvalidRedirect)
	errOAuthPostOnly = upsShapedError(http.StatusMethodNotAllowed, CodeOAuthInvalidRequest, "405", "Method not allowed")
	errOAuthGetOnly  = upsShapedError(http.StatusMethodNotAllowed, CodeOAuthInvalidRequest, "405", "Method not allowed")
	errOAuthNotFound = upsShapedError(http.StatusNotFound, CodeOAuthInvalidRequest, "404",
		"upsproxy answers UPS's OAuth paths itself and knows only /security/v1/oauth/token, /refresh and /authorize.")
	errOAuthInvalidToken = upsShapedError(http.StatusUnauthorized, CodeOAuthInvalidToken, ups.CodeInvalidAuth,
		ups.MsgInvalidAuth)
	errOAuthNoKey = newProxyError(CodeTokenStoreUnavailable,
		"upsproxy has not loaded the key that signs its clients' OAuth tokens from Vault yet. Try again later.")
)

func oauthBadRequest(message string) *proxyError {
	return upsShapedError(http.StatusBadRequest, CodeOAuthInvalidRequest, ups.CodeInvalidRequest, message)
}

// isOAuthPath reports whether path is under UPS's OAuth prefix.
func isOAuthPath(path string) bool { return hasPrefixFold(path, oauthPrefix) }

// SetClientTokenSigner gives the proxy the key its clients' tokens are
// signed with (serve loads it from Vault). Until it is set, token requests
// and requests bearing a proxy token get UPSPROXY_TOKEN_STORE_UNAVAILABLE.
func (p *Proxy) SetClientTokenSigner(s *clienttoken.Signer) { p.signer.Store(s) }

// serveOAuth answers a request for one of UPS's OAuth paths.
// rd is the client's connection, for the body's read deadlines (nil: none).
func (p *Proxy) serveOAuth(x *exchange, req *http.Request, rt *routing, rd readDeadliner) *http.Response {
	signer := p.signer.Load()
	path := strings.TrimSuffix(x.path, "/")
	switch {
	case strings.EqualFold(path, oauthAuthorizePath):
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			return x.fail(req, errOAuthGetOnly)
		}
	case strings.EqualFold(path, oauthTokenPath), strings.EqualFold(path, oauthRefreshPath):
		if req.Method != http.MethodPost {
			return x.fail(req, errOAuthPostOnly)
		}
	default:
		return x.fail(req, errOAuthNotFound)
	}
	if signer == nil {
		return x.fail(req, errOAuthNoKey)
	}
	if strings.EqualFold(path, oauthAuthorizePath) {
		return p.authorize(x, req, rt, signer)
	}

	form, err := p.readOAuthForm(x, req, rd)
	if err != nil {
		return x.failClose(req, err)
	}
	grant := form.Get("grant_type")
	switch {
	case grant == "":
		return x.fail(req, oauthBadRequest("Missing grant_type"))
	case strings.EqualFold(path, oauthRefreshPath) && grant != "refresh_token":
		return x.fail(req, oauthBadRequest("Invalid grant_type: expected refresh_token"))
	case grant != ups.GrantClientCredentials && grant != ups.GrantAuthorizationCode && grant != "refresh_token":
		return x.fail(req, oauthBadRequest("Unsupported grant_type"))
	}

	id, err := rt.oauthClient(req.Context(), req.Header, form)
	if err != nil {
		return x.fail(req, err)
	}
	x.client = id.name
	now := p.now()
	claims := clienttoken.Claims{Authenticated: id.cl != nil, Client: id.name}
	switch grant {
	case ups.GrantClientCredentials:
		claims.Carrier, err = rt.oauthCarrier(id, req.Header)
	case ups.GrantAuthorizationCode:
		claims.Carrier, err = rt.redeemCode(id, req.Header, form, signer, now)
	case "refresh_token":
		claims.Carrier, err = rt.redeemRefresh(id, form.Get("refresh_token"), signer, now)
	}
	if err != nil {
		return x.fail(req, err)
	}
	body, err := issuePair(signer, claims, grant != ups.GrantClientCredentials, form.Get("scope"), now)
	if err != nil {
		p.log.Error("issue client token", zap.Error(err))
		return x.fail(req, err)
	}
	if ce := p.log.Check(zap.DebugLevel, "client token issued"); ce != nil {
		ce.Write(zap.String("grant_type", grant), zap.String("client_id", clip(id.name, maxEchoedName)),
			zap.Bool("authenticated", claims.Authenticated), zap.String("carrier", claims.Carrier))
	}
	return x.answer(req, http.StatusOK, body, nil)
}

// readOAuthForm reads a token request's form body (at most maxOAuthForm
// bytes, paced like any request body). UPS's parameters never repeat; a
// repeated one is refused, since which copy wins is exactly the ambiguity a
// client bug hides behind.
func (p *Proxy) readOAuthForm(x *exchange, req *http.Request, rd readDeadliner) (url.Values, error) {
	if req.Body == nil || req.Body == http.NoBody || req.ContentLength == 0 {
		return url.Values{}, nil
	}
	tooLarge := oauthBadRequest(fmt.Sprintf("The token request body is larger than %d bytes.", maxOAuthForm))
	if req.ContentLength > maxOAuthForm {
		return nil, tooLarge
	}
	x.body.client = clientBody{rc: req.Body, left: maxOAuthForm, conn: rd, lim: &p.limits}
	b, err := io.ReadAll(&x.body.client)
	switch {
	case x.body.client.tooLarge.Load():
		return nil, tooLarge
	case err != nil:
		return nil, &clientBodyError{err: err}
	}
	x.body.open = false
	form, err := url.ParseQuery(string(b))
	if err != nil {
		return nil, oauthBadRequest("Malformed form body")
	}
	for k, v := range form {
		if len(v) > 1 {
			return nil, oauthBadRequest("Repeated parameter " + strconv.Quote(clip(k, maxEchoedName)))
		}
	}
	return form, nil
}

// oauthIdentity is who a token request says it is.
type oauthIdentity struct {
	name string  // the client id (a client block's name when cl is set)
	cl   *client // the authenticated client block; nil without client blocks
}

// oauthClient finds the client of a token request: Basic credentials in
// Authorization, or client_id and client_secret in the form. With client
// blocks they must match one (bcrypt, cached like proxy credentials);
// without, the client id is taken as said (it can only pick a carrier
// through client_ids, which the client could do with X-Upsproxy-Carrier
// anyway).
func (rt *routing) oauthClient(ctx context.Context, h http.Header, form url.Values) (oauthIdentity, error) {
	header := ""
	if v := h[authorizationHeader]; len(v) > 0 {
		header = v[0]
	}
	formID, formSecret := form.Get("client_id"), form.Get("client_secret")
	id, secret, basic := parseBasic(header)
	switch {
	case header != "" && !basic:
		return oauthIdentity{}, errOAuthMissingAuth
	case basic && formID != "" && formID != id:
		return oauthIdentity{}, errOAuthInvalidClient
	case !basic:
		id, secret = formID, formSecret
	}
	if len(id) > maxOAuthClientID {
		// Without client blocks the id is taken as said, and it goes into
		// the signed token, the answer and the access log.
		return oauthIdentity{}, errOAuthInvalidClient
	}
	if rt.clients == nil {
		return oauthIdentity{name: id}, nil
	}
	if id == "" {
		return oauthIdentity{}, errOAuthMissingAuth
	}
	if !basic {
		header = "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
	}
	cl, err := rt.authenticate(ctx, header)
	if err != nil && basic {
		// RFC 6749 (2.3.1) form-encodes id and secret before Basic, as
		// x/oauth2 does; UPS's own SDK sends them raw. Accept both.
		uid, e1 := url.QueryUnescape(id)
		usecret, e2 := url.QueryUnescape(secret)
		if e1 == nil && e2 == nil && (uid != id || usecret != secret) {
			cl, err = rt.authenticate(ctx, "Basic "+base64.StdEncoding.EncodeToString([]byte(uid+":"+usecret)))
		}
	}
	if err != nil {
		return oauthIdentity{}, errOAuthInvalidClient
	}
	return oauthIdentity{name: cl.name, cl: cl}, nil
}

// oauthCarrier picks the carrier a new token is bound to: the client
// block's pin, the X-Upsproxy-Carrier header, the carrier whose client_ids
// list the client id, the carrier owning the x-merchant-id account. They
// must agree; "" leaves the choice to each API request.
func (rt *routing) oauthCarrier(id oauthIdentity, h http.Header) (string, error) {
	pin, err := rt.pinned(id.cl, h)
	if err != nil {
		return "", err
	}
	what := ""
	if pin != nil {
		what = "the " + CarrierHeader + " header names carrier " + strconv.Quote(pin.name)
		if id.cl != nil && id.cl.pin == pin {
			what = "client " + strconv.Quote(id.cl.name) + " is pinned to carrier " + strconv.Quote(pin.name)
		}
	}
	agree := func(r *route, source string) error {
		switch {
		case r == nil || r == pin:
			return nil
		case pin == nil:
			pin, what = r, source
			return nil
		case id.cl != nil && id.cl.pin != nil:
			return clientPinnedError(id.cl, source)
		}
		return carrierConflictError(what + ", but " + source)
	}
	if r := rt.byClientID[id.name]; r != nil {
		if err := agree(r, fmt.Sprintf("client id %q is listed in client_ids of carrier %q", clip(id.name, maxEchoedName), r.name)); err != nil {
			return "", err
		}
	}
	if v := h["X-Merchant-Id"]; len(v) > 0 && len(rt.byShipper) > 0 {
		if r := rt.shipperOwner([]byte(v[0])); r != nil {
			if err := agree(r, fmt.Sprintf("x-merchant-id %q belongs to carrier %q", echoNumber([]byte(v[0])), r.name)); err != nil {
				return "", err
			}
		}
	}
	if pin == nil {
		return "", nil
	}
	return pin.name, nil
}

// redeemCode takes an authorization code. A code the proxy issued (its
// authorize answer) must be valid and the requesting client's; any other
// code (one the client's browser got from UPS itself) is no use to the
// proxy, which never exchanges codes for its clients, and is accepted as
// it stands: the client is who its credentials say.
func (rt *routing) redeemCode(id oauthIdentity, h http.Header, form url.Values, signer *clienttoken.Signer, now time.Time) (string, error) {
	code := form.Get("code")
	if code == "" {
		return "", errOAuthBadCode
	}
	if form.Get("redirect_uri") == "" {
		return "", errOAuthBadRedirect
	}
	if clienttoken.IsToken(code) {
		c, err := signer.Verify(code, clienttoken.Code, now)
		if err != nil || c.Client != id.name {
			return "", errOAuthBadCode
		}
	}
	return rt.oauthCarrier(id, h)
}

// redeemRefresh takes a refresh token the proxy issued: it must verify and
// belong to the requesting client. Without client blocks a refresh token
// of UPS's own (from before the client was pointed at the proxy) is
// accepted too, for the placeholder it buys; with them it is refused.
func (rt *routing) redeemRefresh(id oauthIdentity, tok string, signer *clienttoken.Signer, now time.Time) (string, error) {
	if tok == "" {
		return "", errOAuthBadRefresh
	}
	if !clienttoken.IsToken(tok) {
		if rt.clients != nil {
			return "", errOAuthBadRefresh
		}
		return rt.oauthCarrier(id, nil)
	}
	c, err := signer.Verify(tok, clienttoken.Refresh, now)
	if err != nil || c.Client != id.name || c.Authenticated != (id.cl != nil) {
		return "", errOAuthBadRefresh
	}
	if c.Carrier != "" && rt.byName[c.Carrier] == nil {
		return "", errOAuthBadRefresh // its carrier was removed: start afresh
	}
	return c.Carrier, nil
}

// issuePair signs an access token for claims (and a refresh token when
// withRefresh) and renders the answer.
func issuePair(signer *clienttoken.Signer, claims clienttoken.Claims, withRefresh bool, scope string, now time.Time) ([]byte, error) {
	now = now.Truncate(time.Second)
	claims.Kind, claims.IssuedAt, claims.ExpiresAt = clienttoken.Access, now, now.Add(clientAccessTTL)
	access, err := signer.Issue(claims)
	if err != nil {
		return nil, err
	}
	issued := ups.FormatEpochMillis(now)
	a := ups.TokenResponse{
		TokenType:    "Bearer",
		IssuedAt:     issued,
		ClientID:     claims.Client,
		AccessToken:  access,
		Scope:        clip(scope, maxEchoedName),
		ExpiresIn:    ups.FormatLifetime(clientAccessTTL),
		RefreshCount: "0",
		Status:       "approved",
	}
	if withRefresh {
		claims.Kind, claims.ExpiresAt = clienttoken.Refresh, now.Add(clientRefreshTTL)
		if a.RefreshToken, err = signer.Issue(claims); err != nil {
			return nil, err
		}
		a.RefreshTokenExpiresIn = ups.FormatLifetime(clientRefreshTTL)
		a.RefreshTokenStatus = "approved"
		a.RefreshTokenIssuedAt = issued
	}
	return json.Marshal(a)
}

// authorize answers UPS's authorize page as if the user had approved at
// once: a redirect back with a code the proxy signed. With client blocks,
// client_id must name one (the code is only redeemed with its secret).
// The redirect goes only where redirectAllowed says: any other target
// would make the proxy's host an open redirect.
func (p *Proxy) authorize(x *exchange, req *http.Request, rt *routing, signer *clienttoken.Signer) *http.Response {
	q := req.URL.Query()
	id := q.Get("client_id")
	var cl *client
	if rt.clients != nil {
		if cl = rt.clients[id]; cl == nil {
			return x.fail(req, errOAuthInvalidClient)
		}
	}
	if q.Get("response_type") != "code" {
		return x.fail(req, oauthBadRequest("Invalid response_type: only code is supported"))
	}
	raw := q.Get("redirect_uri")
	target, err := url.Parse(raw)
	if err != nil || !rt.redirectAllowed(cl, raw, target) {
		return x.fail(req, errOAuthBadRedirect)
	}
	now := p.now().Truncate(time.Second)
	code, err := signer.Issue(clienttoken.Claims{Kind: clienttoken.Code, Authenticated: cl != nil, Client: id,
		IssuedAt: now, ExpiresAt: now.Add(clientCodeTTL)})
	if err != nil {
		return x.fail(req, err)
	}
	tq := target.Query()
	tq.Set("code", code)
	if s := q.Get("state"); s != "" {
		tq.Set("state", s)
	}
	target.RawQuery = tq.Encode()
	return x.answer(req, http.StatusFound, nil, http.Header{"Location": {target.String()}})
}

// redirectAllowed reports whether the authorize answer may send the
// browser to raw (parsed: u). UPS redirects only to the URIs registered
// with the application; the proxy knows its own equivalents:
//   - a loopback URI (http or https to 127.0.0.0/8, ::1 or localhost, any
//     port and path), where native apps listen (RFC 8252, 7.3);
//   - a carrier's redirect_uri, the URI registered with its UPS
//     application;
//   - one of the client block's redirect_uris (cl, nil without client
//     blocks).
//
// The configured ones are compared exactly, as RFC 6749 (3.1.2) asks.
func (rt *routing) redirectAllowed(cl *client, raw string, u *url.URL) bool {
	if !validRedirectURL(u) {
		return false
	}
	if rt.redirects[raw] || (cl != nil && cl.redirects[raw]) {
		return true
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Zone() == "" && a.IsLoopback()
}

// validRedirect checks a configured redirect URI's shape.
func validRedirect(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && validRedirectURL(u)
}

// validRedirectURL: absolute http(s) with a host, no user info (a URL like
// https://127.0.0.1@evil.example/ reads as loopback to a person), no
// fragment (RFC 6749, 3.1.2).
func validRedirectURL(u *url.URL) bool {
	return (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil &&
		u.Fragment == "" && u.Opaque == ""
}

// answer is the proxy's own successful answer (the token endpoint's).
func (x *exchange) answer(req *http.Request, status int, body []byte, h http.Header) *http.Response {
	if h == nil {
		h = make(http.Header, 4)
	}
	if body != nil {
		h["Content-Type"] = jsonContentType
	}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["Cache-Control"] = []string{"no-store"}
	h["Pragma"] = []string{"no-cache"}
	x.status = status
	x.logAccess()
	return &http.Response{
		StatusCode:    status,
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(strings.NewReader(string(body))),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

// presentedToken returns the claims of the upsproxy token in the request's
// Authorization header (Kind 0: the header holds none, e.g. a stale UPS
// bearer, which is replaced as ever). A token of ours that does not verify
// is refused with UPS's answer to a bad bearer, so the client fetches a
// new one.
func (p *Proxy) presentedToken(h http.Header) (clienttoken.Claims, error) {
	v := h[authorizationHeader]
	if len(v) == 0 {
		return clienttoken.Claims{}, nil
	}
	const bearer = "Bearer "
	tok := v[0]
	if len(tok) <= len(bearer) || !strings.EqualFold(tok[:len(bearer)], bearer) {
		return clienttoken.Claims{}, nil
	}
	tok = strings.TrimSpace(tok[len(bearer):])
	if !clienttoken.IsToken(tok) {
		return clienttoken.Claims{}, nil
	}
	signer := p.signer.Load()
	if signer == nil {
		return clienttoken.Claims{}, errOAuthNoKey
	}
	c, err := signer.Verify(tok, clienttoken.Access, p.now())
	if err != nil {
		return clienttoken.Claims{}, &clientTokenError{err: err}
	}
	return c, nil
}

// clientTokenError is a presented upsproxy token that did not verify.
type clientTokenError struct{ err error }

func (e *clientTokenError) Error() string { return "client token: " + e.err.Error() }
func (e *clientTokenError) Unwrap() error { return e.err }

// As lets clientError answer it with UPS's bad-bearer error.
func (e *clientTokenError) As(target any) bool {
	if pe, ok := target.(**proxyError); ok {
		*pe = errOAuthInvalidToken
		return true
	}
	return false
}

// identify is proxy authentication (step 2 of forward) with OAuth: the
// Proxy-Authorization credentials as ever or, where the client sent none
// (base-URL mode), a valid upsproxy token issued to a client block. Both
// at once must name the same client.
func (rt *routing) identify(ctx context.Context, auth string, tok clienttoken.Claims) (*client, error) {
	if auth == "" && tok.Kind != 0 {
		if cl := rt.clients[tok.Client]; cl != nil && tok.Authenticated {
			return cl, nil
		}
		// The client block is gone, or the token is a placeholder issued
		// before client blocks existed: UPS's bad-token answer makes the
		// client fetch a new one, which then authenticates it.
		return nil, errOAuthInvalidToken
	}
	cl, err := rt.authenticate(ctx, auth)
	if err != nil {
		return nil, err
	}
	if tok.Kind != 0 && tok.Authenticated && tok.Client != cl.name {
		return nil, errOAuthInvalidToken
	}
	return cl, nil
}

// pinnedWithToken is pinned with the carrier a presented token was issued
// for: it pins like X-Upsproxy-Carrier, and the two must agree.
func (rt *routing) pinnedWithToken(cl *client, tok clienttoken.Claims, h http.Header) (*route, error) {
	pin, err := rt.pinned(cl, h)
	if err != nil || tok.Carrier == "" {
		return pin, err
	}
	r := rt.byName[tok.Carrier]
	switch {
	case r == nil:
		return nil, errOAuthInvalidToken // issued for a carrier since removed: get a new one
	case pin == nil || pin == r:
		return r, nil
	case cl != nil && cl.pin != nil:
		return nil, clientPinnedError(cl, fmt.Sprintf("its OAuth token was issued for carrier %q", r.name))
	}
	return nil, carrierConflictError(fmt.Sprintf("the %s header names carrier %q, but the OAuth token was issued for carrier %q",
		CarrierHeader, pin.name, r.name))
}

// buildClientIDs maps the carriers' client_ids to their carrier; an id
// listed by two carriers is an error.
func buildClientIDs(carriers []Carrier, byName map[string]*route) (map[string]*route, error) {
	out := map[string]*route{}
	for _, c := range carriers {
		for _, id := range c.ClientIDs {
			if id == "" {
				return nil, fmt.Errorf("carrier %q: empty client id in client_ids", c.Name)
			}
			if other := out[id]; other != nil && other.name != c.Name {
				return nil, fmt.Errorf("client id %q is listed in client_ids of carriers %q and %q", id, other.name, c.Name)
			}
			out[id] = byName[c.Name]
		}
	}
	return out, nil
}
