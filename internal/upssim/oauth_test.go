package upssim

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/ups"
)

func authorizeRequest(q url.Values) *http.Request {
	return httptest.NewRequest(http.MethodGet, "http://wwwcie.ups.com"+ups.AuthorizePath+"?"+q.Encode(), nil)
}

func TestAuthorizeAutoApprovesAndRedirectsBackWithCodeStateAndScope(t *testing.T) {
	s, _ := newTestServer(t)
	res := serve(s, authorizeRequest(url.Values{
		"client_id": {confID}, "redirect_uri": {redirectURI + "?tenant=7"}, "response_type": {"code"},
		"state": {"xyz-123"}, "scope": {"read write"},
	}))
	if res.Status != http.StatusFound {
		t.Fatalf("status = %d, want 302; body %s", res.Status, res.Body)
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil {
		t.Fatalf("Location %q: %v", res.Header.Get("Location"), err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		t.Errorf("redirected to %s, want %s", got, redirectURI)
	}
	q := loc.Query()
	if q.Get("code") == "" {
		t.Errorf("redirect carries no code: %s", loc)
	}
	if q.Get("state") != "xyz-123" || q.Get("scope") != "read write" || q.Get("tenant") != "7" {
		t.Errorf("redirect query = %v, want state, scope and the redirect URI's own parameter kept", q)
	}

	// The code is bound to the redirect URI exactly as sent, query included.
	req := formRequest("wwwcie.ups.com", ups.TokenPath, url.Values{
		"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {redirectURI + "?tenant=7"},
	})
	req.SetBasicAuth(confID, confSecret)
	tok := serve(s, req)
	if tok.Status != http.StatusOK {
		t.Fatalf("exchanging the redirected code: status %d, body %s", tok.Status, tok.Body)
	}
	if got := stringFields(t, tok.Body)["scope"]; got != "read write" {
		t.Errorf("token scope = %q, want the scope asked for at authorize", got)
	}
}

func TestAuthorizeWithoutStateOrScopeAddsOnlyTheCode(t *testing.T) {
	s, _ := newTestServer(t)
	res := serve(s, authorizeRequest(url.Values{"client_id": {confID}, "redirect_uri": {redirectURI}, "response_type": {"code"}}))
	loc, _ := url.Parse(res.Header.Get("Location"))
	if q := loc.Query(); len(q) != 1 || q.Get("code") == "" {
		t.Errorf("redirect query = %v, want only code", q)
	}
}

func TestAuthorizeRejectsBadRequestsInUPSEnvelope(t *testing.T) {
	good := url.Values{"client_id": {confID}, "redirect_uri": {redirectURI}, "response_type": {"code"}}
	with := func(k, v string) url.Values {
		q := url.Values{}
		for key, val := range good {
			q[key] = val
		}
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
		return q
	}
	tests := []struct {
		name   string
		query  url.Values
		status int
		code   string
	}{
		{"unknown client id is 401 10401", with("client_id", "nobody"), 401, ups.CodeInvalidClient},
		{"missing client id is 401 10401", with("client_id", ""), 401, ups.CodeInvalidClient},
		{"response type token is refused", with("response_type", "token"), 400, ups.CodeInvalidRequest},
		{"missing response type is refused", with("response_type", ""), 400, ups.CodeInvalidRequest},
		{"missing redirect uri is refused", with("redirect_uri", ""), 400, ups.CodeInvalidRequest},
		{"relative redirect uri is refused", with("redirect_uri", "/upscallback"), 400, ups.CodeInvalidRequest},
		{"redirect uri without host is refused", with("redirect_uri", "https:///cb"), 400, ups.CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t)
			res := serve(s, authorizeRequest(tt.query))
			wantEnvelope(t, res, tt.status, tt.code, "")
			if res.Header.Get("Location") != "" {
				t.Errorf("a refused authorize must not redirect, got Location %q", res.Header.Get("Location"))
			}
		})
	}
}

