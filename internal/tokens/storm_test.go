package tokens

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// tapStore is the real Vault with a log of the broker's calls, in order
// with the UPS refreshes (tapOAuth), and with the write of a refreshed
// pair held back (gate) or failing (fail) on demand.
type tapStore struct {
	Store
	mu  sync.Mutex
	ops []string
	// gate, when set, holds every pair write until it is closed or the
	// write's context ends; timedOut records the latter.
	gate     chan struct{}
	timedOut bool
	// fail, while set, fails every pair write with it.
	fail error
	// landed is closed when a pair write first succeeds.
	landed   chan struct{}
	landOnce sync.Once
	// readDone, when set, receives once after the first read.
	readDone chan struct{}
}

func newTapStore(st Store) *tapStore { return &tapStore{Store: st, landed: make(chan struct{})} }

func (s *tapStore) note(op string) {
	s.mu.Lock()
	s.ops = append(s.ops, op)
	s.mu.Unlock()
}

func (s *tapStore) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.ops, " ")
}

func (s *tapStore) Get(ctx context.Context, carrier string, env ups.Environment) (vaultstore.Record, error) {
	s.note("read")
	rec, err := s.Store.Get(ctx, carrier, env)
	s.mu.Lock()
	done := s.readDone
	s.readDone = nil
	s.mu.Unlock()
	if done != nil {
		close(done)
	}
	return rec, err
}

func (s *tapStore) Put(ctx context.Context, rec vaultstore.Record) (int, error) {
	if rec.LeaseHolder != "" {
		s.note("lease")
		return s.Store.Put(ctx, rec)
	}
	s.note("pair")
	s.mu.Lock()
	gate, fail := s.gate, s.fail
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			s.mu.Lock()
			s.timedOut = true
			s.mu.Unlock()
			return 0, ctx.Err()
		}
	}
	if fail != nil {
		return 0, fail
	}
	v, err := s.Store.Put(ctx, rec)
	if err == nil {
		s.landOnce.Do(func() { close(s.landed) })
	}
	return v, err
}

// tapOAuth notes each refresh in the store's log before sending it.
type tapOAuth struct {
	OAuth
	s *tapStore
}

func (o tapOAuth) Refresh(ctx context.Context, refreshToken string) (ups.Token, error) {
	o.s.note("refresh")
	return o.OAuth.Refresh(ctx, refreshToken)
}

// tapped builds a replica whose Vault and UPS calls go through st.
func (r *rig) tapped(holder string, st *tapStore) *Broker {
	r.t.Helper()
	b, err := New(Options{
		Store:     st,
		Carriers:  []Carrier{{Name: "main", Environment: ups.Test, Grant: ups.GrantAuthorizationCode, OAuth: tapOAuth{r.oauth, st}}},
		Clock:     r.clock.Now,
		Holder:    holder,
		LeasePoll: 10 * time.Millisecond,
	})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(b.Close)
	return b
}

// storm sends n concurrent Token calls and returns the tokens they got.
func storm(t *testing.T, b *Broker, n int) []string {
	t.Helper()
	got := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = b.Token(context.Background(), "main", ups.Test)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("a waiter got %v", err)
		}
	}
	return got
}

// allEqual fails unless every token is want.
func allEqual(t *testing.T, got []string, want, what string) {
	t.Helper()
	for _, tok := range got {
		if tok != want {
			t.Fatalf("%s: a waiter got another access token than the new one", what)
		}
	}
}

