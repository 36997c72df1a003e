package ups_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/testutil/fakeclock"
	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/upssim"
)

// These tests run the client against the UPS simulator (a separate package,
// hence package ups_test): what one side sends, the other must accept.

const (
	simID       = "SimApp"
	simSecret   = "s3cr+t%2F with space" // raw Basic or bust
	simPublicID = "SimPublicApp"
	simRedirect = "https://127.0.0.1/upscallback"
	accessTTL   = time.Hour
	refreshTTL  = 60 * 24 * time.Hour
)

type simEnv struct {
	sim   *upssim.Server
	srv   *httptest.Server
	clock *fakeclock.Clock
}

func newSim(t *testing.T) *simEnv {
	t.Helper()
	clock := fakeclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	sim := upssim.New(upssim.Options{
		Clients:   map[string]string{simID: simSecret, simPublicID: ""},
		AccessTTL: accessTTL, RefreshTTL: refreshTTL, Clock: clock.Now,
	})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return &simEnv{sim: sim, srv: srv, clock: clock}
}

func (e *simEnv) client(t *testing.T, id, secret string) *ups.Client {
	t.Helper()
	base, err := url.Parse(e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ups.NewClient(ups.Config{
		BaseURL: base, ClientID: id, ClientSecret: secret, RedirectURI: simRedirect, MerchantID: "W599Y7",
		HTTPClient: &http.Client{Timeout: 5 * time.Second}, Clock: e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// authorize follows the authorize URL as a browser would, up to the
// redirect back to us, and returns the pasted-redirect code.
func (e *simEnv) authorize(t *testing.T, c *ups.Client, challenge string) string {
	t.Helper()
	state, err := ups.NewState()
	if err != nil {
		t.Fatal(err)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(c.AuthorizeURL(state, challenge))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize answered %d, want 302", resp.StatusCode)
	}
	code, err := ups.ParseRedirect(resp.Header.Get("Location"), state)
	if err != nil {
		t.Fatalf("ParseRedirect(%q): %v", resp.Header.Get("Location"), err)
	}
	return code
}

func TestSimulatorAuthorizeExchangeRefreshAndSpentRefreshTokenRoundTrip(t *testing.T) {
	e := newSim(t)
	c := e.client(t, simID, simSecret)
	ctx := context.Background()

	code := e.authorize(t, c, "")
	first, err := c.Exchange(ctx, code, "")
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	start := e.clock.Now()
	if first.AccessToken == "" || first.RefreshToken == "" || first.ClientID != simID {
		t.Fatalf("first token = %v, want an access/refresh pair for %s", first, simID)
	}
	if d := first.ExpiresAt.Sub(start); d <= accessTTL-2*time.Second || d > accessTTL {
		t.Errorf("access token lives %v, want about %v from the simulator's expires_in", d, accessTTL)
	}
	if d := first.RefreshExpiresAt.Sub(start); d <= refreshTTL-2*time.Second || d > refreshTTL {
		t.Errorf("refresh token lives %v, want about %v", d, refreshTTL)
	}

	e.clock.Advance(50 * time.Minute)
	second, err := c.Refresh(ctx, first.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
		t.Error("refresh returned the old tokens, want a new pair")
	}
	if second.RefreshCount != 1 {
		t.Errorf("refresh count = %d, want 1", second.RefreshCount)
	}
	// The simulator keeps the refresh token's expiry fixed and says so
	// through a shrinking refresh_token_expires_in.
	if d := second.RefreshExpiresAt.Sub(first.RefreshExpiresAt); d < -2*time.Second || d > 2*time.Second {
		t.Errorf("refresh expiry moved by %v across a refresh, want it fixed", d)
	}
	if !second.ExpiresAt.After(first.ExpiresAt) {
		t.Errorf("new access expiry %v is not after the old %v", second.ExpiresAt, first.ExpiresAt)
	}

	// Spending the old refresh token again: UPS says no, once.
	e.sim.ResetRequests()
	_, err = c.Refresh(ctx, first.RefreshToken)
	var ue *ups.Error
	if !errors.As(err, &ue) || !ue.InvalidGrant() || ups.IsTemporary(err) {
		t.Fatalf("second use of a refresh token: error = %v, want a non-temporary InvalidGrant *ups.Error", err)
	}
	if n := len(e.sim.OAuthRequests()); n != 1 {
		t.Errorf("the rejected refresh was sent %d times, want 1", n)
	}

	// The new one still works.
	if _, err := c.Refresh(ctx, second.RefreshToken); err != nil {
		t.Errorf("Refresh with the current token: %v", err)
	}
	if st := e.sim.Stats(); st.AuthorizationCodeGrants != 1 || st.Refreshes != 2 || st.RefreshRejected != 1 {
		t.Errorf("simulator stats = %+v, want 1 exchange, 2 refreshes, 1 rejection", st)
	}
}

func TestSimulatorPKCEPublicClientRoundTrip(t *testing.T) {
	e := newSim(t)
	c := e.client(t, simPublicID, "")
	ctx := context.Background()

	verifier, challenge, err := ups.NewPKCE()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Exchange(ctx, e.authorize(t, c, challenge), verifier)
	if err != nil {
		t.Fatalf("PKCE Exchange: %v", err)
	}
	if _, err := c.Refresh(ctx, tok.RefreshToken); err != nil {
		t.Fatalf("PKCE Refresh: %v", err)
	}
}

func TestSimulatorRefusesAWrongPKCEVerifierAsARejectedGrant(t *testing.T) {
	e := newSim(t)
	c := e.client(t, simPublicID, "")
	_, challenge, _ := ups.NewPKCE()
	other, _, _ := ups.NewPKCE()
	_, err := c.Exchange(context.Background(), e.authorize(t, c, challenge), other)
	var ue *ups.Error
	if !errors.As(err, &ue) || !ue.InvalidGrant() {
		t.Fatalf("error = %v, want InvalidGrant", err)
	}
}

func TestSimulatorClientCredentialsWithMerchantID(t *testing.T) {
	e := newSim(t)
	c := e.client(t, simID, simSecret)
	tok, err := c.ClientCredentials(context.Background())
	if err != nil {
		t.Fatalf("ClientCredentials: %v", err)
	}
	if tok.AccessToken == "" || tok.RefreshToken != "" {
		t.Errorf("token = %v, want an access token only", tok)
	}
	reqs := e.sim.OAuthRequests()
	if len(reqs) != 1 {
		t.Fatalf("simulator saw %d requests, want 1", len(reqs))
	}
	if got := reqs[0].Header.Get("x-merchant-id"); got != "W599Y7" {
		t.Errorf("x-merchant-id = %q, want W599Y7", got)
	}
}

func TestSimulatorWrongSecretIsAnInvalidClientNotARejectedGrant(t *testing.T) {
	e := newSim(t)
	good := e.client(t, simID, simSecret)
	tok, err := good.Exchange(context.Background(), e.authorize(t, good, ""), "")
	if err != nil {
		t.Fatal(err)
	}
	bad := e.client(t, simID, "wrong")
	_, err = bad.Refresh(context.Background(), tok.RefreshToken)
	var ue *ups.Error
	if !errors.As(err, &ue) || !ue.InvalidClient() || ue.InvalidGrant() {
		t.Fatalf("error = %v, want InvalidClient and not InvalidGrant", err)
	}
}

func TestSimulatorRejectedRefreshTokensAndFaults(t *testing.T) {
	tests := []struct {
		name          string
		setup         func(*upssim.Server)
		wantTemporary bool
		wantInvalid   bool
	}{
		{"refresh tokens withdrawn by UPS", func(s *upssim.Server) { s.RejectRefreshTokens() }, false, true},
		{"503 from the refresh endpoint", func(s *upssim.Server) {
			s.SetFault(upssim.Fault{Endpoint: upssim.EndpointRefresh, Status: 503, Times: 1})
		}, true, false},
		{"429 rate limit", func(s *upssim.Server) {
			s.SetFault(upssim.Fault{Endpoint: upssim.EndpointRefresh, Status: 429, Times: 1})
		}, true, false},
		{"HTML page with 200", func(s *upssim.Server) {
			s.SetFault(upssim.Fault{Endpoint: upssim.EndpointRefresh, Status: 200, Body: "<html><body>maintenance</body></html>", Times: 1})
		}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newSim(t)
			c := e.client(t, simID, simSecret)
			tok, err := c.Exchange(context.Background(), e.authorize(t, c, ""), "")
			if err != nil {
				t.Fatal(err)
			}
			tt.setup(e.sim)
			e.sim.ResetRequests()
			_, err = c.Refresh(context.Background(), tok.RefreshToken)
			if err == nil {
				t.Fatal("Refresh succeeded, want an error")
			}
			var ue *ups.Error
			invalid := errors.As(err, &ue) && ue.InvalidGrant()
			if ups.IsTemporary(err) != tt.wantTemporary || invalid != tt.wantInvalid {
				t.Errorf("error = %v: temporary %v, invalid grant %v; want %v, %v", err, ups.IsTemporary(err), invalid, tt.wantTemporary, tt.wantInvalid)
			}
			if n := len(e.sim.OAuthRequests()); n != 1 {
				t.Errorf("refresh sent %d times, want 1", n)
			}
		})
	}
}