// The exact field set of UPS-FACTS "Token response".
var (
	authCodeFields = []string{"token_type", "issued_at", "client_id", "access_token", "scope", "expires_in",
		"refresh_count", "status", "refresh_token", "refresh_token_expires_in", "refresh_token_issued_at", "refresh_token_status"}
	clientCredentialsFields = []string{"token_type", "issued_at", "client_id", "access_token", "scope", "expires_in",
		"refresh_count", "status"}
)

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sorted(in []string) []string { return slices.Sorted(slices.Values(in)) }

func TestAuthorizationCodeTokenResponseHasUPSFieldsAllAsStrings(t *testing.T) {
	s, clock := newTestServer(t)
	tok := login(t, s)
	if got, want := keys(tok), sorted(authCodeFields); !slices.Equal(got, want) {
		t.Fatalf("token fields = %v, want exactly %v", got, want)
	}
	nowMS := strconv.FormatInt(clock.Now().UnixMilli(), 10)
	want := map[string]string{
		"token_type": "Bearer", "status": "approved", "refresh_token_status": "approved", "client_id": confID,
		"scope": "", "refresh_count": "0", "issued_at": nowMS, "refresh_token_issued_at": nowMS,
		// UPS reports lifetimes one second short: 4h and 60 days.
		"expires_in": "14399", "refresh_token_expires_in": "5183999",
	}
	for k, v := range want {
		if tok[k] != v {
			t.Errorf("%s = %q, want %q", k, tok[k], v)
		}
	}
	if tok["access_token"] == "" || tok["refresh_token"] == "" || tok["access_token"] == tok["refresh_token"] {
		t.Errorf("access and refresh tokens must be present and distinct")
	}
	again := login(t, s)
	if again["access_token"] == tok["access_token"] || again["refresh_token"] == tok["refresh_token"] {
		t.Errorf("two logins returned the same token: tokens must be random")
	}
}

func TestClientCredentialsTokenHasNoRefreshFieldsAndRecordsMerchantID(t *testing.T) {
	s, _ := newTestServer(t, func(o *Options) { o.AccessTTL = time.Hour })
	req := formRequest("onlinetools.ups.com", ups.TokenPath, url.Values{"grant_type": {"client_credentials"}})
	req.SetBasicAuth(confID, confSecret)
	req.Header.Set("x-merchant-id", "W599Y7")
	res := serve(s, req)
	if res.Status != http.StatusOK {
		t.Fatalf("status %d, body %s", res.Status, res.Body)
	}
	tok := stringFields(t, res.Body)
	if got, want := keys(tok), sorted(clientCredentialsFields); !slices.Equal(got, want) {
		t.Fatalf("client_credentials fields = %v, want exactly %v", got, want)
	}
	if tok["expires_in"] != "3599" || tok["refresh_count"] != "0" || tok["status"] != "approved" {
		t.Errorf("token = %v, want expires_in 3599 for a 1h lifetime, refresh_count 0, status approved", tok)
	}
	reqs := s.OAuthRequests()
	if len(reqs) != 1 || reqs[0].Header.Get("x-merchant-id") != "W599Y7" {
		t.Errorf("recorded OAuth requests = %d, want the grant with its x-merchant-id", len(reqs))
	}
	api := serve(s, apiRequest(http.MethodPost, "onlinetools.ups.com", "/api/rating/v2409/Rate", tok["access_token"], rateBody("03", "US", "5")))
	if api.Status != http.StatusOK {
		t.Errorf("the client_credentials token does not work on the API: %d %s", api.Status, api.Body)
	}
	if st := s.Stats(); st.ClientCredentialsGrants != 1 {
		t.Errorf("ClientCredentialsGrants = %d, want 1", st.ClientCredentialsGrants)
	}
}