// A refresh storm on a replica that holds the record in memory: the lease
// is claimed (check-and-set on the version in memory, no read first)
// before UPS is called, and the waiters get the new access token while
// the write of the new pair is still held back; meanwhile Vault's lease
// makes another replica wait instead of refreshing, and once the write
// lands both use the one new pair.
func TestBroker_StormWaitersGetTheNewTokenBeforeTheSlowPairWriteLands(t *testing.T) {
	r := newRig(t)
	old := r.login()
	st := newTapStore(r.store)
	a := r.tapped("replica-a", st)
	if tok, err := a.Token(context.Background(), "main", ups.Test); err != nil || tok != old.Token.AccessToken {
		t.Fatalf("loading the record: %v", err)
	}
	st.mu.Lock()
	st.ops, st.gate = nil, make(chan struct{})
	st.mu.Unlock()
	r.clock.Advance(4*time.Hour + time.Second)

	// Without the early release the storm returns only once the held
	// write gives up (StoreTimeout), and timedOut says so.
	got := storm(t, a, 200)
	st.mu.Lock()
	timedOut := st.timedOut
	st.mu.Unlock()
	if timedOut {
		t.Fatalf("the waiters were held until the pair write to Vault gave up (calls %q)", st.log())
	}
	fresh := got[0]
	if fresh == old.Token.AccessToken {
		t.Fatal("the waiters got the old access token")
	}
	allEqual(t, got, fresh, "storm")
	if n := r.sim.Stats().Refreshes; n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
	if ops := st.log(); !strings.HasPrefix(ops, "lease refresh") {
		t.Fatalf("the broker's calls were %q, want the lease claimed (without a read first) before the refresh", ops)
	}

	// The write is still held: Vault has the spent refresh token under
	// replica-a's lease, and replica-b waits on it rather than refresh.
	stored, err := r.store.Get(context.Background(), "main", ups.Test)
	if err != nil {
		t.Fatal(err)
	}
	if stored.LeaseHolder != "replica-a" || stored.Token.RefreshToken != old.Token.RefreshToken {
		t.Fatalf("while the pair write is pending Vault holds lease %q and the old refresh token %v, want replica-a's lease over it",
			stored.LeaseHolder, stored.Token.RefreshToken == old.Token.RefreshToken)
	}
	stb := newTapStore(r.store)
	read := make(chan struct{})
	stb.readDone = read
	b := r.tapped("replica-b", stb)
	type result struct {
		tok string
		err error
	}
	res := make(chan result, 1)
	go func() {
		tok, err := b.Token(context.Background(), "main", ups.Test)
		res <- result{tok, err}
	}()
	<-read // replica-b has seen the lease
	close(st.gate)
	if out := <-res; out.err != nil || out.tok != fresh {
		t.Fatalf("replica-b got %v and the new token: %v, want the pair replica-a wrote", out.err, out.tok == fresh)
	}
	if s := r.sim.Stats(); s.Refreshes != 1 || s.RefreshRejected != 0 {
		t.Fatalf("refreshes %d rejected %d, want 1 and 0", s.Refreshes, s.RefreshRejected)
	}
	if strings.Contains(stb.log(), "refresh") {
		t.Fatalf("replica-b refreshed: %q", stb.log())
	}

	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	stored, err = r.store.Get(context.Background(), "main", ups.Test)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Token.AccessToken != fresh || stored.Token.RefreshToken == old.Token.RefreshToken || stored.LeaseHolder != "" {
		t.Fatal("after Flush Vault does not hold the new pair without a lease")
	}
}

// The pair write fails after the waiters were released: it is retried in
// the background until Vault takes it, the next refresh spends the new
// refresh token (UPS accepts it), and no other replica refreshes with the
// spent one meanwhile.
func TestBroker_PairWriteFailingAfterTheEarlyReleaseIsRetriedAndTheRefreshTokenIsNotLost(t *testing.T) {
	r := newRig(t)
	old := r.login()
	st := newTapStore(r.store)
	a := r.tapped("replica-a", st)
	if _, err := a.Token(context.Background(), "main", ups.Test); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	st.fail = errors.New("vault: 503 Service Unavailable")
	st.mu.Unlock()
	r.clock.Advance(4*time.Hour + time.Second)

	got := storm(t, a, 100)
	fresh := got[0]
	if fresh == old.Token.AccessToken {
		t.Fatal("the waiters got the old access token")
	}
	allEqual(t, got, fresh, "storm")
	if err := a.Flush(context.Background()); err == nil || !strings.Contains(err.Error(), "main/test") {
		t.Fatalf("Flush while Vault refuses the write: %v, want the carrier named", err)
	}
	// Another replica meanwhile finds replica-a's lease and does not
	// refresh; it gives up waiting (its context) without touching UPS.
	b := r.tapped("replica-b", newTapStore(r.store))
	ctx, cancel := context.WithCancel(context.Background())
	read := make(chan struct{})
	stb := b.opts.Store.(*tapStore)
	stb.readDone = read
	res := make(chan error, 1)
	go func() {
		_, err := b.Token(ctx, "main", ups.Test)
		res <- err
	}()
	<-read
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Fatalf("replica-b: %v, want it still waiting on the lease when its request ended", err)
	}

	// Vault accepts writes again: the background retry lands the pair
	// without anyone calling Flush.
	st.mu.Lock()
	st.fail = nil
	st.mu.Unlock()
	select {
	case <-st.landed:
	case <-time.After(time.Minute):
		t.Fatal("the failed pair write was not retried")
	}
	stored, err := r.store.Get(context.Background(), "main", ups.Test)
	if err != nil || stored.Token.AccessToken != fresh || stored.LeaseHolder != "" {
		t.Fatalf("Vault does not hold the new pair after the retry: %v", err)
	}

	// The stored refresh token is the live one: the next renewal, on
	// either replica, is accepted by UPS.
	r.clock.Advance(4*time.Hour + time.Second)
	next, err := b.Token(context.Background(), "main", ups.Test)
	if err != nil || next == fresh {
		t.Fatalf("renewing with the stored refresh token: %v", err)
	}
	if s := r.sim.Stats(); s.Refreshes != 2 || s.RefreshRejected != 0 {
		t.Fatalf("refreshes %d rejected %d, want 2 and 0", s.Refreshes, s.RefreshRejected)
	}
}

