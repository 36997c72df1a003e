package tokens

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/upsproxy/upsproxy/internal/testutil/fakeclock"
	"github.com/upsproxy/upsproxy/internal/testutil/vaultdevtest"
	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/upssim"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

const (
	clientID = "broker-test-client"
	secret   = "broker+secret %41 x"
	redirect = "https://127.0.0.1/upscallback"
)

// rig is a real Vault, the simulator and a way to build brokers (replicas)
// sharing them, all on one fake clock.
type rig struct {
	t     *testing.T
	clock *fakeclock.Clock
	vault *vaultdevtest.Server
	store *vaultstore.Store
	sim   *upssim.Server
	oauth *ups.Client
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{t: t, clock: fakeclock.New(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))}
	r.vault = vaultdevtest.Start(t)
	st, err := vaultstore.New(vaultstore.Options{Client: r.vault.Client(t), Mount: "secret", Prefix: "broker-test"})
	if err != nil {
		t.Fatal(err)
	}
	r.store = st
	r.sim = upssim.New(upssim.Options{
		Clients: map[string]string{clientID: secret}, Clock: r.clock.Now,
		AccessTTL: 4 * time.Hour, RefreshTTL: 60 * 24 * time.Hour,
	})
	srv := httptest.NewServer(r.sim)
	t.Cleanup(srv.Close)
	base, _ := url.Parse(srv.URL)
	r.oauth, err = ups.NewClient(ups.Config{
		BaseURL: base, ClientID: clientID, ClientSecret: secret, RedirectURI: redirect,
		HTTPClient: &http.Client{Timeout: 10 * time.Second}, Clock: r.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// login stores a fresh pair as `upsproxy login` would.
func (r *rig) login() vaultstore.Record {
	r.t.Helper()
	tok, err := r.oauth.Exchange(context.Background(), r.sim.IssueCode(clientID, redirect, ""), "")
	if err != nil {
		r.t.Fatal(err)
	}
	rec := vaultstore.Record{Carrier: "main", Environment: ups.Test, Grant: ups.GrantAuthorizationCode, Token: tok, UpdatedBy: "login"}
	cur, err := r.store.Get(context.Background(), "main", ups.Test)
	if err == nil {
		rec.Version = cur.Version
	}
	if rec.Version, err = r.store.Put(context.Background(), rec); err != nil {
		r.t.Fatal(err)
	}
	return rec
}

func (r *rig) broker(log *zap.Logger, grant string) *Broker {
	r.t.Helper()
	if log == nil {
		log = zap.NewNop()
	}
	b, err := New(Options{
		Store:    r.store,
		Carriers: []Carrier{{Name: "main", Environment: ups.Test, Grant: grant, OAuth: r.oauth}},
		Logger:   log, Clock: r.clock.Now, Holder: "test",
	})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(b.Close)
	return b
}

func TestBroker_FreshTokenComesFromMemoryWithoutTouchingUPS(t *testing.T) {
	r := newRig(t)
	rec := r.login()
	b := r.broker(nil, ups.GrantAuthorizationCode)
	for i := 0; i < 3; i++ {
		tok, err := b.Token(context.Background(), "main", ups.Test)
		if err != nil || tok != rec.Token.AccessToken {
			t.Fatalf("Token() = %v, want the stored access token", err)
		}
	}
	if s := r.sim.Stats(); s.Refreshes != 0 {
		t.Fatalf("%d refreshes for a fresh token", s.Refreshes)
	}
}

func TestBroker_ExpiredAccessTokenIsRefreshedOnceForManyWaitersAndStoredInVault(t *testing.T) {
	r := newRig(t)
	old := r.login()
	b := r.broker(nil, ups.GrantAuthorizationCode)
	r.clock.Advance(4*time.Hour + time.Second)

	var wg sync.WaitGroup
	got := make([]string, 50)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := b.Token(context.Background(), "main", ups.Test)
			if err != nil {
				t.Error(err)
			}
			got[i] = tok
		}()
	}
	wg.Wait()
	if n := r.sim.Stats().Refreshes; n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
	// The waiters were released when UPS answered; the pair is written to
	// Vault in the background, and Flush (what serve runs on shutdown)
	// returns once it is there.
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	stored, err := r.store.Get(context.Background(), "main", ups.Test)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Token.RefreshToken == old.Token.RefreshToken || stored.Token.RefreshCount != 1 || stored.LeaseHolder != "" {
		t.Fatal("Vault does not hold the rotated pair")
	}
	for _, tok := range got {
		if tok != stored.Token.AccessToken {
			t.Fatal("a waiter did not get the new access token")
		}
	}
}

