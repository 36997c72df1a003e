package ups

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Config configures a Client for one UPS application (client id) on one
// UPS host.
type Config struct {
	// BaseURL is the UPS host, e.g. https://wwwcie.ups.com, or the
	// simulator's http://127.0.0.1:PORT. A path prefix is kept; query,
	// fragment and user info are refused.
	BaseURL *url.URL
	// ClientID is the UPS application's client id.
	ClientID string
	// ClientSecret is the application's secret. Empty means a PKCE public
	// client: no Basic header, client_id and code_verifier in the body.
	ClientSecret string
	// RedirectURI must match the one registered with UPS exactly. Required
	// by AuthorizeURL and Exchange; unused by client credentials.
	RedirectURI string
	// Scope is sent as-is (space-separated) when non-empty.
	Scope string
	// MerchantID is sent as x-merchant-id on client-credentials requests
	// (the 6-digit UPS account number); optional.
	MerchantID string
	// HTTPClient carries the transport (verified TLS) and timeouts. The
	// Client never follows redirects and never uses its cookie jar.
	HTTPClient *http.Client
	// Clock gives the receipt time from which expiries are computed;
	// defaults to time.Now.
	Clock func() time.Time
}

// Client talks to UPS's OAuth endpoints. It is safe for concurrent use.
//
// It is built on golang.org/x/oauth2 with two traps disarmed:
//   - x/oauth2's auth-style auto-detection re-sends a failed request with
//     the credentials moved, spending a single-use code or refresh token
//     twice. The style is always fixed to AuthStyleInParams with empty
//     credentials in the oauth2.Config, so x/oauth2 adds nothing.
//   - x/oauth2's AuthStyleInHeader URL-escapes id and secret before Basic
//     encoding (golang/oauth2 issue 783); UPS's own SDK sends them raw. The
//     Basic header is therefore set by our own transport, raw.
type Client struct {
	clientID     string
	secret       string
	redirectURI  string
	scope        string
	authorizeURL string
	tokenURL     string
	refreshURL   string
	clock        func() time.Time

	// One *http.Client per way of authenticating, each wrapping the
	// caller's transport.
	basicHTTP  *http.Client // Basic id:secret
	ccHTTP     *http.Client // Basic id:secret + x-merchant-id
	publicHTTP *http.Client // no Authorization header (PKCE)
}

// NewClient validates cfg and returns a Client.
func NewClient(cfg Config) (*Client, error) {
	if cfg.HTTPClient == nil {
		return nil, errors.New("ups client: an HTTP client is required")
	}
	base, err := checkBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("ups client: %w", err)
	}
	if cfg.ClientID == "" {
		return nil, errors.New("ups client: client id is empty")
	}
	if cfg.ClientSecret != "" && strings.Contains(cfg.ClientID, ":") {
		// Basic auth separates id and secret with the first colon, so UPS
		// would read a different id: fail here rather than with a 401.
		return nil, errors.New("ups client: client id contains ':' and cannot be sent with HTTP Basic auth")
	}
	if cfg.RedirectURI != "" {
		u, err := url.Parse(cfg.RedirectURI)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("ups client: redirect URI %q is not an absolute URL", cfg.RedirectURI)
		}
	}
	clock := cfg.Clock
	if clock == nil {
		clock = time.Now
	}
	rt := cfg.HTTPClient.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	c := &Client{
		clientID:     cfg.ClientID,
		secret:       cfg.ClientSecret,
		redirectURI:  cfg.RedirectURI,
		scope:        cfg.Scope,
		authorizeURL: base + AuthorizePath,
		tokenURL:     base + TokenPath,
		refreshURL:   base + RefreshPath,
		clock:        clock,
		publicHTTP:   tokenHTTPClient(cfg.HTTPClient, &authTransport{base: rt}),
	}
	if cfg.ClientSecret != "" {
		c.basicHTTP = tokenHTTPClient(cfg.HTTPClient, &authTransport{base: rt, id: cfg.ClientID, secret: cfg.ClientSecret})
		c.ccHTTP = tokenHTTPClient(cfg.HTTPClient, &authTransport{base: rt, id: cfg.ClientID, secret: cfg.ClientSecret, merchantID: cfg.MerchantID})
	}
	return c, nil
}