// Two replicas, each holding the record in memory, storm at the same
// instant: both try the lease with check-and-set on the same version, one
// wins, and UPS sees exactly one refresh whose pair every request gets.
func TestBroker_TwoReplicasStormingAtOnceRefreshOnce(t *testing.T) {
	r := newRig(t)
	old := r.login()
	sa, sb := newTapStore(r.store), newTapStore(r.store)
	a, b := r.tapped("replica-a", sa), r.tapped("replica-b", sb)
	for _, br := range []*Broker{a, b} {
		if _, err := br.Token(context.Background(), "main", ups.Test); err != nil {
			t.Fatal(err)
		}
	}
	r.clock.Advance(4*time.Hour + time.Second)
	var (
		wg         sync.WaitGroup
		gotA, gotB []string
	)
	wg.Add(2)
	go func() { defer wg.Done(); gotA = storm(t, a, 100) }()
	go func() { defer wg.Done(); gotB = storm(t, b, 100) }()
	wg.Wait()
	if t.Failed() {
		return
	}
	if s := r.sim.Stats(); s.Refreshes != 1 || s.RefreshRejected != 0 {
		t.Fatalf("refreshes %d rejected %d, want 1 and 0 (calls: a %q, b %q)", s.Refreshes, s.RefreshRejected, sa.log(), sb.log())
	}
	fresh := gotA[0]
	if fresh == old.Token.AccessToken {
		t.Fatal("replica-a's waiters got the old token")
	}
	allEqual(t, gotA, fresh, "replica-a")
	allEqual(t, gotB, fresh, "replica-b")
	for i, br := range []*Broker{a, b} {
		if err := br.Flush(context.Background()); err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	stored, err := r.store.Get(context.Background(), "main", ups.Test)
	if err != nil || stored.Token.AccessToken != fresh || stored.LeaseHolder != "" {
		t.Fatalf("Vault does not hold the one new pair: %v", err)
	}
}

// Memory stands in for a read only if the claim's check-and-set proves it
// current: a login stored meanwhile makes the claim conflict, and the
// broker uses the new login instead of refreshing the old pair.
func TestBroker_StaleRecordInMemoryIsNotRefreshedWhenALoginReplacedIt(t *testing.T) {
	r := newRig(t)
	r.login()
	st := newTapStore(r.store)
	a := r.tapped("replica-a", st)
	if _, err := a.Token(context.Background(), "main", ups.Test); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	st.ops = nil
	st.mu.Unlock()
	r.clock.Advance(4*time.Hour + time.Second)
	relogin := r.login() // an admin logs in again; replica-a's memory is stale
	got, err := a.Token(context.Background(), "main", ups.Test)
	if err != nil || got != relogin.Token.AccessToken {
		t.Fatalf("got %v, want the new login's token", err)
	}
	if n := r.sim.Stats().Refreshes; n != 0 {
		t.Fatalf("%d refreshes of a replaced pair (calls %q)", n, st.log())
	}
	if ops := st.log(); ops != "lease read" {
		t.Fatalf("calls %q, want the claim's conflict and one read", ops)
	}
}
