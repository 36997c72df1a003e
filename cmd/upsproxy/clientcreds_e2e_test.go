package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// TestRequestPath_NoClientCredentialOrProxyHeaderReachesUPSInAnyMode sends,
// in each of the three modes, a Rate call carrying everything a client may
// send that UPS must never get: the proxy-issued token as the bearer, again
// in a second Authorization header and as an access_token query parameter,
// proxy and X-Upsproxy-* headers, a header its Connection names hop-by-hop,
// and legacy access-key credentials. UPS must see the carrier's bearer and
// none of them.
func TestRequestPath_NoClientCredentialOrProxyHeaderReachesUPSInAnyMode(t *testing.T) {
	e := oauthEnv(t)
	rec := e.recordUPS(t)
	s := e.serve()
	stored, err := e.store.Get(context.Background(), "main", ups.Test)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, directClient())
	tok, err := ccConfig("http://"+s.addr, "shop", oauthSecret).Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rememberSecret(tok.AccessToken)
	for _, m := range oauthModes(e, s) {
		t.Run(m.name, func(t *testing.T) {
			rec.reset()
			q := url.Values{"access_token": {tok.AccessToken}, "additionalinfo": {"timeintransit"}}
			req := pxRequest(t, http.MethodPost, m.base+"/api/rating/v2409/Rate?"+q.Encode(), rateBody(t), map[string]string{
				"Authorization":       "Bearer " + tok.AccessToken,
				"X-Upsproxy-Carrier":  "main",
				"X-Upsproxy-Whatever": "x",
				"Connection":          "keep-alive, X-Private-Hop",
				"X-Private-Hop":       "hop",
				"AccessLicenseNumber": "LEGACYKEY123",
				"Username":            "legacyuser",
				"Password":            "legacypass",
			})
			req.Header.Add("Authorization", "Bearer "+tok.AccessToken)
			r := pxDo(t, m.http, req)
			if r.status != http.StatusOK {
				t.Fatalf("rate: %d %s", r.status, r.body)
			}
			seen := rec.requests()
			if len(seen) != 1 {
				t.Fatalf("UPS saw %d requests", len(seen))
			}
			u := seen[0]
			if got := u.header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer "+stored.Token.AccessToken {
				t.Errorf("UPS got %d Authorization values, want only the carrier's bearer", len(got))
			}
			all := fmt.Sprint(u.query, u.header, string(u.body))
			if strings.Contains(all, "upsproxy1_") {
				t.Errorf("a proxy-issued token reached UPS: query %q", u.query)
			}
			if uq, _ := url.ParseQuery(u.query); uq.Get("additionalinfo") != "timeintransit" || uq.Has("access_token") {
				t.Errorf("UPS got query %q, want the client's own parameters without access_token", u.query)
			}
			for k := range u.header {
				if strings.HasPrefix(k, "X-Upsproxy-") || strings.HasPrefix(k, "Proxy-") || k == "X-Private-Hop" ||
					k == "Accesslicensenumber" || k == "Username" || k == "Password" {
					t.Errorf("UPS got header %s", k)
				}
			}
		})
	}
}
