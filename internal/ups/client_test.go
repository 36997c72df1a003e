package ups

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// A client secret with every character x/oauth2's header style would
// URL-escape differently from UPS's SDK.
const (
	testClientID = "MyUpsApp-Client_ID"
	testSecret   = "s3cr+t%2F with space"
)

// testNow is the fake clock's time: receipt time for every response.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// upsTokenJSON is a UPS token response as UPS sends it: all strings.
const upsTokenJSON = `{
 "refresh_token_expires_in": "5183999",
 "refresh_token_status": "approved",
 "token_type": "Bearer",
 "issued_at": "1772366400000",
 "client_id": "MyUpsApp-Client_ID",
 "access_token": "ACCESS-abc123",
 "refresh_token": "REFRESH-new456",
 "scope": "",
 "refresh_token_issued_at": "1772366400000",
 "expires_in": "14399",
 "refresh_count": "0",
 "status": "approved"
}`

// recorded is what arrived at the fake UPS, byte for byte.
type recorded struct {
	Method, Path, ContentType string
	Authorization             []string // raw header values
	MerchantID                string
	Body                      string
	Form                      url.Values
}

// fakeUPS records every request and answers with respond.
type fakeUPS struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recorded
}

func newFakeUPS(t *testing.T, respond http.HandlerFunc) *fakeUPS {
	t.Helper()
	f := &fakeUPS{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		f.mu.Lock()
		f.requests = append(f.requests, recorded{
			Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"),
			Authorization: r.Header.Values("Authorization"), MerchantID: r.Header.Get("x-merchant-id"),
			Body: string(body), Form: form,
		})
		f.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		respond(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeUPS) recorded() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

// only returns the single request that arrived, failing otherwise.
func (f *fakeUPS) only(t *testing.T) recorded {
	t.Helper()
	rs := f.recorded()
	if len(rs) != 1 {
		t.Fatalf("UPS received %d requests, want exactly 1", len(rs))
	}
	return rs[0]
}

func answer(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func answerToken() http.HandlerFunc { return answer(200, "application/json", upsTokenJSON) }

func newTestClient(t *testing.T, f *fakeUPS, mutate func(*Config)) *Client {
	t.Helper()
	base, err := url.Parse(f.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		BaseURL:      base,
		ClientID:     testClientID,
		ClientSecret: testSecret,
		RedirectURI:  "https://127.0.0.1/upscallback",
		HTTPClient:   &http.Client{Timeout: 5 * time.Second},
		Clock:        func() time.Time { return testNow },
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

// basicCredentials decodes a Basic header without any unescaping.
func basicCredentials(t *testing.T, header []string) string {
	t.Helper()
	if len(header) != 1 || !strings.HasPrefix(header[0], "Basic ") {
		t.Fatalf("Authorization header = %q, want one Basic header", header)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(header[0], "Basic "))
	if err != nil {
		t.Fatalf("Authorization header is not base64: %v", err)
	}
	return string(raw)
}

func TestExchangeSendsRawBasicCredentialsLikeUPSSDKEvenWhenSecretHasPlusPercentAndSpace(t *testing.T) {
	f := newFakeUPS(t, answerToken())
	c := newTestClient(t, f, nil)

	tok, err := c.Exchange(context.Background(), "123abc", "")
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.AccessToken != "ACCESS-abc123" || tok.RefreshToken != "REFRESH-new456" {
		t.Errorf("token = %v, want the pair from the response", tok)
	}
	r := f.only(t)
	if got, want := basicCredentials(t, r.Authorization), testClientID+":"+testSecret; got != want {
		t.Errorf("Basic credentials = %q, want raw %q (as UPS's SDK sends; x/oauth2 would send %q)",
			got, want, url.QueryEscape(testClientID)+":"+url.QueryEscape(testSecret))
	}
	if r.Method != http.MethodPost || r.Path != TokenPath || r.ContentType != "application/x-www-form-urlencoded" {
		t.Errorf("request = %s %s (%s), want POST %s form", r.Method, r.Path, r.ContentType, TokenPath)
	}
	want := url.Values{"grant_type": {"authorization_code"}, "code": {"123abc"}, "redirect_uri": {"https://127.0.0.1/upscallback"}}
	if r.Form.Encode() != want.Encode() {
		t.Errorf("body = %q, want %q (no credentials in the body)", r.Body, want.Encode())
	}
}

func TestExchangeWithPKCESendsNoAuthorizationHeaderButClientIDAndVerifierInBody(t *testing.T) {
	f := newFakeUPS(t, answerToken())
	c := newTestClient(t, f, func(cfg *Config) { cfg.ClientSecret = "" })
	if !c.UsesPKCE() {
		t.Fatal("a client without secret must use PKCE")
	}

	if _, err := c.Exchange(context.Background(), "123abc", "the-verifier-0123456789012345678901234567890"); err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	r := f.only(t)
	if len(r.Authorization) != 0 {
		t.Errorf("Authorization header = %q, want none with PKCE", r.Authorization)
	}
	want := url.Values{
		"grant_type": {"authorization_code"}, "code": {"123abc"}, "redirect_uri": {"https://127.0.0.1/upscallback"},
		"client_id": {testClientID}, "code_verifier": {"the-verifier-0123456789012345678901234567890"},
	}
	if r.Form.Encode() != want.Encode() {
		t.Errorf("body = %q, want %q", r.Body, want.Encode())
	}
}

func TestPKCEExchangeWithoutVerifierIsRefusedBeforeSpendingTheCode(t *testing.T) {
	f := newFakeUPS(t, answerToken())
	c := newTestClient(t, f, func(cfg *Config) { cfg.ClientSecret = "" })
	if _, err := c.Exchange(context.Background(), "123abc", ""); err == nil {
		t.Fatal("Exchange without verifier succeeded, want an error")
	}
	if n := len(f.recorded()); n != 0 {
		t.Errorf("UPS received %d requests, want none", n)
	}
}

func TestRefreshPostsToTheRefreshEndpointWithRawBasicAuth(t *testing.T) {
	f := newFakeUPS(t, answerToken())
	c := newTestClient(t, f, nil)

	tok, err := c.Refresh(context.Background(), "REFRESH-old")
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if tok.RefreshToken != "REFRESH-new456" {
		t.Errorf("refresh token = %q, want the new one", tok.RefreshToken)
	}
	r := f.only(t)
	if r.Path != RefreshPath {
		t.Errorf("path = %q, want %q (not the token endpoint)", r.Path, RefreshPath)
	}
	if got := basicCredentials(t, r.Authorization); got != testClientID+":"+testSecret {
		t.Errorf("Basic credentials = %q, want raw id:secret", got)
	}
	want := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"REFRESH-old"}}
	if r.Form.Encode() != want.Encode() {
		t.Errorf("body = %q, want %q", r.Body, want.Encode())
	}
}

func TestClientCredentialsSendsMerchantIDAndBasicAuthToTheTokenEndpoint(t *testing.T) {
	f := newFakeUPS(t, answer(200, "application/json",
		`{"token_type":"Bearer","issued_at":"1772366400000","client_id":"x","access_token":"CC-token","scope":"","expires_in":"14399","refresh_count":"0","status":"approved"}`))
	c := newTestClient(t, f, func(cfg *Config) { cfg.MerchantID = "W599Y7"; cfg.RedirectURI = "" })

	tok, err := c.ClientCredentials(context.Background())
	if err != nil {
		t.Fatalf("ClientCredentials: %v", err)
	}
	if tok.AccessToken != "CC-token" || tok.RefreshToken != "" || !tok.RefreshExpiresAt.IsZero() {
		t.Errorf("token = %v, want an access token and no refresh token", tok)
	}
	r := f.only(t)
	if r.Path != TokenPath || r.MerchantID != "W599Y7" {
		t.Errorf("request to %q with x-merchant-id %q, want %q and W599Y7", r.Path, r.MerchantID, TokenPath)
	}
	if got := basicCredentials(t, r.Authorization); got != testClientID+":"+testSecret {
		t.Errorf("Basic credentials = %q, want raw id:secret", got)
	}
	if want := "grant_type=client_credentials"; r.Body != want {
		t.Errorf("body = %q, want %q", r.Body, want)
	}
}

func TestMerchantIDIsSentOnlyWithClientCredentials(t *testing.T) {
	f := newFakeUPS(t, answerToken())
	c := newTestClient(t, f, func(cfg *Config) { cfg.MerchantID = "W599Y7" })
	if _, err := c.Refresh(context.Background(), "REFRESH-old"); err != nil {
		t.Fatal(err)
	}
	if r := f.only(t); r.MerchantID != "" {
		t.Errorf("refresh carried x-merchant-id %q, want none", r.MerchantID)
	}
}

func TestAFailedTokenRequestIsSentExactlyOnceSoSingleUseGrantsAreNotSpentTwice(t *testing.T) {
	responses := map[string]http.HandlerFunc{
		"400 envelope":      answer(400, "application/json", string(EncodeEnvelope("10400", "Invalid Refresh Token"))),
		"401 html":          answer(401, "text/html", "<html>denied</html>"),
		"500 envelope":      answer(500, "application/json", string(EncodeEnvelope("10500", "Internal server error"))),
		"200 html":          answer(200, "text/html", "<html>maintenance</html>"),
		"200 without token": answer(200, "application/json", `{"status":"approved"}`),
		"307 to token again": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.Path, http.StatusTemporaryRedirect)
		},
	}
	calls := map[string]func(*Client) error{
		"exchange": func(c *Client) error { _, err := c.Exchange(context.Background(), "123abc", ""); return err },
		"refresh":  func(c *Client) error { _, err := c.Refresh(context.Background(), "REFRESH-old"); return err },
		"client credentials": func(c *Client) error {
			_, err := c.ClientCredentials(context.Background())
			return err
		},
	}
	for rname, respond := range responses {
		for cname, call := range calls {
			t.Run(cname+" answered "+rname, func(t *testing.T) {
				f := newFakeUPS(t, respond)
				c := newTestClient(t, f, nil)
				if err := call(c); err == nil {
					t.Fatal("call succeeded, want an error")
				}
				if n := len(f.recorded()); n != 1 {
					t.Errorf("UPS received %d requests, want exactly 1", n)
				}
			})
		}
	}
}

func TestTokenRequestErrorsAreClassifiedForRetryOrRelogin(t *testing.T) {
	tests := []struct {
		name                                string
		respond                             http.HandlerFunc
		wantStatus                          int
		wantCode                            string
		wantTemporary, wantInvalid, wantBad bool // Temporary, InvalidGrant, InvalidClient
		wantBodyPrefix                      string
	}{
		{
			name:       "spent refresh token 401 10400 Invalid Refresh Token needs a new login",
			respond:    answer(401, "application/json", string(EncodeEnvelope(CodeInvalidRequest, "Invalid Refresh Token"))),
			wantStatus: 401, wantCode: CodeInvalidRequest, wantInvalid: true,
		},
		{
			name:       "400 10400 without message counts as a rejected grant",
			respond:    answer(400, "application/json", string(EncodeEnvelope(CodeInvalidRequest, ""))),
			wantStatus: 400, wantCode: CodeInvalidRequest, wantInvalid: true,
		},
		{
			name:       "RFC 6749 invalid_grant body is a rejected grant",
			respond:    answer(400, "application/json", `{"error":"invalid_grant","error_description":"expired"}`),
			wantStatus: 400, wantCode: "invalid_grant", wantInvalid: true,
		},
		{
			name:       "bad client secret 401 10400 Authorization Header is a credentials problem, not a spent grant",
			respond:    answer(401, "application/json", string(EncodeEnvelope(CodeInvalidRequest, "Invalid/Missing Authorization Header"))),
			wantStatus: 401, wantCode: CodeInvalidRequest, wantBad: true,
		},
		{
			name:       "unknown client id 10401",
			respond:    answer(401, "application/json", string(EncodeEnvelope(CodeInvalidClient, "ClientId is Invalid"))),
			wantStatus: 401, wantCode: CodeInvalidClient, wantBad: true,
		},
		{
			name:       "redirect URI mismatch 10400 is not a spent grant",
			respond:    answer(400, "application/json", string(EncodeEnvelope(CodeInvalidRequest, "Invalid Redirect URL"))),
			wantStatus: 400, wantCode: CodeInvalidRequest,
		},
		{
			name:       "503 is temporary",
			respond:    answer(503, "application/json", string(EncodeEnvelope("10500", "Service Unavailable"))),
			wantStatus: 503, wantCode: "10500", wantTemporary: true,
		},
		{
			name:       "429 10429 rate limit is temporary",
			respond:    answer(429, "application/json", string(EncodeEnvelope(CodeTooManyRequests, "Too Many Requests"))),
			wantStatus: 429, wantCode: CodeTooManyRequests, wantTemporary: true,
		},
		{
			name:       "502 HTML page is temporary and keeps the start of the body on one line",
			respond:    answer(502, "text/html", "<html>\n<head><title>502 Bad Gateway</title></head>\n"+strings.Repeat("x", 500)),
			wantStatus: 502, wantTemporary: true,
			wantBodyPrefix: "<html> <head><title>502 Bad Gateway</title></head>",
		},
		{
			name:       "403 blocked merchant is neither temporary nor a spent grant",
			respond:    answer(403, "application/json", string(EncodeEnvelope("10403", "Blocked Merchant"))),
			wantStatus: 403, wantCode: "10403",
		},
		{
			name:       "a redirect is reported, not followed",
			respond:    func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) },
			wantStatus: 302,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeUPS(t, tt.respond)
			c := newTestClient(t, f, nil)
			_, err := c.Refresh(context.Background(), "REFRESH-old")
			var ue *Error
			if !errors.As(err, &ue) {
				t.Fatalf("error = %v (%T), want a *ups.Error", err, err)
			}
			if ue.StatusCode != tt.wantStatus || ue.Code != tt.wantCode {
				t.Errorf("status, code = %d, %q; want %d, %q", ue.StatusCode, ue.Code, tt.wantStatus, tt.wantCode)
			}
			if ue.Temporary() != tt.wantTemporary || IsTemporary(err) != tt.wantTemporary {
				t.Errorf("Temporary() = %v, IsTemporary = %v; want %v", ue.Temporary(), IsTemporary(err), tt.wantTemporary)
			}
			if ue.InvalidGrant() != tt.wantInvalid {
				t.Errorf("InvalidGrant() = %v, want %v", ue.InvalidGrant(), tt.wantInvalid)
			}
			if ue.InvalidClient() != tt.wantBad {
				t.Errorf("InvalidClient() = %v, want %v", ue.InvalidClient(), tt.wantBad)
			}
			if !strings.HasPrefix(ue.Body, tt.wantBodyPrefix) || len(ue.Body) > bodySnippetLen || strings.ContainsAny(ue.Body, "\r\n") {
				t.Errorf("Body = %q, want a one-line snippet of at most %d bytes starting %q", ue.Body, bodySnippetLen, tt.wantBodyPrefix)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error text spans lines: %q", err)
			}
		})
	}
}

