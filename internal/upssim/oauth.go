package upssim

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// msgInvalidVerifier is the simulator's own wording (UPS's is unknown); the
// messages UPS is known to use are ups.Msg*. All go out in the UPS envelope.
const msgInvalidVerifier = "Invalid code_verifier"

type authCode struct {
	clientID    string
	redirectURI string
	challenge   string
	scope       string
	env         ups.Environment
	expiresAt   time.Time
}

type accessToken struct {
	clientID   string
	merchantID string
	env        ups.Environment
	expiresAt  time.Time
	revoked    bool
}

type refreshToken struct {
	clientID  string
	scope     string
	env       ups.Environment
	issuedAt  time.Time // of the first refresh token of the chain: fixed
	expiresAt time.Time // fixed too: refreshing never extends it
	count     int       // refreshes that led to this token
	spent     bool
	rejected  bool
}

// oauthError is a failed OAuth request, answered in the UPS envelope.
type oauthError struct {
	status  int
	code    string
	message string
}

func (e *oauthError) write(w http.ResponseWriter) { writeEnvelope(w, e.status, e.code, e.message) }

var (
	errMissingAuth   = &oauthError{http.StatusUnauthorized, ups.CodeInvalidRequest, ups.MsgMissingAuthHeader}
	errInvalidClient = &oauthError{http.StatusUnauthorized, ups.CodeInvalidClient, ups.MsgInvalidClient}
	errInvalidCode   = &oauthError{http.StatusBadRequest, ups.CodeInvalidRequest, ups.MsgInvalidCode}
	errInvalidRedir  = &oauthError{http.StatusBadRequest, ups.CodeInvalidRequest, ups.MsgInvalidRedirect}
	errBadVerifier   = &oauthError{http.StatusBadRequest, ups.CodeInvalidRequest, msgInvalidVerifier}
	errBadRefresh    = &oauthError{http.StatusUnauthorized, ups.CodeInvalidRequest, ups.MsgInvalidRefreshToken}
)

func badRequest(msg string) *oauthError {
	return &oauthError{http.StatusBadRequest, ups.CodeInvalidRequest, msg}
}

// handleAuthorize auto-approves: where UPS would show its login page, the
// simulator redirects straight back with a code.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	s.recordOAuth(r, nil)
	if s.applyFault(w, r, EndpointAuthorize) {
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeEnvelope(w, http.StatusMethodNotAllowed, "405", "Method not allowed")
		return
	}
	q := r.URL.Query()
	clientID := q.Get("client_id")
	if _, ok := s.client(clientID); !ok || clientID == "" {
		errInvalidClient.write(w)
		return
	}
	if q.Get("response_type") != "code" {
		badRequest("Invalid response_type: only code is supported").write(w)
		return
	}
	redirectURI := q.Get("redirect_uri")
	target, err := url.Parse(redirectURI)
	if redirectURI == "" || err != nil || !target.IsAbs() || target.Host == "" {
		errInvalidRedir.write(w)
		return
	}
	state, scope := q.Get("state"), q.Get("scope")
	code := s.mintCode(clientID, redirectURI, q.Get("code_challenge"), scope, hostEnvironment(r.Host))

	tq := target.Query()
	tq.Set("code", code)
	if state != "" {
		tq.Set("state", state)
	}
	if scope != "" {
		tq.Set("scope", scope)
	}
	target.RawQuery = tq.Encode()
	s.log.Info("upssim authorization code issued", zap.String("client_id", clientID),
		zap.Bool("pkce", q.Get("code_challenge") != ""))
	http.Redirect(w, r, target.String(), http.StatusFound)
}

// IssueCode mints an authorization code as a completed authorize step
// would, for tests that skip the browser. It is valid for CodeTTL, in every
// environment, with an empty scope.
func (s *Server) IssueCode(clientID, redirectURI, codeChallenge string) string {
	return s.mintCode(clientID, redirectURI, codeChallenge, "", "")
}

func (s *Server) mintCode(clientID, redirectURI, challenge, scope string, env ups.Environment) string {
	code := randomToken(24)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = &authCode{
		clientID: clientID, redirectURI: redirectURI, challenge: challenge, scope: scope,
		env: env, expiresAt: s.now().Add(CodeTTL),
	}
	return code
}