func TestClientCredentialsRefusesPublicClientsAndMissingBasic(t *testing.T) {
	tests := []struct {
		name string
		auth func(*http.Request)
		code string
	}{
		{"no authorization header", func(*http.Request) {}, ups.CodeInvalidRequest},
		{"public client has no secret to authenticate with", func(r *http.Request) { r.SetBasicAuth(publicID, "") }, ups.CodeInvalidClient},
		{"wrong secret", func(r *http.Request) { r.SetBasicAuth(confID, "nope") }, ups.CodeInvalidClient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t)
			req := formRequest("wwwcie.ups.com", ups.TokenPath, url.Values{"grant_type": {"client_credentials"}})
			tt.auth(req)
			wantEnvelope(t, serve(s, req), http.StatusUnauthorized, tt.code, "")
		})
	}
}

// x/oauth2's AuthStyleInHeader URL-escapes id and secret before encoding
// them (golang/oauth2 issue 783); UPS's own SDK does not. The simulator
// must accept only the raw form, so a client that escapes is caught.
func TestBasicCredentialsAreComparedRawNotURLUnescaped(t *testing.T) {
	raw := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
	}
	tests := []struct {
		name    string
		header  string
		status  int
		code    string
		message string
	}{
		{"raw secret with plus percent space and colon is accepted", raw(confID, confSecret), 200, "", ""},
		{"url-escaped secret as x/oauth2 sends it is rejected",
			raw(url.QueryEscape(confID), url.QueryEscape(confSecret)), 401, ups.CodeInvalidClient, ups.MsgInvalidClient},
		{"secret with plus turned into space is rejected", raw(confID, strings.ReplaceAll(confSecret, "+", " ")), 401, ups.CodeInvalidClient, ups.MsgInvalidClient},
		{"secret cut at its own colon is rejected", raw(confID, "s3+cr%2Ft w"), 401, ups.CodeInvalidClient, ups.MsgInvalidClient},
		{"wrong secret is rejected", raw(confID, "guess"), 401, ups.CodeInvalidClient, ups.MsgInvalidClient},
		{"unknown client id is rejected", raw("stranger", confSecret), 401, ups.CodeInvalidClient, ups.MsgInvalidClient},
		{"lower-case basic scheme is accepted", "basic " + base64.StdEncoding.EncodeToString([]byte(confID+":"+confSecret)), 200, "", ""},
		{"bearer scheme is an invalid header", "Bearer abc", 401, ups.CodeInvalidRequest, ups.MsgMissingAuthHeader},
		{"undecodable base64 is an invalid header", "Basic %%%", 401, ups.CodeInvalidRequest, ups.MsgMissingAuthHeader},
		{"credentials without a colon are an invalid header", "Basic " + base64.StdEncoding.EncodeToString([]byte(confID)), 401, ups.CodeInvalidRequest, ups.MsgMissingAuthHeader},
		{"missing header without pkce is an invalid header", "", 401, ups.CodeInvalidRequest, ups.MsgMissingAuthHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t)
			req := formRequest("wwwcie.ups.com", ups.TokenPath, codeForm(s.IssueCode(confID, redirectURI, "")))
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			res := serve(s, req)
			if tt.status == http.StatusOK {
				if res.Status != http.StatusOK {
					t.Fatalf("status %d, body %s", res.Status, res.Body)
				}
				return
			}
			wantEnvelope(t, res, tt.status, tt.code, tt.message)
		})
	}
}

func TestFailedClientAuthenticationLeavesTheCodeUsable(t *testing.T) {
	s, _ := newTestServer(t)
	code := s.IssueCode(confID, redirectURI, "")
	req := formRequest("wwwcie.ups.com", ups.TokenPath, codeForm(code))
	req.SetBasicAuth(confID, "typo")
	wantEnvelope(t, serve(s, req), 401, ups.CodeInvalidClient, "")
	if res := exchange(t, s, code); res.Status != http.StatusOK {
		t.Errorf("after a wrong secret the code should still work: %d %s", res.Status, res.Body)
	}
}

