package tokens

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/upssim"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// countingMetrics records Refused calls.
type countingMetrics struct {
	mu      sync.Mutex
	refused int
}

func (m *countingMetrics) Refreshed(string, ups.Environment, string)              {}
func (m *countingMetrics) Expiries(string, ups.Environment, time.Time, time.Time) {}
func (m *countingMetrics) Refused(string, ups.Environment) {
	m.mu.Lock()
	m.refused++
	m.mu.Unlock()
}

// replica builds a broker as one proxy process: its own holder name.
func (r *rig) replica(holder string, log *zap.Logger, m Metrics) *Broker {
	r.t.Helper()
	if log == nil {
		log = zap.NewNop()
	}
	b, err := New(Options{
		Store:    r.store,
		Carriers: []Carrier{{Name: "main", Environment: ups.Test, Grant: ups.GrantAuthorizationCode, OAuth: r.oauth}},
		Logger:   log, Clock: r.clock.Now, Holder: holder, Metrics: m,
		ErrorCode: func(error) string { return "CODE" },
	})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(b.Close)
	return b
}

// UPS answers 401 to every token (the app lacks the API product): the two
// replicas, invalidating whatever token they used, renew once between them.
func TestBroker_A401ForeverRenewsOnceAcrossReplicasThenPassesTheRefusalOn(t *testing.T) {
	r := newRig(t)
	r.login()
	core, logs := observer.New(zapcore.InfoLevel)
	m := &countingMetrics{}
	a := r.replica("replica-a", zap.New(core), m)
	b := r.replica("replica-b", zap.New(core), m)
	ctx := context.Background()
	t1, err := a.Token(ctx, "main", ups.Test)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Token(ctx, "main", ups.Test); err != nil {
		t.Fatal(err)
	}

	// What the proxy does on each 401 of a replayable call, from many
	// requests on both replicas at once.
	var wg sync.WaitGroup
	for _, rep := range []*Broker{a, b, a, b, a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				tok, err := rep.Token(ctx, "main", ups.Test)
				if err != nil {
					t.Error(err)
					return
				}
				rep.Invalidate("main", ups.Test, tok) // UPS said 401
				if _, err := rep.Token(ctx, "main", ups.Test); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := r.sim.Stats().Refreshes; n != 1 {
		t.Fatalf("UPS saw %d refreshes for 400 refusals, want 1", n)
	}
	stored, err := r.store.Get(ctx, "main", ups.Test)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Token.AccessToken == t1 || stored.ForcedRenewalAt.IsZero() || !stored.ForcedRenewalAt.Equal(stored.LastRefresh) {
		t.Fatalf("the forced renewal is not marked in Vault: %v forced at %s", stored, stored.ForcedRenewalAt)
	}
	for _, rep := range []*Broker{a, b} {
		if tok, _ := rep.Token(ctx, "main", ups.Test); tok != stored.Token.AccessToken {
			t.Error("a replica does not use the renewed pair")
		}
		st := rep.Status()[0]
		if st.Refused == nil || st.Refused.Count == 0 || !strings.Contains(st.Refused.Hint, "API product") {
			t.Errorf("/status of %s does not show the refusals: %+v", rep.opts.Holder, st.Refused)
		}
	}
	m.mu.Lock()
	if m.refused == 0 {
		t.Error("no refusal was counted")
	}
	m.mu.Unlock()
	// One ERROR per replica (rate-limited), not one per refusal.
	if n := logs.FilterMessageSnippet("lacks the API product").FilterLevelExact(zapcore.ErrorLevel).Len(); n < 1 || n > 2 {
		t.Errorf("%d ERROR lines for the refusals, want 1 or 2 (one per replica)", n)
	}

	// Four hours on, the normal renewal mints a token that was not forced:
	// one forced renewal of it is allowed again, since the floor has passed.
	r.clock.Advance(4*time.Hour + time.Second)
	t3, err := a.Token(ctx, "main", ups.Test)
	if err != nil || r.sim.Stats().Refreshes != 2 {
		t.Fatalf("normal renewal: %v, %d refreshes", err, r.sim.Stats().Refreshes)
	}
	a.Invalidate("main", ups.Test, t3)
	if t4, err := a.Token(ctx, "main", ups.Test); err != nil || t4 == t3 || r.sim.Stats().Refreshes != 3 {
		t.Fatalf("forced renewal after the floor: %v, %d refreshes", err, r.sim.Stats().Refreshes)
	}
}

func TestBroker_ForcedRenewalsRespectTheFloorBetweenThem(t *testing.T) {
	r := newRig(t)
	b := r.replica("replica-a", nil, nil)
	now := r.clock.Now()
	for _, c := range []struct {
		name           string
		forced, minted time.Time
		allowed        bool
	}{
		{"never forced", time.Time{}, now.Add(-time.Minute), true},
		{"this pair came from a forced renewal, long ago", now.Add(-time.Hour), now.Add(-time.Hour), false},
		{"forced a minute ago, then renewed normally", now.Add(-time.Minute), now.Add(-time.Second), false},
		{"forced just over the floor ago, then renewed normally", now.Add(-DefaultForcedRenewalFloor - time.Second), now.Add(-time.Second), true},
	} {
		rec := vaultstore.Record{ForcedRenewalAt: c.forced, LastRefresh: c.minted}
		if got := b.forcedRenewalAllowed(rec); got != c.allowed {
			t.Errorf("%s: allowed %v, want %v", c.name, got, c.allowed)
		}
	}
}

// `token refresh` on a token that is due anyway: one rotation, not two.
func TestBroker_ForceRefreshRotatesOnceEvenWhenTheTokenIsDue(t *testing.T) {
	r := newRig(t)
	old := r.login()
	b := r.replica("cli", nil, nil)
	r.clock.Advance(4*time.Hour + time.Second) // the access token has expired
	rec, err := b.ForceRefresh(context.Background(), "main", ups.Test)
	if err != nil {
		t.Fatal(err)
	}
	if n := r.sim.Stats().Refreshes; n != 1 {
		t.Fatalf("UPS saw %d refreshes for one ForceRefresh, want 1", n)
	}
	stored, err := r.store.Get(context.Background(), "main", ups.Test)
	if err != nil || stored.Token.AccessToken != rec.Token.AccessToken || stored.Token.RefreshToken == old.Token.RefreshToken {
		t.Fatalf("Vault does not hold the returned pair (%v)", err)
	}
}

// A failed ForceRefresh says why, although the old token still works.
func TestBroker_ForceRefreshReturnsUPSsAnswerAsTheCause(t *testing.T) {
	r := newRig(t)
	r.login()
	b := r.replica("cli", nil, nil)
	r.sim.SetFault(upssim.Fault{Endpoint: upssim.EndpointRefresh, Status: 503, Times: 1})
	_, err := b.ForceRefresh(context.Background(), "main", ups.Test)
	if !errors.Is(err, ErrRefreshFailed) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("got %v, want ErrRefreshFailed naming UPS's 503", err)
	}
	// Requests still get the old, valid token.
	if _, err := b.Token(context.Background(), "main", ups.Test); err != nil {
		t.Fatalf("Token after the failed refresh: %v", err)
	}
}