// checkBaseURL returns the base URL without trailing slash.
func checkBaseURL(u *url.URL) (string, error) {
	if u == nil {
		return "", errors.New("base URL is not set")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", fmt.Errorf("base URL %q: scheme must be https or http", u.Redacted())
	}
	if u.Host == "" {
		return "", fmt.Errorf("base URL %q has no host", u.Redacted())
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("base URL %q must not carry user info, a query or a fragment", u.Redacted())
	}
	if h := strings.ToLower(u.Hostname()); u.Scheme == "http" && (h == TestHost || h == ProductionHost) {
		// The client secret and tokens would cross the internet in clear.
		return "", fmt.Errorf("base URL %q: the UPS hosts must be reached over https", u.Redacted())
	}
	path := strings.TrimRight(u.EscapedPath(), "/")
	if path != "" && !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return u.Scheme + "://" + u.Host + path, nil
}

// tokenHTTPClient copies the caller's client settings (timeout) around rt.
func tokenHTTPClient(base *http.Client, rt http.RoundTripper) *http.Client {
	return &http.Client{
		Transport: rt,
		Timeout:   base.Timeout,
		// A redirected POST (307/308) would carry the single-use code or
		// refresh token to a second place; the 3xx is reported instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// UsesPKCE reports whether the client is a public client (no secret), whose
// authorization-code flow must use PKCE.
func (c *Client) UsesPKCE() bool { return c.secret == "" }

// AuthorizeURL returns the URL of UPS's login page for the
// authorization-code flow. codeChallenge is base64url(SHA-256(verifier))
// from NewPKCE, or "" without PKCE. UPS takes no code_challenge_method
// parameter (S256 is implied), so none is sent.
func (c *Client) AuthorizeURL(state, codeChallenge string) string {
	conf := oauth2.Config{
		ClientID:    c.clientID,
		RedirectURL: c.redirectURI,
		Endpoint:    oauth2.Endpoint{AuthURL: c.authorizeURL, AuthStyle: oauth2.AuthStyleInParams},
	}
	var opts []oauth2.AuthCodeOption
	if c.scope != "" {
		opts = append(opts, oauth2.SetAuthURLParam("scope", c.scope))
	}
	if codeChallenge != "" {
		// Not oauth2.S256ChallengeOption: it adds code_challenge_method.
		opts = append(opts, oauth2.SetAuthURLParam("code_challenge", codeChallenge))
	}
	return conf.AuthCodeURL(state, opts...)
}

// Exchange trades an authorization code for a token pair at
// /security/v1/oauth/token. codeVerifier is the PKCE verifier ("" unless
// the authorize URL carried a code challenge; required for PKCE clients).
//
// Errors: *Error for an answer from UPS (see InvalidGrant, Temporary),
// ErrMalformedResponse for an unusable 2xx, a wrapped transport error
// otherwise. Use IsTemporary to decide about retrying. With
// ErrMalformedResponse the returned Token holds whatever could be read.
func (c *Client) Exchange(ctx context.Context, code, codeVerifier string) (Token, error) {
	const op = "exchange UPS authorization code"
	if code == "" {
		return Token{}, fmt.Errorf("%s: the code is empty", op)
	}
	if c.redirectURI == "" {
		return Token{}, fmt.Errorf("%s: no redirect URI configured (UPS requires the registered one)", op)
	}
	if c.UsesPKCE() && codeVerifier == "" {
		return Token{}, fmt.Errorf("%s: a PKCE client (no client secret) needs the code verifier", op)
	}
	conf := c.oauthConfig(c.tokenURL)
	conf.RedirectURL = c.redirectURI
	var opts []oauth2.AuthCodeOption
	if codeVerifier != "" {
		opts = append(opts, oauth2.VerifierOption(codeVerifier))
	}
	return c.retrieve(ctx, op, c.authHTTP(), []string{code, codeVerifier}, func(ctx context.Context) error {
		_, err := conf.Exchange(ctx, code, opts...)
		return err
	})
}

// Refresh spends refreshToken at /security/v1/oauth/refresh and returns the
// new pair. UPS refresh tokens are single-use: whatever this returns, the
// old one must be considered spent once the request may have reached UPS.
//
// If the response lacks refresh_token, the returned Token has none (unlike
// x/oauth2, which would hand back the spent one). Errors as for Exchange;
// with ErrMalformedResponse a non-empty Token.RefreshToken is the new and
// only valid refresh token: keep it.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (Token, error) {
	const op = "refresh UPS token"
	if refreshToken == "" {
		return Token{}, fmt.Errorf("%s: the refresh token is empty", op)
	}
	// A PKCE client has no secret for the Basic header UPS documents for
	// refresh; it identifies itself with client_id in the body, as RFC 6749
	// section 6 has public clients do. Unconfirmed against real UPS.
	conf := c.oauthConfig(c.refreshURL)
	return c.retrieve(ctx, op, c.authHTTP(), []string{refreshToken}, func(ctx context.Context) error {
		// x/oauth2's only public refresh path is a TokenSource over an
		// already-expired token; with no access token it makes exactly one
		// grant_type=refresh_token request.
		_, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
		return err
	})
}

// ClientCredentials fetches an access token with the client-credentials
// grant at /security/v1/oauth/token (no refresh token: call again before
// expiry). Errors as for Exchange.
func (c *Client) ClientCredentials(ctx context.Context) (Token, error) {
	const op = "fetch UPS client-credentials token"
	if c.UsesPKCE() {
		return Token{}, fmt.Errorf("%s: the client-credentials grant needs a client secret", op)
	}
	conf := clientcredentials.Config{TokenURL: c.tokenURL, AuthStyle: oauth2.AuthStyleInParams}
	if c.scope != "" {
		conf.Scopes = []string{c.scope}
	}
	return c.retrieve(ctx, op, c.ccHTTP, nil, func(ctx context.Context) error {
		_, err := conf.Token(ctx)
		return err
	})
}

// oauthConfig is the x/oauth2 configuration for token requests. For a
// confidential client ClientID and ClientSecret stay empty so that
// AuthStyleInParams puts nothing in the body: the Basic header comes from
// authTransport. A public client sends client_id in the body.
func (c *Client) oauthConfig(tokenURL string) oauth2.Config {
	conf := oauth2.Config{Endpoint: oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams}}
	if c.UsesPKCE() {
		conf.ClientID = c.clientID
	}
	return conf
}

