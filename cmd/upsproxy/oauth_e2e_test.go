package main

// End-to-end tests of upsproxy as its clients' OAuth token endpoint
// (issue 10): real OAuth client code, a real `upsproxy serve`, the UPS
// simulator and a real Vault.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/upsproxy/upsproxy/internal/clienttoken"
	"github.com/upsproxy/upsproxy/internal/ups"
)

// oauthEnv is one installation with a client block "shop" (password
// oauthSecret) pinned to the carrier "main", which is logged in.
const oauthSecret = "shop floor+secret %2F"

func oauthEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, envOptions{extra: fmt.Sprintf(`
client "shop" {
  password_hash = %q
  carrier       = "main"
}
`, pxHash(t, oauthSecret))})
	e.login("main")
	e.sim.ResetRequests()
	return e
}

// oauthMode is one way an OAuth client reaches the proxy: the UPS base URL
// it is configured with, and the HTTP client its OAuth library uses.
type oauthMode struct {
	name string
	base string
	http *http.Client
}

func oauthModes(e *env, s *server) []oauthMode {
	// Forward-proxy clients authenticate to the proxy in their proxy
	// settings; base-URL clients cannot, and their token does it.
	pu, _ := url.Parse("http://" + s.addr)
	pu.User = url.UserPassword("shop", oauthSecret)
	fwd := e.proxyClient(s)
	fwd.Transport.(*http.Transport).Proxy = http.ProxyURL(pu)
	return []oauthMode{
		{"https forward proxy (CONNECT + MITM)", "https://" + ups.TestHost, fwd},
		{"http forward proxy (absolute-form)", "http://" + ups.TestHost, fwd},
		{"base-URL mode (origin-form)", "http://" + s.addr, directClient()},
	}
}

// ccConfig is what software written for UPS's client-credentials flow
// configures: its client id and secret, and UPS's token URL under its base.
func ccConfig(base, id, secret string) *clientcredentials.Config {
	return &clientcredentials.Config{
		ClientID:     id,
		ClientSecret: secret,
		TokenURL:     base + "/security/v1/oauth/token",
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
}

func rateWith(t *testing.T, c *http.Client, base string) (int, string) {
	t.Helper()
	req := pxRequest(t, http.MethodPost, base+"/api/rating/v2409/Rate", rateBody(t), nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("rate: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestOAuthClient_ClientCredentialsLibraryGetsItsTokenFromTheProxyAndRatesInEachMode(t *testing.T) {
	e := oauthEnv(t)
	s := e.serve()
	rec, err := e.store.Get(context.Background(), "main", ups.Test)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range oauthModes(e, s) {
		t.Run(m.name, func(t *testing.T) {
			e.sim.ResetRequests()
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, m.http)
			cfg := ccConfig(m.base, "shop", oauthSecret)
			tok, err := cfg.Token(ctx)
			if err != nil {
				t.Fatalf("token: %v", err)
			}
			rememberSecret(tok.AccessToken)
			if !strings.HasPrefix(tok.AccessToken, clienttoken.Prefix) || tok.Expiry.Before(time.Now().Add(3*time.Hour)) {
				t.Fatalf("token %.12s... expiring %v", tok.AccessToken, tok.Expiry)
			}
			status, body := rateWith(t, cfg.Client(ctx), m.base)
			if status != http.StatusOK || !strings.Contains(body, "RatedShipment") {
				t.Fatalf("rate: %d %s", status, body)
			}
			if n := len(e.sim.OAuthRequests()); n != 0 {
				t.Fatalf("UPS's token endpoint saw %d requests", n)
			}
			reqs := e.sim.Requests()
			if len(reqs) != 1 || reqs[0].Header.Get("Authorization") != "Bearer "+rec.Token.AccessToken {
				t.Fatalf("UPS saw %d API requests, not one with the carrier's stored token", len(reqs))
			}
		})
	}
	for _, l := range s.lines() {
		if strings.Contains(fmt.Sprint(l["path"]), "/security/") && l["status"] == 200.0 && l["client"] != "shop" {
			t.Errorf("token request logged without its client: %v", l)
		}
	}
}

func TestOAuthClient_WrongCredentialsGetUPSsInvalidClientError(t *testing.T) {
	e := oauthEnv(t)
	s := e.serve()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, directClient())
	for _, c := range []struct{ id, secret string }{{"shop", "wrong"}, {"nobody", oauthSecret}} {
		_, err := ccConfig("http://"+s.addr, c.id, c.secret).Token(ctx)
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) {
			t.Fatalf("%s: %v, want a RetrieveError", c.id, err)
		}
		d, ok := ups.ParseEnvelope(re.Body)
		if re.Response.StatusCode != http.StatusUnauthorized || !ok || d.Code != ups.CodeInvalidClient || d.Message != "ClientId is Invalid" {
			t.Fatalf("%s: %d %s, want UPS's 401 10401 ClientId is Invalid", c.id, re.Response.StatusCode, re.Body)
		}
	}
	if n := len(e.sim.OAuthRequests()); n != 0 {
		t.Fatalf("UPS's token endpoint saw %d requests", n)
	}
}