// With the clock standing still, a lease that never lapses is waited for
// a bounded number of polls (on the broker's After), not forever.
func TestBroker_WaitingOnAForeignLeaseIsBoundedOnTheInjectedClock(t *testing.T) {
	r := newRig(t)
	rec := r.login()
	rec.LeaseHolder, rec.LeaseUntil = "other-replica", r.clock.Now().Add(10*time.Hour)
	if _, err := r.store.Put(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	n := 0
	b, err := New(Options{
		Store:    r.store,
		Carriers: []Carrier{{Name: "main", Environment: ups.Test, Grant: ups.GrantAuthorizationCode, OAuth: r.oauth}},
		Clock:    r.clock.Now, Holder: "me", LeaseTTL: time.Second, StoreTimeout: time.Second, LeasePoll: 100 * time.Millisecond,
		After: func(time.Duration) <-chan time.Time {
			mu.Lock()
			n++
			mu.Unlock()
			ch := make(chan time.Time, 1)
			ch <- time.Time{}
			return ch
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	r.clock.Advance(4*time.Hour + time.Second) // due, but the lease is held (and never lapses: the clock stands)
	_, err = b.Token(context.Background(), "main", ups.Test)
	if !errors.Is(err, ErrRefreshFailed) || !strings.Contains(err.Error(), "another replica") {
		t.Fatalf("got %v, want a timeout waiting for the other replica", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if n == 0 || n > 21 {
		t.Fatalf("%d polls, want at most (LeaseTTL+StoreTimeout)/LeasePoll+1 = 21", n)
	}
	if s := r.sim.Stats(); s.Refreshes != 0 {
		t.Fatal("refreshed under another replica's lease")
	}
}

// A carrier whose missing tokens the broker learnt of from a request (in
// memory) is reminded about like one read from Vault.
func TestBroker_RemindersReportANotLoggedInCarrierFromMemory(t *testing.T) {
	r := newRig(t)
	core, logs := observer.New(zapcore.InfoLevel)
	b := r.replica("replica-a", zap.New(core), nil)
	if _, err := b.Token(context.Background(), "main", ups.Test); !errors.Is(err, ErrNotLoggedIn) {
		t.Fatalf("Token: %v", err)
	}
	b.RemindOnce(7 * 24 * time.Hour)
	e := logs.FilterMessageSnippet("no UPS tokens stored").FilterLevelExact(zapcore.ErrorLevel).All()
	if len(e) != 1 || e[0].ContextMap()["command"] != LoginCommand("main", ups.Test) || e[0].ContextMap()["error_code"] != "CODE" {
		t.Fatalf("want one ERROR naming the login and the injected code, got %v", logs.All())
	}
}

// An admin logs in again to fix the refusals: the next refused request
// makes the replica re-read Vault (no refresh) and use the new pair.
func TestBroker_ALoginIsPickedUpByTheNextRefusalWithoutARefresh(t *testing.T) {
	r := newRig(t)
	r.login()
	a := r.replica("replica-a", nil, nil)
	ctx := context.Background()
	t1, _ := a.Token(ctx, "main", ups.Test)
	a.Invalidate("main", ups.Test, t1)
	t2, err := a.Token(ctx, "main", ups.Test)
	if err != nil || t2 == t1 {
		t.Fatalf("forced renewal: %v", err)
	}
	// The renewal's pair write runs after the request got t2; the admin's
	// login reads the record after it (Flush: what lands it).
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	fresh := r.login()
	a.Invalidate("main", ups.Test, t2) // declined: t2 came from a forced renewal
	if got, err := a.Token(ctx, "main", ups.Test); err != nil || got != fresh.Token.AccessToken {
		t.Fatalf("the new login's token was not picked up (%v)", err)
	}
	if n := r.sim.Stats().Refreshes; n != 1 {
		t.Fatalf("%d refreshes, want only the one forced renewal", n)
	}
}