func TestBroker_ExpiredRefreshTokenIsNeverSentAndGivesRefreshExpiredError(t *testing.T) {
	r := newRig(t)
	rec := r.login()
	b := r.broker(nil, ups.GrantAuthorizationCode)
	r.clock.Advance(61 * 24 * time.Hour)
	_, err := b.Token(context.Background(), "main", ups.Test)
	var rerr *RefreshExpiredError
	if !errors.As(err, &rerr) || rerr.Rejected || !rerr.ExpiredAt.Equal(rec.Token.RefreshExpiresAt) {
		t.Fatalf("got %v, want an expiry error at %s", err, rec.Token.RefreshExpiresAt)
	}
	if s := r.sim.Stats(); s.Refreshes+s.RefreshRejected != 0 {
		t.Fatal("an expired refresh token was sent to UPS")
	}
}

func TestBroker_RejectedRefreshTokenIsMarkedInVaultSoOtherReplicasStopAtOnce(t *testing.T) {
	r := newRig(t)
	r.login()
	a := r.broker(nil, ups.GrantAuthorizationCode)
	r.clock.Advance(5 * time.Hour)
	r.sim.RejectRefreshTokens()
	_, err := a.Token(context.Background(), "main", ups.Test)
	var rerr *RefreshExpiredError
	if !errors.As(err, &rerr) || !rerr.Rejected {
		t.Fatalf("got %v, want a rejection", err)
	}
	stored, _ := r.store.Get(context.Background(), "main", ups.Test)
	if !stored.Rejected {
		t.Fatal("record not marked rejected")
	}
	b := r.broker(nil, ups.GrantAuthorizationCode)
	if _, err := b.Token(context.Background(), "main", ups.Test); !errors.As(err, &rerr) {
		t.Fatalf("second replica got %v", err)
	}
	if n := r.sim.Stats().RefreshRejected; n != 1 {
		t.Fatalf("UPS saw %d rejected refreshes, want 1", n)
	}
}

func TestBroker_ReplicaThatLostTheRaceUsesTheWinnersPairWithoutMarkingRejected(t *testing.T) {
	r := newRig(t)
	r.login()
	// Replicas have holder names of their own (serve: host/pid): a lease
	// under one's own name is taken for one's own.
	a := r.replica("replica-a", nil, nil)
	b := r.replica("replica-b", nil, nil)
	// Both replicas hold the original pair in memory.
	for _, br := range []*Broker{a, b} {
		if _, err := br.Token(context.Background(), "main", ups.Test); err != nil {
			t.Fatal(err)
		}
	}
	r.clock.Advance(4*time.Hour + time.Second)
	ta, err := a.Token(context.Background(), "main", ups.Test)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := b.Token(context.Background(), "main", ups.Test)
	if err != nil {
		t.Fatalf("the second replica failed: %v", err)
	}
	if ta != tb {
		t.Fatal("replicas use different access tokens")
	}
	if s := r.sim.Stats(); s.Refreshes != 1 || s.RefreshRejected != 0 {
		t.Fatalf("refreshes %d rejected %d, want 1 and 0", s.Refreshes, s.RefreshRejected)
	}
	if stored, _ := r.store.Get(context.Background(), "main", ups.Test); stored.Rejected {
		t.Fatal("record marked rejected after a lost race")
	}
}

func TestBroker_TransientTokenEndpointFaultsKeepTheOldTokenThenGiveRefreshFailed(t *testing.T) {
	r := newRig(t)
	rec := r.login()
	b := r.broker(nil, ups.GrantAuthorizationCode)
	for _, f := range []upssim.Fault{
		{Endpoint: "refresh", Status: 503, Body: "<html>Service Unavailable</html>", ContentType: "text/html"},
		{Endpoint: "refresh", Status: 429, Body: `{"response":{"errors":[{"code":"10429","message":"Too Many Requests"}]}}`, ContentType: "application/json"},
		{Endpoint: "refresh", Status: 200, Body: "<html>maintenance</html>", ContentType: "text/html"},
	} {
		r.sim.SetFault(f)
		// Inside the renewal margin but not expired: the old token serves.
		r.clock.Set(rec.Token.ExpiresAt.Add(-30 * time.Second))
		tok, err := b.Token(context.Background(), "main", ups.Test)
		if err != nil || tok != rec.Token.AccessToken {
			t.Fatalf("fault %d: got %v, want the still-valid token", f.Status, err)
		}
		r.clock.Set(rec.Token.ExpiresAt.Add(time.Second))
		if _, err := b.Token(context.Background(), "main", ups.Test); !errors.Is(err, ErrRefreshFailed) {
			t.Fatalf("fault %d: got %v, want ErrRefreshFailed", f.Status, err)
		}
		r.sim.ClearFaults()
	}
	if stored, _ := r.store.Get(context.Background(), "main", ups.Test); stored.Rejected {
		t.Fatal("a transient fault marked the refresh token rejected")
	}
	// Once UPS is back (and the backoff has passed), the same refresh
	// token still works.
	r.clock.Advance(time.Minute)
	if _, err := b.Token(context.Background(), "main", ups.Test); err != nil {
		t.Fatalf("after the faults: %v", err)
	}
}

