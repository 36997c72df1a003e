package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/upssim"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// A UPS app that lacks an API product gets 401/250002 for every call of
// that product, whatever the token. Before the fix each such answer to a
// replayable call invalidated the token and forced a refresh: 4 clients
// caused about 1,500 refreshes and 3,000 Vault writes in 10 s, spending a
// single-use refresh token each time against UPS's rate limits.
//
// The bound this test holds the proxy to: ONE forced renewal for the whole
// run (the stored token is an hour old, so one renewal is allowed; the
// token it mints is never force-renewed, and no second forced renewal may
// follow within tokens.DefaultForcedRenewalFloor), hence at most 1 refresh
// at UPS and at most 2 Vault writes (the lease claim and the new pair).
func TestHostile_A401ForeverFromUPSCausesAtMostOneRefresh(t *testing.T) {
	const clients = 4
	run := 10 * time.Second
	if testing.Short() {
		run = 2 * time.Second
	}
	e := newEnv(t, envOptions{})
	e.login("main")
	// The pair is an hour old: a 401 to it may well be a revoked token, so
	// the proxy is allowed one renewal.
	e.editRecord("main", ups.Test, func(r *vaultstore.Record) {
		r.Token.IssuedAt = time.Now().Add(-time.Hour)
		r.LastRefresh = time.Now().Add(-time.Hour)
	})
	s := e.serve()
	base := "http://" + s.addr
	body := rateBody(t)

	ctx := context.Background()
	rec0, err := e.store.Get(ctx, "main", ups.Test)
	if err != nil {
		t.Fatal(err)
	}
	upsBody := `{"response":{"errors":[{"code":"250002","message":"Invalid Authentication Information."}]}}`
	e.sim.SetFault(upssim.Fault{Endpoint: upssim.EndpointAPI, Status: http.StatusUnauthorized, Body: upsBody})
	before := e.sim.Stats()

	var (
		mu       sync.Mutex
		requests int
		bad      []string
	)
	deadline := time.Now().Add(run)
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := directClient()
			for time.Now().Before(deadline) {
				req, err := http.NewRequest(http.MethodPost, base+"/api/rating/v2409/Rate", strings.NewReader(body))
				if err != nil {
					panic(err)
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				problem := ""
				if err != nil {
					problem = err.Error()
				} else {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					d, ok := ups.ParseEnvelope(b)
					if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("X-Upsproxy-Error") != "" || !ok || d.Code != ups.CodeInvalidAuth {
						problem = resp.Status + " " + resp.Header.Get("X-Upsproxy-Error") + " " + string(b)
					}
				}
				mu.Lock()
				requests++
				if problem != "" && len(bad) < 5 {
					bad = append(bad, problem)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	after := e.sim.Stats()
	rec1, err := e.store.Get(ctx, "main", ups.Test)
	if err != nil {
		t.Fatal(err)
	}
	e.rememberStoredTokens("main", ups.Test)
	refreshes := after.Refreshes - before.Refreshes
	writes := rec1.Version - rec0.Version
	t.Logf("%d clients for %s: %d requests, %d API calls at UPS, %d refreshes at UPS, %d Vault writes",
		clients, run, requests, after.APICalls-before.APICalls, refreshes, writes)

	if len(bad) > 0 {
		t.Errorf("clients did not get UPS's own 401/250002, e.g. %q", bad)
	}
	if requests < clients {
		t.Fatalf("only %d requests were made", requests)
	}
	if refreshes > 1 {
		t.Errorf("UPS saw %d refreshes, want at most 1 (one forced renewal of the hour-old token)", refreshes)
	}
	if writes > 2 {
		t.Errorf("Vault saw %d writes, want at most 2 (one lease claim, one new pair)", writes)
	}

	// Ops are told why, once, not once per request.
	l := s.waitLog(t, "error", "lacks the API product")
	if l["carrier"] != "main" || l["environment"] != "test" || l["error_code"] != nil && l["error_code"] == "" {
		t.Errorf("log line: %v", l)
	}
	n := 0
	for _, l := range s.lines() {
		if l["level"] == "error" && strings.Contains(l["msg"].(string), "lacks the API product") {
			n++
		}
	}
	if n > 2 {
		t.Errorf("%d ERROR lines about the missing API product for %d requests: not rate-limited", n, requests)
	}

	_, metrics := get(t, "http://"+s.admin+"/metrics")
	if v, ok := metricValue(t, metrics, "upsproxy_token_refused_total", map[string]string{"carrier": "main", "environment": "test"}); !ok || v < 1 {
		t.Errorf("upsproxy_token_refused_total = %v (present %v), want at least 1", v, ok)
	}

	_, status := get(t, "http://"+s.admin+"/status")
	var doc struct {
		Carriers []struct {
			Carrier string `json:"carrier"`
			Refused *struct {
				Count  int       `json:"count"`
				LastAt time.Time `json:"last_at"`
				Hint   string    `json:"hint"`
			} `json:"ups_refused_fresh_token"`
		} `json:"carriers"`
	}
	if err := json.Unmarshal([]byte(status), &doc); err != nil {
		t.Fatalf("/status: %v\n%s", err, status)
	}
	if len(doc.Carriers) != 1 || doc.Carriers[0].Refused == nil || doc.Carriers[0].Refused.Count < 1 ||
		!strings.Contains(doc.Carriers[0].Refused.Hint, "API product") {
		t.Errorf("/status does not show the refused fresh token:\n%s", status)
	}
}

// The refresh counter exists at zero from start-up, for every configured
// carrier and every result, so an alert on its increase sees the first
// failure.
func TestServe_RefreshCountersExistAtZeroFromStartUp(t *testing.T) {
	e := newEnv(t, envOptions{carriers: `
carrier "main" {
  environment   = "test"
  default       = true
  client_id     = "test-client-id"
  client_secret = file("ups-secret")
  redirect_uri  = "https://127.0.0.1/upscallback"
}
carrier "prod" {
  environment   = "production"
  client_id     = "test-client-id"
  client_secret = file("ups-secret")
  redirect_uri  = "https://127.0.0.1/upscallback"
}
`})
	s := e.serve()
	_, metrics := get(t, "http://"+s.admin+"/metrics")
	for _, c := range []struct{ carrier, env string }{{"main", "test"}, {"prod", "production"}} {
		for _, result := range []string{"ok", "rejected", "failed", "adopted"} {
			v, ok := metricValue(t, metrics, "upsproxy_token_refreshes_total",
				map[string]string{"carrier": c.carrier, "environment": c.env, "result": result})
			if !ok || v != 0 {
				t.Errorf("upsproxy_token_refreshes_total{%s,%s,%s} = %v (present %v), want 0", c.carrier, c.env, result, v, ok)
			}
		}
		if v, ok := metricValue(t, metrics, "upsproxy_token_refused_total",
			map[string]string{"carrier": c.carrier, "environment": c.env}); !ok || v != 0 {
			t.Errorf("upsproxy_token_refused_total{%s,%s} = %v (present %v), want 0", c.carrier, c.env, v, ok)
		}
	}
}