func TestAuthorizationCodeIsSingleUse(t *testing.T) {
	s, _ := newTestServer(t)
	code := s.IssueCode(confID, redirectURI, "")
	if res := exchange(t, s, code); res.Status != http.StatusOK {
		t.Fatalf("first exchange: %d %s", res.Status, res.Body)
	}
	wantEnvelope(t, exchange(t, s, code), http.StatusBadRequest, ups.CodeInvalidRequest, ups.MsgInvalidCode)
	if st := s.Stats(); st.AuthorizationCodeGrants != 1 {
		t.Errorf("AuthorizationCodeGrants = %d, want 1", st.AuthorizationCodeGrants)
	}
}

func TestAuthorizationCodeIsBoundToClientRedirectAndLifetime(t *testing.T) {
	tests := []struct {
		name    string
		advance time.Duration
		client  [2]string
		form    func(code string) url.Values
		status  int
		message string
	}{
		{"exchange just before five minutes works", CodeTTL - time.Second, [2]string{confID, confSecret}, codeForm, 200, ""},
		{"exchange at five minutes is too late", CodeTTL, [2]string{confID, confSecret}, codeForm, 400, ups.MsgInvalidCode},
		{"another client cannot redeem the code", 0, [2]string{otherID, otherSecret}, codeForm, 400, ups.MsgInvalidCode},
		{"a different redirect uri is refused", 0, [2]string{confID, confSecret}, func(code string) url.Values {
			f := codeForm(code)
			f.Set("redirect_uri", "https://127.0.0.1/other")
			return f
		}, 400, ups.MsgInvalidRedirect},
		{"a missing redirect uri is refused", 0, [2]string{confID, confSecret}, func(code string) url.Values {
			f := codeForm(code)
			f.Del("redirect_uri")
			return f
		}, 400, ups.MsgInvalidRedirect},
		{"an unknown code is refused", 0, [2]string{confID, confSecret}, func(string) url.Values { return codeForm("made-up") }, 400, ups.MsgInvalidCode},
		{"body client id contradicting basic is refused", 0, [2]string{confID, confSecret}, func(code string) url.Values {
			f := codeForm(code)
			f.Set("client_id", otherID)
			return f
		}, 401, ups.MsgInvalidClient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := newTestServer(t)
			code := s.IssueCode(confID, redirectURI, "")
			clock.Advance(tt.advance)
			req := formRequest("wwwcie.ups.com", ups.TokenPath, tt.form(code))
			req.SetBasicAuth(tt.client[0], tt.client[1])
			res := serve(s, req)
			if tt.status == http.StatusOK {
				if res.Status != http.StatusOK {
					t.Fatalf("status %d, body %s", res.Status, res.Body)
				}
				return
			}
			code4xx := ups.CodeInvalidRequest
			if tt.status == 401 {
				code4xx = ups.CodeInvalidClient
			}
			wantEnvelope(t, res, tt.status, code4xx, tt.message)
		})
	}
}

func pkceForm(code, clientID, verifier string) url.Values {
	f := codeForm(code)
	f.Set("client_id", clientID)
	if verifier != "" {
		f.Set("code_verifier", verifier)
	}
	return f
}

func TestPKCEExchangeVerifiesTheCodeVerifier(t *testing.T) {
	tests := []struct {
		name     string
		clientID string
		verifier string
		status   int
		code     string
		message  string
	}{
		{"public client with the right verifier gets tokens", publicID, testVerifier, 200, "", ""},
		{"confidential client may use pkce without basic", confID, testVerifier, 200, "", ""},
		{"wrong verifier is refused", publicID, testVerifier + "x", 400, ups.CodeInvalidRequest, msgInvalidVerifier},
		{"missing verifier is refused", publicID, "", 400, ups.CodeInvalidRequest, msgInvalidVerifier},
		{"the challenge itself is not a verifier", publicID, challengeFor(testVerifier), 400, ups.CodeInvalidRequest, msgInvalidVerifier},
		{"unknown client id is refused", "nobody", testVerifier, 401, ups.CodeInvalidClient, ups.MsgInvalidClient},
		{"missing client id is a missing authorization", "", testVerifier, 401, ups.CodeInvalidRequest, ups.MsgMissingAuthHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t)
			issuedTo := tt.clientID
			if issuedTo == "" || issuedTo == "nobody" {
				issuedTo = publicID
			}
			code := s.IssueCode(issuedTo, redirectURI, challengeFor(testVerifier))
			res := serve(s, formRequest("wwwcie.ups.com", ups.TokenPath, pkceForm(code, tt.clientID, tt.verifier)))
			if tt.status == http.StatusOK {
				if res.Status != http.StatusOK {
					t.Fatalf("status %d, body %s", res.Status, res.Body)
				}
				if tok := stringFields(t, res.Body); tok["refresh_token"] == "" || tok["client_id"] != tt.clientID {
					t.Errorf("pkce token = %v, want a refresh token for %s", keys(tok), tt.clientID)
				}
				return
			}
			wantEnvelope(t, res, tt.status, tt.code, tt.message)
		})
	}
}