// handleToken serves both grants UPS offers on /token.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	form, oerr := s.readForm(w, r, EndpointToken)
	if form == nil && oerr == nil {
		return // fault answered
	}
	if oerr != nil {
		oerr.write(w)
		return
	}
	switch form.Get("grant_type") {
	case "authorization_code":
		s.exchangeCode(w, r, form)
	case "client_credentials":
		s.clientCredentials(w, r)
	case "":
		badRequest("Missing grant_type").write(w)
	default:
		badRequest("Unsupported grant_type").write(w)
	}
}

// readForm records the request, applies endpoint's fault and parses the
// form body. Both results nil means a fault already answered.
func (s *Server) readForm(w http.ResponseWriter, r *http.Request, endpoint string) (url.Values, *oauthError) {
	body, tooLarge, err := readBody(r, formBodyLimit)
	s.recordOAuth(r, body)
	if s.applyFault(w, r, endpoint) {
		return nil, nil
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return nil, &oauthError{http.StatusMethodNotAllowed, "405", "Method not allowed"}
	}
	if err != nil {
		return nil, badRequest("Unreadable request body")
	}
	if tooLarge {
		return nil, &oauthError{http.StatusRequestEntityTooLarge, "413", "Request body too large"}
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, badRequest("Invalid Content-Type: expected application/x-www-form-urlencoded")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, badRequest("Malformed form body")
	}
	for k, v := range form {
		// RFC 6749 §3.2: parameters must not repeat; which copy would
		// win is exactly the ambiguity a client bug hides behind.
		if len(v) > 1 {
			return nil, badRequest("Repeated parameter " + strconv.Quote(k))
		}
	}
	return form, nil
}