func TestOAuthClient_ATokenOfReplicaAIsAcceptedByReplicaBAndExpiredOrTamperedOnesAreRefused(t *testing.T) {
	e := oauthEnv(t)
	a, b := e.serve(), e.serve()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, directClient())
	tok, err := ccConfig("http://"+a.addr, "shop", oauthSecret).Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rememberSecret(tok.AccessToken)
	call := func(bearer string) (int, string) {
		req := pxRequest(t, http.MethodPost, "http://"+b.addr+"/api/rating/v2409/Rate", rateBody(t),
			map[string]string{"Authorization": "Bearer " + bearer})
		r := pxDo(t, directClient(), req)
		return r.status, r.body
	}
	if status, body := call(tok.AccessToken); status != http.StatusOK {
		t.Fatalf("replica B refused replica A's token: %d %s", status, body)
	}

	// An expired token, signed with the replicas' own key from Vault.
	key, err := e.store.SharedKey(context.Background(), clientTokenKeyName)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := clienttoken.NewSigner(key)
	past := time.Now().Add(-5 * time.Hour)
	expired, err := signer.Issue(clienttoken.Claims{Kind: clienttoken.Access, Authenticated: true, Client: "shop", Carrier: "main",
		IssuedAt: past, ExpiresAt: past.Add(4 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	last := tok.AccessToken[len(tok.AccessToken)-1]
	tampered := tok.AccessToken[:len(tok.AccessToken)-1] + map[bool]string{true: "B", false: "A"}[last == 'A']
	e.sim.ResetRequests()
	for name, bad := range map[string]string{"expired": expired, "tampered": tampered} {
		status, body := call(bad)
		d, ok := ups.ParseEnvelope([]byte(body))
		if status != http.StatusUnauthorized || !ok || d.Code != ups.CodeInvalidAuth {
			t.Errorf("%s token: %d %s, want UPS's 401 250002", name, status, body)
		}
	}
	if n := len(e.sim.Requests()); n != 0 {
		t.Fatalf("%d refused requests reached UPS", n)
	}
}

func TestOAuthClient_AProxyTokenSentStraightToUPSIsRejectedThere(t *testing.T) {
	e := oauthEnv(t)
	s := e.serve()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, directClient())
	tok, err := ccConfig("http://"+s.addr, "shop", oauthSecret).Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rememberSecret(tok.AccessToken)
	req := pxRequest(t, http.MethodPost, e.simURL+"/api/rating/v2409/Rate", rateBody(t),
		map[string]string{"Authorization": "Bearer " + tok.AccessToken})
	r := pxDo(t, directClient(), req)
	d, ok := ups.ParseEnvelope([]byte(r.body))
	if r.status != http.StatusUnauthorized || !ok || d.Code != ups.CodeInvalidAuth {
		t.Fatalf("simulator answered %d %s to a proxy token, want 401 250002", r.status, r.body)
	}
}