func TestWrongPKCEVerifierSpendsTheCode(t *testing.T) {
	s, _ := newTestServer(t)
	code := s.IssueCode(publicID, redirectURI, challengeFor(testVerifier))
	wantEnvelope(t, serve(s, formRequest("h", ups.TokenPath, pkceForm(code, publicID, "guess"))), 400, ups.CodeInvalidRequest, msgInvalidVerifier)
	// Guessing must not be retryable until it matches.
	wantEnvelope(t, serve(s, formRequest("h", ups.TokenPath, pkceForm(code, publicID, testVerifier))), 400, ups.CodeInvalidRequest, ups.MsgInvalidCode)
}

func TestExchangeWithoutBasicForNonPKCECodeIsRefusedAndCodeSurvives(t *testing.T) {
	s, _ := newTestServer(t)
	code := s.IssueCode(confID, redirectURI, "")
	res := serve(s, formRequest("h", ups.TokenPath, pkceForm(code, confID, testVerifier)))
	wantEnvelope(t, res, 401, ups.CodeInvalidRequest, ups.MsgMissingAuthHeader)
	if res := exchange(t, s, code); res.Status != http.StatusOK {
		t.Errorf("with Basic the code should still be redeemable: %d %s", res.Status, res.Body)
	}
}

func TestRefreshRotatesThePairAndSpendsTheOldRefreshToken(t *testing.T) {
	s, clock := newTestServer(t)
	first := login(t, s)
	clock.Advance(time.Hour)

	res := serve(s, refreshRequest("wwwcie.ups.com", first["refresh_token"]))
	if res.Status != http.StatusOK {
		t.Fatalf("refresh: %d %s", res.Status, res.Body)
	}
	second := stringFields(t, res.Body)
	if got, want := keys(second), sorted(authCodeFields); !slices.Equal(got, want) {
		t.Fatalf("refresh fields = %v, want exactly %v", got, want)
	}
	if second["access_token"] == first["access_token"] || second["refresh_token"] == first["refresh_token"] {
		t.Errorf("refresh must return a new access and a new refresh token")
	}
	if second["refresh_count"] != "1" {
		t.Errorf("refresh_count = %q, want 1", second["refresh_count"])
	}
	// Fixed expiry: same issue time, one hour less to live.
	if second["refresh_token_issued_at"] != first["refresh_token_issued_at"] {
		t.Errorf("refresh_token_issued_at moved from %s to %s; UPS keeps the original", first["refresh_token_issued_at"], second["refresh_token_issued_at"])
	}
	if want := strconv.Itoa(5184000 - 3600 - 1); second["refresh_token_expires_in"] != want {
		t.Errorf("refresh_token_expires_in = %s, want %s (counting down, not reset)", second["refresh_token_expires_in"], want)
	}
	if want := strconv.FormatInt(clock.Now().UnixMilli(), 10); second["issued_at"] != want {
		t.Errorf("issued_at = %s, want the refresh time %s", second["issued_at"], want)
	}

	// The spent token is refused with UPS's exact error.
	wantEnvelope(t, serve(s, refreshRequest("wwwcie.ups.com", first["refresh_token"])), http.StatusUnauthorized, ups.CodeInvalidRequest, ups.MsgInvalidRefreshToken)

	// The new one works and counts on.
	res = serve(s, refreshRequest("wwwcie.ups.com", second["refresh_token"]))
	if res.Status != http.StatusOK {
		t.Fatalf("refreshing with the new refresh token: %d %s", res.Status, res.Body)
	}
	if third := stringFields(t, res.Body); third["refresh_count"] != "2" {
		t.Errorf("refresh_count after two refreshes = %q, want 2", third["refresh_count"])
	}
	if st := s.Stats(); st.Refreshes != 2 || st.RefreshRejected != 1 {
		t.Errorf("stats = %+v, want 2 refreshes and 1 rejection", st)
	}
}