func TestErrorTextNeverContainsTheSecretsOfTheRequestEvenWhenUPSEchoesThem(t *testing.T) {
	echo := func(status int, envelope bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			echoed := r.Header.Get("Authorization") + " " + string(body) + " " + testSecret
			if envelope {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				w.Write(EncodeEnvelope(CodeInvalidRequest, "bad request: "+echoed))
				return
			}
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(status)
			io.WriteString(w, echoed)
		}
	}
	for name, respond := range map[string]http.HandlerFunc{
		"envelope message": echo(400, true),
		"plain body":       echo(500, false),
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeUPS(t, respond)
			c := newTestClient(t, f, nil)
			_, err := c.Refresh(context.Background(), "REFRESH-secret-value")
			if err == nil {
				t.Fatal("Refresh succeeded, want an error")
			}
			text := fmt.Sprintf("%v %+v %#v", err, err, err)
			basic := base64.StdEncoding.EncodeToString([]byte(testClientID + ":" + testSecret))
			for _, secret := range []string{testSecret, url.QueryEscape(testSecret), "REFRESH-secret-value", basic} {
				if strings.Contains(text, secret) {
					t.Errorf("error text contains secret %q: %s", secret, text)
				}
			}
		})
	}
}

func TestTokenFieldsAreConvertedWithTimesFromTheInjectedClock(t *testing.T) {
	f := newFakeUPS(t, answerToken())
	c := newTestClient(t, f, nil)
	tok, err := c.Exchange(context.Background(), "123abc", "")
	if err != nil {
		t.Fatal(err)
	}
	want := Token{
		TokenType: "Bearer", AccessToken: "ACCESS-abc123", RefreshToken: "REFRESH-new456",
		Scope: "", ClientID: testClientID, Status: "approved", RefreshTokenStatus: "approved",
		IssuedAt:         time.UnixMilli(1772366400000).UTC(),
		ExpiresAt:        testNow.Add(14399 * time.Second),
		RefreshIssuedAt:  time.UnixMilli(1772366400000).UTC(),
		RefreshExpiresAt: testNow.Add(5183999 * time.Second),
	}
	if tok != want {
		t.Errorf("token =\n %+v\nwant\n %+v", tok, want)
	}
}