func (s *Server) recordOAuth(r *http.Request, body []byte) {
	rec := record(r, body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauthRequests = appendRecord(s.oauthRequests, rec)
}

// parseBasic decodes an Authorization: Basic header the way UPS's own SDK
// builds it (Go's SetBasicAuth): base64 of id ":" secret, split at the
// first colon, no URL-unescaping of either part.
func parseBasic(header string) (id, secret string, ok bool) {
	scheme, rest, found := strings.Cut(strings.TrimSpace(header), " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(raw), ":")
}

// authenticateBasic checks the raw client credentials of r's Basic header.
// present is false when r has no Authorization header at all.
func (s *Server) authenticateBasic(r *http.Request) (clientID string, present bool, oerr *oauthError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false, nil
	}
	id, secret, ok := parseBasic(h)
	if !ok {
		return "", true, errMissingAuth
	}
	want, known := s.client(id)
	if !known || subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 {
		return "", true, errInvalidClient
	}
	return id, true, nil
}

// exchangeCode redeems an authorization code. Confidential clients
// authenticate with Basic; a PKCE exchange sends no Authorization header,
// only client_id and code_verifier in the body.
func (s *Server) exchangeCode(w http.ResponseWriter, r *http.Request, form url.Values) {
	clientID, viaBasic, oerr := s.authenticateBasic(r)
	if oerr != nil {
		oerr.write(w)
		return
	}
	bodyID := form.Get("client_id")
	switch {
	case viaBasic && bodyID != "" && bodyID != clientID:
		errInvalidClient.write(w)
		return
	case !viaBasic && bodyID == "":
		errMissingAuth.write(w)
		return
	case !viaBasic:
		if _, known := s.client(bodyID); !known {
			errInvalidClient.write(w)
			return
		}
		clientID = bodyID
	}
	codeValue, redirectURI, verifier := form.Get("code"), form.Get("redirect_uri"), form.Get("code_verifier")
	if codeValue == "" {
		errInvalidCode.write(w)
		return
	}
	if redirectURI == "" {
		errInvalidRedir.write(w)
		return
	}
	env := hostEnvironment(r.Host)

	s.mu.Lock()
	code, ok := s.codes[codeValue]
	if ok && !viaBasic && code.challenge == "" {
		// Without PKCE the exchange needs the client secret; leave the
		// code for a correct retry.
		s.mu.Unlock()
		errMissingAuth.write(w)
		return
	}
	// Any redemption attempt that gets this far spends the code, so a
	// wrong verifier cannot be retried until it matches.
	delete(s.codes, codeValue)
	now := s.now()
	switch {
	case !ok || !now.Before(code.expiresAt) || code.clientID != clientID || !sameEnvironment(code.env, env):
		oerr = errInvalidCode
	case code.redirectURI != redirectURI:
		oerr = errInvalidRedir
	case code.challenge != "" && !verifierMatches(verifier, code.challenge):
		oerr = errBadVerifier
	}
	if oerr != nil {
		s.mu.Unlock()
		s.log.Info("upssim code exchange refused", zap.String("client_id", clientID), zap.String("reason", oerr.message))
		oerr.write(w)
		return
	}
	resp := s.mintPairLocked(clientID, code.scope, env, now, now, 0)
	s.stats.AuthorizationCodeGrants++
	s.mu.Unlock()
	s.log.Info("upssim authorization code exchanged", zap.String("client_id", clientID), zap.String("expires_in", resp.ExpiresIn),
		zap.String("refresh_token_expires_in", resp.RefreshTokenExpiresIn))
	writeJSON(w, http.StatusOK, resp)
}

// verifierMatches checks PKCE S256: base64url(sha256(verifier)), unpadded.
func verifierMatches(verifier, challenge string) bool {
	if verifier == "" {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

func (s *Server) clientCredentials(w http.ResponseWriter, r *http.Request) {
	clientID, present, oerr := s.authenticateBasic(r)
	switch {
	case oerr != nil:
		oerr.write(w)
		return
	case !present:
		errMissingAuth.write(w)
		return
	case s.clientSecret(clientID) == "":
		// A public client has no secret to prove who it is.
		errInvalidClient.write(w)
		return
	}
	merchant := r.Header.Get("x-merchant-id")
	env := hostEnvironment(r.Host)
	s.mu.Lock()
	now := s.now()
	tok := s.mintAccessLocked(clientID, merchant, env, now)
	s.stats.ClientCredentialsGrants++
	s.mu.Unlock()
	resp := ups.TokenResponse{
		TokenType:    "Bearer",
		IssuedAt:     ups.FormatEpochMillis(now),
		ClientID:     clientID,
		AccessToken:  tok,
		Scope:        "",
		ExpiresIn:    ups.FormatLifetime(s.accessTTL),
		RefreshCount: "0",
		Status:       "approved",
	}
	s.log.Info("upssim client credentials granted", zap.String("client_id", clientID),
		zap.String("merchant_id", merchant), zap.String("expires_in", resp.ExpiresIn))
	writeJSON(w, http.StatusOK, resp)
}

// handleRefresh trades a refresh token for a new pair. The old refresh
// token is spent whatever happens next; the old access token stays valid
// until its own expiry, as with real OAuth servers, so requests in flight
// during a refresh do not fail.
func (s *Server) handleRefresh(w http.ResponseWriter, r *http.Request) {
	form, oerr := s.readForm(w, r, EndpointRefresh)
	if form == nil && oerr == nil {
		return
	}
	if oerr != nil {
		oerr.write(w)
		return
	}
	if gt := form.Get("grant_type"); gt != "refresh_token" {
		badRequest("Invalid grant_type: expected refresh_token").write(w)
		return
	}
	clientID, viaBasic, oerr := s.authenticateBasic(r)
	if oerr != nil {
		oerr.write(w)
		return
	}
	if !viaBasic {
		// Public PKCE clients have no secret to send; they name
		// themselves in the body. Confidential clients must use Basic.
		bodyID := form.Get("client_id")
		secret, known := s.client(bodyID)
		switch {
		case bodyID == "":
			errMissingAuth.write(w)
			return
		case !known || secret != "":
			errInvalidClient.write(w)
			return
		}
		clientID = bodyID
	}
	value := form.Get("refresh_token")
	env := hostEnvironment(r.Host)

	s.mu.Lock()
	now := s.now()
	old, ok := s.refresh[value]
	reason := ""
	switch {
	case !ok:
		reason = "unknown"
	case old.spent:
		reason = "already used"
	case old.rejected:
		reason = "rejected"
	case !now.Before(old.expiresAt):
		reason = "expired"
	case old.clientID != clientID:
		reason = "issued to another client"
	case !sameEnvironment(old.env, env):
		reason = "issued in another environment"
	}
	if reason != "" {
		s.stats.RefreshRejected++
		s.mu.Unlock()
		s.log.Info("upssim refresh refused", zap.String("client_id", clientID), zap.String("reason", reason))
		errBadRefresh.write(w)
		return
	}
	old.spent = true
	resp := s.mintPairLocked(clientID, old.scope, old.env, now, old.issuedAt, old.count+1)
	s.stats.Refreshes++
	s.mu.Unlock()
	s.log.Info("upssim token refreshed", zap.String("client_id", clientID), zap.String("refresh_count", resp.RefreshCount),
		zap.String("refresh_token_expires_in", resp.RefreshTokenExpiresIn))
	writeJSON(w, http.StatusOK, resp)
}

// mintPairLocked issues an access token and a refresh token. The refresh
// token's issue time (and so its expiry) is refreshIssued: the chain's
// first issue, which refreshing never moves. s.mu must be held.
func (s *Server) mintPairLocked(clientID, scope string, env ups.Environment, now, refreshIssued time.Time, count int) ups.TokenResponse {
	access := s.mintAccessLocked(clientID, "", env, now)
	rt := &refreshToken{
		clientID: clientID, scope: scope, env: env,
		issuedAt: refreshIssued, expiresAt: refreshIssued.Add(s.refreshTTL), count: count,
	}
	value := randomToken(32)
	s.refresh[value] = rt
	return ups.TokenResponse{
		RefreshTokenExpiresIn: ups.FormatLifetime(rt.expiresAt.Sub(now)),
		RefreshTokenStatus:    "approved",
		TokenType:             "Bearer",
		IssuedAt:              ups.FormatEpochMillis(now),
		ClientID:              clientID,
		AccessToken:           access,
		RefreshToken:          value,
		Scope:                 scope,
		RefreshTokenIssuedAt:  ups.FormatEpochMillis(rt.issuedAt),
		ExpiresIn:             ups.FormatLifetime(s.accessTTL),
		RefreshCount:          strconv.Itoa(count),
		Status:                "approved",
	}
}

func (s *Server) mintAccessLocked(clientID, merchant string, env ups.Environment, now time.Time) string {
	s.sweepLocked(now)
	value := randomToken(64)
	s.access[value] = &accessToken{clientID: clientID, merchantID: merchant, env: env, expiresAt: now.Add(s.accessTTL)}
	return value
}

// sweepLocked forgets dead codes and tokens now and then, so a long-running
// sandbox does not grow without bound. A forgotten token is answered
// exactly like a spent or expired one.
func (s *Server) sweepLocked(now time.Time) {
	s.issuedSince++
	if s.issuedSince < 1024 {
		return
	}
	s.issuedSince = 0
	for k, c := range s.codes {
		if !now.Before(c.expiresAt) {
			delete(s.codes, k)
		}
	}
	for k, t := range s.access {
		if t.revoked || !now.Before(t.expiresAt) {
			delete(s.access, k)
		}
	}
	for k, t := range s.refresh {
		if t.spent || t.rejected || !now.Before(t.expiresAt) {
			delete(s.refresh, k)
		}
	}
}

// SetClientSecret changes the secret of a client, or adds the client, as
// rotating the secret in UPS's developer portal does: from now on only the
// new secret authenticates it.
func (s *Server) SetClientSecret(clientID, secret string) {
	s.clientsMu.Lock()
	defer s.clientsMu.Unlock()
	s.clients[clientID] = secret
}

// client returns a client's secret and whether the client exists.
func (s *Server) client(id string) (secret string, known bool) {
	s.clientsMu.RLock()
	defer s.clientsMu.RUnlock()
	secret, known = s.clients[id]
	return secret, known
}

func (s *Server) clientSecret(id string) string {
	secret, _ := s.client(id)
	return secret
}

// RevokeAccessTokens invalidates every access token issued so far: the
// next API call with one gets 401/250002, as when UPS revokes a token
// early. Tokens issued afterwards work.
func (s *Server) RevokeAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.access {
		t.revoked = true
	}
}

// RejectRefreshTokens makes UPS refuse every refresh token issued so far
// (401, 10400 "Invalid Refresh Token"), as when an admin's authorization is
// withdrawn. Tokens issued afterwards work.
func (s *Server) RejectRefreshTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.refresh {
		t.rejected = true
	}
}

// validAccess reports whether value is a live access token for env.
func (s *Server) validAccess(value string, env ups.Environment) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.access[value]
	return ok && !t.revoked && s.now().Before(t.expiresAt) && sameEnvironment(t.env, env)
}

// randomToken returns n random bytes, base64url-encoded: opaque, like
// UPS's tokens, and safe in headers, forms and URLs.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b)
}

func randomSeed() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}