func TestOldAccessTokenStaysValidAfterRefreshUntilItsOwnExpiry(t *testing.T) {
	s, clock := newTestServer(t, func(o *Options) { o.AccessTTL = time.Hour })
	first := login(t, s)
	clock.Advance(30 * time.Minute)
	if res := serve(s, refreshRequest("h", first["refresh_token"])); res.Status != http.StatusOK {
		t.Fatalf("refresh: %d %s", res.Status, res.Body)
	}
	rate := func() response {
		return serve(s, apiRequest(http.MethodPost, "h", "/api/rating/v2409/Rate", first["access_token"], rateBody("03", "US", "1")))
	}
	if res := rate(); res.Status != http.StatusOK {
		t.Errorf("old access token right after refresh: %d %s; it should live until its expiry", res.Status, res.Body)
	}
	clock.Advance(30 * time.Minute)
	wantEnvelope(t, rate(), http.StatusUnauthorized, ups.CodeInvalidAuth, ups.MsgInvalidAuth)
}

func TestRefreshTokenExpiryIsFixedAtFirstIssue(t *testing.T) {
	s, clock := newTestServer(t, func(o *Options) { o.AccessTTL = time.Hour; o.RefreshTTL = 10 * time.Hour })
	tok := login(t, s)
	if tok["refresh_token_expires_in"] != "35999" {
		t.Fatalf("refresh_token_expires_in = %s, want 35999 for a 10h lifetime", tok["refresh_token_expires_in"])
	}
	clock.Advance(6 * time.Hour)
	res := serve(s, refreshRequest("h", tok["refresh_token"]))
	if res.Status != http.StatusOK {
		t.Fatalf("refresh inside the lifetime: %d %s", res.Status, res.Body)
	}
	tok = stringFields(t, res.Body)
	if tok["refresh_token_expires_in"] != "14399" {
		t.Errorf("after 6h refresh_token_expires_in = %s, want 14399 (4h left of the original 10h)", tok["refresh_token_expires_in"])
	}
	clock.Advance(4 * time.Hour)
	wantEnvelope(t, serve(s, refreshRequest("h", tok["refresh_token"])), http.StatusUnauthorized, ups.CodeInvalidRequest, ups.MsgInvalidRefreshToken)
}