func TestAJSONTokenSentAsTextPlainIsStillAccepted(t *testing.T) {
	// x/oauth2 would read text/plain as a query string and find no token.
	f := newFakeUPS(t, answer(200, "text/plain", upsTokenJSON))
	c := newTestClient(t, f, nil)
	tok, err := c.Refresh(context.Background(), "REFRESH-old")
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if tok.AccessToken != "ACCESS-abc123" {
		t.Errorf("access token = %q", tok.AccessToken)
	}
}

func TestRefreshResponseWithoutRefreshTokenDoesNotHandBackTheSpentOne(t *testing.T) {
	f := newFakeUPS(t, answer(200, "application/json", `{"access_token":"A","expires_in":"3600"}`))
	c := newTestClient(t, f, nil)
	tok, err := c.Refresh(context.Background(), "REFRESH-spent")
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if tok.RefreshToken != "" {
		t.Errorf("refresh token = %q, want empty (the old one is spent)", tok.RefreshToken)
	}
}

func TestGarbledRefreshResponseStillHandsOverTheNewRefreshToken(t *testing.T) {
	// expires_in "soon" makes x/oauth2 fail outright; the new refresh token
	// in the same body is the only valid one left.
	f := newFakeUPS(t, answer(200, "application/json",
		`{"access_token":"A","expires_in":"soon","refresh_token":"REFRESH-new","refresh_token_expires_in":"5183999"}`))
	c := newTestClient(t, f, nil)
	tok, err := c.Refresh(context.Background(), "REFRESH-old")
	if !errors.Is(err, ErrMalformedResponse) || !IsTemporary(err) {
		t.Fatalf("error = %v, want a temporary ErrMalformedResponse", err)
	}
	if tok.RefreshToken != "REFRESH-new" || tok.RefreshExpiresAt != testNow.Add(5183999*time.Second) {
		t.Errorf("token = %v, want the new refresh token and its expiry", tok)
	}
	if strings.Contains(err.Error(), "REFRESH-new") {
		t.Errorf("error text contains the refresh token: %v", err)
	}
}