func (c *Client) authHTTP() *http.Client {
	if c.UsesPKCE() {
		return c.publicHTTP
	}
	return c.basicHTTP
}

// retrieve runs one token request through x/oauth2 and turns the outcome
// into a Token or a classified error. sent lists the secret values in the
// request, kept out of any error text.
func (c *Client) retrieve(ctx context.Context, op string, hc *http.Client, sent []string, do func(context.Context) error) (Token, error) {
	capt := &capture{}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	ctx = context.WithValue(ctx, captureKey{}, capt)
	err := do(ctx)
	receivedAt := c.clock()
	red := newRedactor(c.clientID, c.secret, sent...)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return Token{}, fmt.Errorf("%s: %w", op, newError(re, red))
		}
		if capt.status == 0 {
			// No response at all: transport failure, timeout or
			// cancellation, kept wrappable for IsTemporary. Its text names
			// the URL, never the body or headers we sent.
			return Token{}, fmt.Errorf("%s: %w", op, err)
		}
		// A 2xx x/oauth2 could not digest (wrong Content-Type, a field of
		// the wrong type...). UPS's format is ours to judge: parse the
		// captured body, which also recovers a new refresh token from a
		// response that is otherwise garbage.
	}
	if capt.status < 200 || capt.status > 299 {
		// x/oauth2 failed reading the body of an error response before
		// looking at its status: a broken answer, worth a retry. A Token
		// must never come from an error response.
		return Token{}, fmt.Errorf("%s: %w: HTTP %d", op, ErrMalformedResponse, capt.status)
	}
	if capt.truncated {
		return Token{}, fmt.Errorf("%s: %w: body larger than %d bytes", op, ErrMalformedResponse, maxCapture)
	}
	tok, perr := ParseTokenResponse(capt.buf.Bytes(), receivedAt)
	if perr != nil {
		return tok, fmt.Errorf("%s: %w", op, perr)
	}
	return tok, nil
}