func TestRefreshRefusals(t *testing.T) {
	tests := []struct {
		name    string
		req     func(s *Server, tok map[string]string) *http.Request
		status  int
		code    string
		message string
		counted bool // counts as RefreshRejected
	}{
		{"unknown refresh token", func(s *Server, _ map[string]string) *http.Request { return refreshRequest("h", "made-up") }, 401, ups.CodeInvalidRequest, ups.MsgInvalidRefreshToken, true},
		{"missing refresh token", func(s *Server, _ map[string]string) *http.Request { return refreshRequest("h", "") }, 401, ups.CodeInvalidRequest, ups.MsgInvalidRefreshToken, true},
		{"refresh token of another client", func(s *Server, tok map[string]string) *http.Request {
			r := refreshRequest("h", tok["refresh_token"])
			r.SetBasicAuth(otherID, otherSecret)
			return r
		}, 401, ups.CodeInvalidRequest, ups.MsgInvalidRefreshToken, true},
		{"rejected by RejectRefreshTokens", func(s *Server, tok map[string]string) *http.Request {
			s.RejectRefreshTokens()
			return refreshRequest("h", tok["refresh_token"])
		}, 401, ups.CodeInvalidRequest, ups.MsgInvalidRefreshToken, true},
		{"wrong client secret", func(s *Server, tok map[string]string) *http.Request {
			r := refreshRequest("h", tok["refresh_token"])
			r.SetBasicAuth(confID, "wrong")
			return r
		}, 401, ups.CodeInvalidClient, ups.MsgInvalidClient, false},
		{"no authorization header", func(s *Server, tok map[string]string) *http.Request {
			r := refreshRequest("h", tok["refresh_token"])
			r.Header.Del("Authorization")
			return r
		}, 401, ups.CodeInvalidRequest, ups.MsgMissingAuthHeader, false},
		{"grant type authorization_code on refresh", func(s *Server, tok map[string]string) *http.Request {
			r := formRequest("h", ups.RefreshPath, url.Values{"grant_type": {"authorization_code"}, "refresh_token": {tok["refresh_token"]}})
			r.SetBasicAuth(confID, confSecret)
			return r
		}, 400, ups.CodeInvalidRequest, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t)
			tok := login(t, s)
			wantEnvelope(t, serve(s, tt.req(s, tok)), tt.status, tt.code, tt.message)
			want := 0
			if tt.counted {
				want = 1
			}
			if st := s.Stats(); st.RefreshRejected != want || st.Refreshes != 0 {
				t.Errorf("stats = %+v, want RefreshRejected %d and no refresh", st, want)
			}
		})
	}
}

func TestRejectRefreshTokensSparesTokensIssuedAfterwards(t *testing.T) {
	s, _ := newTestServer(t)
	s.RejectRefreshTokens()
	tok := login(t, s)
	if res := serve(s, refreshRequest("h", tok["refresh_token"])); res.Status != http.StatusOK {
		t.Errorf("a refresh token issued after RejectRefreshTokens: %d %s", res.Status, res.Body)
	}
}

func TestPublicClientRefreshesWithClientIDInBody(t *testing.T) {
	s, _ := newTestServer(t)
	code := s.IssueCode(publicID, redirectURI, challengeFor(testVerifier))
	res := serve(s, formRequest("h", ups.TokenPath, pkceForm(code, publicID, testVerifier)))
	tok := stringFields(t, res.Body)
	req := formRequest("h", ups.RefreshPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"]}, "client_id": {publicID}})
	if res := serve(s, req); res.Status != http.StatusOK {
		t.Errorf("public client refresh: %d %s", res.Status, res.Body)
	}
	// A confidential client may not skip its secret that way.
	conf := login(t, s)
	req = formRequest("h", ups.RefreshPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {conf["refresh_token"]}, "client_id": {confID}})
	wantEnvelope(t, serve(s, req), 401, ups.CodeInvalidClient, ups.MsgInvalidClient)
}

func TestTokensMintedForOneUPSEnvironmentAreRefusedByTheOther(t *testing.T) {
	s, _ := newTestServer(t)
	req := formRequest(ups.TestHost, ups.TokenPath, url.Values{"grant_type": {"client_credentials"}})
	req.SetBasicAuth(confID, confSecret)
	tok := stringFields(t, serve(s, req).Body)
	for host, want := range map[string]int{
		ups.TestHost:                200,
		ups.TestHost + ":443":       200,
		"127.0.0.1:8443":            200, // any non-UPS host is environment-neutral
		ups.ProductionHost:          401,
		"ONLINETOOLS.UPS.COM.":      401,
		ups.ProductionHost + ":443": 401,
	} {
		res := serve(s, apiRequest(http.MethodPost, host, "/api/rating/v2409/Rate", tok["access_token"], rateBody("03", "US", "1")))
		if res.Status != want {
			t.Errorf("test-environment token on host %s: status %d, want %d", host, res.Status, want)
		}
	}

	// Refresh tokens are bound the same way.
	tokens := stringFields(t, exchangeAt(t, s, ups.ProductionHost).Body)
	wantEnvelope(t, serve(s, refreshRequest(ups.TestHost, tokens["refresh_token"])), 401, ups.CodeInvalidRequest, ups.MsgInvalidRefreshToken)
	if res := serve(s, refreshRequest(ups.ProductionHost, tokens["refresh_token"])); res.Status != http.StatusOK {
		t.Errorf("refresh on the issuing environment after a refused cross-environment attempt: %d %s", res.Status, res.Body)
	}
}