func TestMalformedSuccessfulResponsesAreTemporaryErrors(t *testing.T) {
	tests := []struct{ name, contentType, body string }{
		{"HTML page with 200", "text/html", "<!DOCTYPE html><html><body>Service Unavailable</body></html>"},
		{"no access token", "application/json", `{"token_type":"Bearer","expires_in":"14399"}`},
		{"non-numeric expires_in", "application/json", `{"access_token":"A","expires_in":"four hours"}`},
		{"non-numeric refresh_count", "application/json", `{"access_token":"A","expires_in":"14399","refresh_count":"many"}`},
		{"empty body", "application/json", ""},
		{"JSON array", "application/json", `["access_token"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeUPS(t, answer(200, tt.contentType, tt.body))
			c := newTestClient(t, f, nil)
			_, err := c.Exchange(context.Background(), "123abc", "")
			if !errors.Is(err, ErrMalformedResponse) {
				t.Fatalf("error = %v, want ErrMalformedResponse", err)
			}
			if !IsTemporary(err) {
				t.Errorf("IsTemporary(%v) = false, want true", err)
			}
		})
	}
}

func TestNetworkFailuresAreTemporaryButCancellationIsNot(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		f := newFakeUPS(t, answerToken())
		c := newTestClient(t, f, nil)
		f.Close()
		_, err := c.Refresh(context.Background(), "REFRESH-old")
		if err == nil || !IsTemporary(err) {
			t.Errorf("error = %v, want a temporary error", err)
		}
	})
	t.Run("client timeout", func(t *testing.T) {
		release := make(chan struct{})
		f := newFakeUPS(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		})
		defer close(release)
		c := newTestClient(t, f, func(cfg *Config) { cfg.HTTPClient = &http.Client{Timeout: 50 * time.Millisecond} })
		_, err := c.Refresh(context.Background(), "REFRESH-old")
		if err == nil || !IsTemporary(err) {
			t.Errorf("error = %v, want a temporary error", err)
		}
	})
	t.Run("context deadline", func(t *testing.T) {
		release := make(chan struct{})
		f := newFakeUPS(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		})
		defer close(release)
		c := newTestClient(t, f, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := c.Refresh(ctx, "REFRESH-old")
		if !errors.Is(err, context.DeadlineExceeded) || !IsTemporary(err) {
			t.Errorf("error = %v, want a temporary deadline error", err)
		}
	})
	t.Run("canceled by the caller", func(t *testing.T) {
		f := newFakeUPS(t, answerToken())
		c := newTestClient(t, f, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.Refresh(ctx, "REFRESH-old")
		if !errors.Is(err, context.Canceled) || IsTemporary(err) {
			t.Errorf("error = %v, want a non-temporary cancellation", err)
		}
	})
}

func TestIsTemporaryIsFalseForNilAndPlainErrors(t *testing.T) {
	if IsTemporary(nil) || IsTemporary(errors.New("config broken")) {
		t.Error("IsTemporary is true for nil or a plain error")
	}
}

func TestConcurrentRequestsEachGetTheirOwnToken(t *testing.T) {
	f := newFakeUPS(t, func(w http.ResponseWriter, r *http.Request) {
		rt := r.PostFormValue("refresh_token")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"A-%s","refresh_token":"R-%s","expires_in":"3600"}`, rt, rt)
	})
	c := newTestClient(t, f, nil)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			rt := fmt.Sprint(i)
			tok, err := c.Refresh(context.Background(), rt)
			if err != nil {
				t.Errorf("Refresh(%s): %v", rt, err)
				return
			}
			if tok.AccessToken != "A-"+rt || tok.RefreshToken != "R-"+rt {
				t.Errorf("Refresh(%s) got %q/%q: responses were mixed up", rt, tok.AccessToken, tok.RefreshToken)
			}
		})
	}
	wg.Wait()
}

