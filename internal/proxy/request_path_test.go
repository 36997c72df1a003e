package proxy_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/proxy"
	"github.com/upsproxy/upsproxy/internal/ups"
)

// observation is one ObserveRequest call.
type observation struct {
	carrier string
	env     ups.Environment
	status  int
	code    string
}

type recordingObserver struct {
	mu  sync.Mutex
	got []observation
}

func (o *recordingObserver) ObserveRequest(carrier string, env ups.Environment, status int, code string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if d < 0 {
		code += " (negative duration)"
	}
	o.got = append(o.got, observation{carrier, env, status, code})
}

func TestObserverHearsOfEveryRequestExactlyOnce(t *testing.T) {
	obs := &recordingObserver{}
	e := newTestEnv(t, func(o *proxy.Options) { o.Observer = obs })
	client, base := e.originClient(t)
	for _, carrier := range []string{"main", "old", "nosuch"} {
		req, _ := http.NewRequest(http.MethodPost, base+"/api/rating/v2409/Rate", strings.NewReader("{}"))
		req.Header.Set(proxy.CarrierHeader, carrier)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	want := []observation{
		{"main", ups.Production, http.StatusCreated, ""},
		{"old", ups.Production, http.StatusForbidden, proxy.CodeCarrierInactive},
		{"", "", http.StatusBadRequest, proxy.CodeNoCarrier},
	}
	if len(obs.got) != len(want) {
		t.Fatalf("observer got %d calls, want %d: %+v", len(obs.got), len(want), obs.got)
	}
	for i := range want {
		if obs.got[i] != want[i] {
			t.Errorf("call %d = %+v, want %+v", i, obs.got[i], want[i])
		}
	}
}

// invalidatingTokens is a token source that hands out a new token once
// told the current one was refused.
type invalidatingTokens struct {
	*fakeTokens
	invalidated atomic.Int64
}

func (f *invalidatingTokens) Invalidate(carrier string, env ups.Environment, token string) {
	f.invalidated.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[carrier+"/"+string(env)] = token + "-renewed"
}

// refusingUPS answers 401/250002 unless the token was renewed.
func refusingUPS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if !strings.HasSuffix(r.Header.Get("Authorization"), "-renewed") {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write(ups.EncodeEnvelope(ups.CodeInvalidAuth, "Invalid Authentication Information."))
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(upsReplyBody))
}

func TestReplayAfterUPSRefusesTheToken(t *testing.T) {
	cases := []struct {
		name         string
		invalidator  bool
		method, path string
		body         string
		wantStatus   int
		wantCalls    int
	}{
		{"Rate with a token source that can be told: replayed once with the new token",
			true, http.MethodPost, "/api/rating/v2409/Shop", `{"RateRequest":{}}`, http.StatusOK, 2},
		{"Track GET without a body: replayed",
			true, http.MethodGet, "/api/track/v1/details/1Z999", "", http.StatusOK, 2},
		{"Rate with a token source that cannot be told and has nothing newer: UPS's 401 stands",
			false, http.MethodPost, "/api/rating/v2409/Rate", `{}`, http.StatusUnauthorized, 1},
		{"Void: never replayed",
			true, http.MethodDelete, "/api/shipments/v2409/void/cancel/1Z", "", http.StatusUnauthorized, 1},
		{"Pickup: never replayed",
			true, http.MethodPost, "/api/shipments/v2409/pickup/01", `{}`, http.StatusUnauthorized, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			it := &invalidatingTokens{fakeTokens: newFakeTokens()}
			e := newTestEnv(t, func(o *proxy.Options) {
				if c.invalidator {
					o.Tokens = it
				} else {
					o.Tokens = it.fakeTokens
				}
			})
			e.prod.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				e.prod.mu.Lock()
				e.prod.reqs = append(e.prod.reqs, recorded{Path: r.URL.Path, Header: r.Header.Clone()})
				e.prod.mu.Unlock()
				refusingUPS(w, r)
			})
			client, base := e.originClient(t)
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			req, _ := http.NewRequest(c.method, base+c.path, body)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got := readBody(t, resp)
			if resp.StatusCode != c.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, got, c.wantStatus)
			}
			if c.wantStatus == http.StatusUnauthorized {
				if d, ok := ups.ParseEnvelope([]byte(got)); !ok || d.Code != ups.CodeInvalidAuth || resp.Header.Get(proxy.ErrorHeader) != "" {
					t.Errorf("client got %q, want UPS's own 250002 envelope", got)
				}
			}
			if n := len(e.prod.requests()); n != c.wantCalls {
				t.Errorf("UPS saw %d calls, want %d", n, c.wantCalls)
			}
		})
	}
}