func exchangeAt(t *testing.T, s *Server, host string) response {
	t.Helper()
	req := formRequest(host, ups.TokenPath, codeForm(s.IssueCode(confID, redirectURI, "")))
	req.SetBasicAuth(confID, confSecret)
	res := serve(s, req)
	if res.Status != http.StatusOK {
		t.Fatalf("exchange at %s: %d %s", host, res.Status, res.Body)
	}
	return res
}

func TestTokenEndpointRejectsMalformedRequests(t *testing.T) {
	basic := func(r *http.Request) *http.Request { r.SetBasicAuth(confID, confSecret); return r }
	tests := []struct {
		name   string
		req    func() *http.Request
		status int
	}{
		{"json body instead of a form", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "http://h"+ups.TokenPath, strings.NewReader(`{"grant_type":"client_credentials"}`))
			r.Header.Set("Content-Type", "application/json")
			return basic(r)
		}, 400},
		{"form without content type", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "http://h"+ups.TokenPath, strings.NewReader("grant_type=client_credentials"))
			return basic(r)
		}, 400},
		{"repeated grant type", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "http://h"+ups.TokenPath, strings.NewReader("grant_type=client_credentials&grant_type=authorization_code"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return basic(r)
		}, 400},
		{"broken percent encoding", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "http://h"+ups.TokenPath, strings.NewReader("grant_type=client%ZZcredentials"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return basic(r)
		}, 400},
		{"missing grant type", func() *http.Request { return basic(formRequest("h", ups.TokenPath, url.Values{})) }, 400},
		{"refresh grant belongs on the refresh endpoint", func() *http.Request {
			return basic(formRequest("h", ups.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}))
		}, 400},
		{"GET on the token endpoint", func() *http.Request { return basic(httptest.NewRequest(http.MethodGet, "http://h"+ups.TokenPath, nil)) }, 405},
		{"oversized body", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "http://h"+ups.TokenPath, strings.NewReader("grant_type=client_credentials&pad="+strings.Repeat("a", formBodyLimit)))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return basic(r)
		}, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t)
			res := serve(s, tt.req())
			code := ups.CodeInvalidRequest
			if tt.status != 400 {
				code = strconv.Itoa(tt.status)
			}
			wantEnvelope(t, res, tt.status, code, "")
			if st := s.Stats(); st.ClientCredentialsGrants+st.AuthorizationCodeGrants != 0 {
				t.Errorf("a malformed request granted a token: %+v", st)
			}
		})
	}
}

func TestUnknownNonAPIPathIsA404Envelope(t *testing.T) {
	s, _ := newTestServer(t)
	for _, p := range []string{"/", "/security/v1/oauth/introspect", "/rest/Rate"} {
		wantEnvelope(t, serve(s, httptest.NewRequest(http.MethodGet, "http://h"+p, nil)), 404, "404", "")
	}
}

func TestLifetimeSecondsMatchesUPSOneSecondShortConvention(t *testing.T) {
	tests := []struct {
		name string
		in   time.Duration
		want string
	}{
		{"four hours", 4 * time.Hour, "14399"},
		{"sixty days", 60 * 24 * time.Hour, "5183999"},
		{"seven days as seen in CIE", 7 * 24 * time.Hour, "604799"},
		{"one hour", time.Hour, "3599"},
		{"one second stays usable", time.Second, "1"},
		{"fraction of a second", 400 * time.Millisecond, "0"},
		{"expired", -time.Minute, "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ups.FormatLifetime(tt.in); got != tt.want {
				t.Errorf("ups.FormatLifetime(%s) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}