func TestAuthorizeURL(t *testing.T) {
	base, _ := url.Parse("https://wwwcie.ups.com")
	tests := []struct {
		name             string
		secret, scope    string
		state, challenge string
		want             url.Values
	}{
		{
			name: "plain auth code with state", secret: "s", state: "st4te",
			want: url.Values{"client_id": {testClientID}, "redirect_uri": {"https://127.0.0.1/upscallback"}, "response_type": {"code"}, "state": {"st4te"}},
		},
		{
			name: "PKCE sends code_challenge and no code_challenge_method", state: "st4te", challenge: "chal-lenge",
			want: url.Values{"client_id": {testClientID}, "redirect_uri": {"https://127.0.0.1/upscallback"}, "response_type": {"code"}, "state": {"st4te"}, "code_challenge": {"chal-lenge"}},
		},
		{
			name: "scope is passed through space-separated", secret: "s", scope: "read write",
			want: url.Values{"client_id": {testClientID}, "redirect_uri": {"https://127.0.0.1/upscallback"}, "response_type": {"code"}, "scope": {"read write"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(Config{BaseURL: base, ClientID: testClientID, ClientSecret: tt.secret, Scope: tt.scope,
				RedirectURI: "https://127.0.0.1/upscallback", HTTPClient: http.DefaultClient})
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(c.AuthorizeURL(tt.state, tt.challenge))
			if err != nil {
				t.Fatal(err)
			}
			if got := u.Scheme + "://" + u.Host + u.Path; got != "https://wwwcie.ups.com"+AuthorizePath {
				t.Errorf("endpoint = %q, want %q", got, "https://wwwcie.ups.com"+AuthorizePath)
			}
			if u.Query().Encode() != tt.want.Encode() {
				t.Errorf("query = %q, want %q", u.Query().Encode(), tt.want.Encode())
			}
		})
	}
}

func TestNewClientRejectsConfigurationsThatCannotWork(t *testing.T) {
	mustURL := func(s string) *url.URL { u, _ := url.Parse(s); return u }
	valid := func() Config {
		return Config{BaseURL: mustURL("https://wwwcie.ups.com"), ClientID: "id", ClientSecret: "s", HTTPClient: http.DefaultClient}
	}
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"no HTTP client", func(c *Config) { c.HTTPClient = nil }},
		{"no base URL", func(c *Config) { c.BaseURL = nil }},
		{"ftp base URL", func(c *Config) { c.BaseURL = mustURL("ftp://wwwcie.ups.com") }},
		{"relative base URL", func(c *Config) { c.BaseURL = mustURL("/security") }},
		{"plain http to the real production host", func(c *Config) { c.BaseURL = mustURL("http://onlinetools.ups.com") }},
		{"user info in base URL", func(c *Config) { c.BaseURL = mustURL("https://u:p@wwwcie.ups.com") }},
		{"empty client id", func(c *Config) { c.ClientID = "" }},
		{"colon in client id with Basic auth", func(c *Config) { c.ClientID = "a:b" }},
		{"relative redirect URI", func(c *Config) { c.RedirectURI = "/upscallback" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.mutate(&cfg)
			if _, err := NewClient(cfg); err == nil {
				t.Error("NewClient succeeded, want an error")
			}
		})
	}
	t.Run("the valid base config is accepted", func(t *testing.T) {
		if _, err := NewClient(valid()); err != nil {
			t.Error(err)
		}
	})
}

func TestBaseURLPathPrefixIsKept(t *testing.T) {
	f := newFakeUPS(t, answerToken())
	c := newTestClient(t, f, func(cfg *Config) { cfg.BaseURL = cfg.BaseURL.JoinPath("/ups/") })
	if _, err := c.Refresh(context.Background(), "R"); err != nil {
		t.Fatal(err)
	}
	if r := f.only(t); r.Path != "/ups"+RefreshPath {
		t.Errorf("path = %q, want %q", r.Path, "/ups"+RefreshPath)
	}
}