// sealingStore seals the real Vault just before the refreshed pair is
// written: the one moment a failure would lose a single-use refresh token.
type sealingStore struct {
	Store
	t     *testing.T
	vault *vaultdevtest.Server
	once  sync.Once
}

func (s *sealingStore) Put(ctx context.Context, rec vaultstore.Record) (int, error) {
	if rec.LeaseHolder == "" && rec.Token.RefreshCount > 0 {
		s.once.Do(func() { s.vault.Seal(s.t) })
	}
	return s.Store.Put(ctx, rec)
}

func TestBroker_NewPairIsKeptInMemoryWhenVaultFailsAfterUPSAnsweredAndStoredWhenItIsBack(t *testing.T) {
	r := newRig(t)
	r.login()
	core, logs := observer.New(zapcore.InfoLevel)
	b, err := New(Options{
		Store:    &sealingStore{Store: r.store, t: t, vault: r.vault},
		Carriers: []Carrier{{Name: "main", Environment: ups.Test, Grant: ups.GrantAuthorizationCode, OAuth: r.oauth}},
		Logger:   zap.New(core), Clock: r.clock.Now, Holder: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r.clock.Advance(4*time.Hour + time.Second)
	tok, err := b.Token(context.Background(), "main", ups.Test)
	if err != nil {
		t.Fatalf("no token although UPS answered: %v", err)
	}
	// The write runs after the waiters are released; Flush waits for it
	// and tries again itself.
	if err := b.Flush(context.Background()); err == nil {
		t.Fatal("Flush reported the pair stored although Vault is sealed")
	}
	if logs.FilterMessageSnippet("keeping them in memory").FilterLevelExact(zapcore.ErrorLevel).Len() == 0 {
		t.Fatal("no ERROR line about the unstored pair")
	}
	// Vault is sealed: requests keep flowing from memory.
	for i := 0; i < 3; i++ {
		if again, err := b.Token(context.Background(), "main", ups.Test); err != nil || again != tok {
			t.Fatalf("request while sealed: %v", err)
		}
	}
	r.vault.Unseal(t)
	if err := b.Flush(context.Background()); err != nil {
		t.Fatalf("flush after unseal: %v", err)
	}
	stored, err := r.store.Get(context.Background(), "main", ups.Test)
	if err != nil || stored.Token.AccessToken != tok || stored.LeaseHolder != "" {
		t.Fatalf("Vault does not hold the pair minted while it was sealed: %v", err)
	}
	if n := r.sim.Stats().Refreshes; n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
}

func TestBroker_SealedVaultServesTheValidTokenInMemoryAndStoreUnavailableOnceItExpires(t *testing.T) {
	r := newRig(t)
	rec := r.login()
	b := r.broker(nil, ups.GrantAuthorizationCode)
	if _, err := b.Token(context.Background(), "main", ups.Test); err != nil {
		t.Fatal(err)
	}
	r.vault.Seal(t)
	r.clock.Advance(3 * time.Hour)
	if tok, err := b.Token(context.Background(), "main", ups.Test); err != nil || tok != rec.Token.AccessToken {
		t.Fatalf("valid token in memory not served while Vault is sealed: %v", err)
	}
	r.clock.Advance(time.Hour + time.Second)
	if _, err := b.Token(context.Background(), "main", ups.Test); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("got %v, want ErrStoreUnavailable", err)
	}
	if n := r.sim.Stats().Refreshes; n != 0 {
		t.Fatalf("refreshed without the Vault lease: %d", n)
	}
}

func TestBroker_NotLoggedInCarrier(t *testing.T) {
	r := newRig(t)
	b := r.broker(nil, ups.GrantAuthorizationCode)
	if _, err := b.Token(context.Background(), "main", ups.Test); !errors.Is(err, ErrNotLoggedIn) {
		t.Fatalf("got %v", err)
	}
	if _, err := b.Token(context.Background(), "other", ups.Test); !errors.Is(err, ErrNotLoggedIn) {
		t.Fatalf("unknown carrier: got %v", err)
	}
}

func TestBroker_ClientCredentialsCarrierMintsItsOwnTokenWithoutLogin(t *testing.T) {
	r := newRig(t)
	b := r.broker(nil, ups.GrantClientCredentials)
	tok, err := b.Token(context.Background(), "main", ups.Test)
	if err != nil || tok == "" {
		t.Fatalf("got %v", err)
	}
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	stored, err := r.store.Get(context.Background(), "main", ups.Test)
	if err != nil || stored.Token.AccessToken != tok || stored.Grant != ups.GrantClientCredentials {
		t.Fatalf("not stored: %v", err)
	}
	r.clock.Advance(4*time.Hour + time.Second)
	tok2, err := b.Token(context.Background(), "main", ups.Test)
	if err != nil || tok2 == tok {
		t.Fatalf("expired client-credentials token not renewed: %v", err)
	}
	if n := r.sim.Stats().ClientCredentialsGrants; n != 2 {
		t.Fatalf("%d client-credentials grants, want 2", n)
	}
}

func TestBroker_RemindersWarnWithinTheWindowAndErrorOnceExpired(t *testing.T) {
	r := newRig(t)
	rec := r.login()
	core, logs := observer.New(zapcore.InfoLevel)
	b := r.broker(zap.New(core), ups.GrantAuthorizationCode)

	b.RemindOnce(7 * 24 * time.Hour)
	if logs.Len() != 0 {
		t.Fatalf("reminder 60 days ahead: %v", logs.All())
	}
	r.clock.Set(rec.Token.RefreshExpiresAt.Add(-72 * time.Hour))
	b.RemindOnce(7 * 24 * time.Hour)
	w := logs.FilterLevelExact(zapcore.WarnLevel).All()
	if len(w) != 1 {
		t.Fatalf("want one WARN, got %v", logs.All())
	}
	f := w[0].ContextMap()
	if f["carrier"] != "main" || f["environment"] != "test" || f["days_left"] != int64(3) || f["refresh_token_expires_at"] == nil {
		t.Fatalf("WARN fields %v", f)
	}
	r.clock.Set(rec.Token.RefreshExpiresAt.Add(time.Hour))
	b.RemindOnce(7 * 24 * time.Hour)
	if logs.FilterLevelExact(zapcore.ErrorLevel).Len() != 1 {
		t.Fatalf("want one ERROR once expired, got %v", logs.All())
	}
}

func TestBroker_InvalidatedTokenIsRenewedOnceEvenThoughVaultStillHoldsIt(t *testing.T) {
	r := newRig(t)
	rec := r.login()
	b := r.broker(nil, ups.GrantAuthorizationCode)
	tok, err := b.Token(context.Background(), "main", ups.Test)
	if err != nil || tok != rec.Token.AccessToken {
		t.Fatal(err)
	}
	// UPS answered 401 to it: the proxy invalidates, then asks again.
	b.Invalidate("main", ups.Test, tok)
	fresh, err := b.Token(context.Background(), "main", ups.Test)
	if err != nil || fresh == tok {
		t.Fatalf("invalidated token not renewed: %v", err)
	}
	// A second invalidation of the old token changes nothing.
	b.Invalidate("main", ups.Test, tok)
	again, err := b.Token(context.Background(), "main", ups.Test)
	if err != nil || again != fresh {
		t.Fatalf("stale invalidation renewed again: %v", err)
	}
	if n := r.sim.Stats().Refreshes; n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
	forced, err := b.ForceRefresh(context.Background(), "main", ups.Test)
	if err != nil || forced.Token.AccessToken == fresh || forced.Token.RefreshCount != 2 {
		t.Fatalf("ForceRefresh: %v", err)
	}
}

func TestBroker_SlowTokenEndpointTimesOutAsRefreshFailedNotExpired(t *testing.T) {
	r := newRig(t)
	rec := r.login()
	b, err := New(Options{
		Store:    r.store,
		Carriers: []Carrier{{Name: "main", Environment: ups.Test, Grant: ups.GrantAuthorizationCode, OAuth: r.oauth}},
		Clock:    r.clock.Now, Holder: "test", OAuthTimeout: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r.sim.SetFault(upssim.Fault{Endpoint: "refresh", Delay: 5 * time.Second})
	r.clock.Set(rec.Token.ExpiresAt.Add(time.Second))
	start := time.Now()
	if _, err := b.Token(context.Background(), "main", ups.Test); !errors.Is(err, ErrRefreshFailed) {
		t.Fatalf("got %v, want ErrRefreshFailed", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("a hanging token endpoint held the request %s", took)
	}
	if stored, _ := r.store.Get(context.Background(), "main", ups.Test); stored.Rejected || stored.LeaseHolder != "" {
		t.Fatalf("after a timeout: rejected=%v lease=%q, want neither", stored.Rejected, stored.LeaseHolder)
	}
}
