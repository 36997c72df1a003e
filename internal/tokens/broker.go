// Package tokens is the token broker: it keeps each carrier/environment's
// UPS tokens in memory so the proxy's hot path never waits on Vault,
// refreshes them before they expire, once across all replicas (a lease in
// the Vault record, claimed with check-and-set), writes every new pair back
// with check-and-set, and never discards a single-use refresh token.
package tokens

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// Store is the persistent token store (Vault KV v2 in production).
type Store interface {
	Get(ctx context.Context, carrier string, env ups.Environment) (vaultstore.Record, error)
	Put(ctx context.Context, rec vaultstore.Record) (int, error)
}

// OAuth is the UPS token endpoint of one carrier and environment.
type OAuth interface {
	Refresh(ctx context.Context, refreshToken string) (ups.Token, error)
	ClientCredentials(ctx context.Context) (ups.Token, error)
}

// Metrics receives token events; nil means none are recorded.
type Metrics interface {
	// Refreshed counts a refresh attempt: result is "ok", "rejected",
	// "failed" or "adopted" (another replica's pair was taken over).
	Refreshed(carrier string, env ups.Environment, result string)
	// Expiries reports the current pair's expiry times.
	Expiries(carrier string, env ups.Environment, access, refresh time.Time)
	// Refused counts a 401 from UPS to a token the broker will not renew
	// again (see Invalidate): the UPS app most likely lacks the API product.
	Refused(carrier string, env ups.Environment)
}

// DefaultForcedRenewalFloor is the least time between two renewals forced
// by UPS refusing a token (Options.ForcedRenewalFloor).
const DefaultForcedRenewalFloor = 5 * time.Minute

// Carrier is one carrier/environment pair the broker serves.
type Carrier struct {
	Name        string
	Environment ups.Environment
	Grant       string
	Inactive    bool
	OAuth       OAuth
}

// Options configure a Broker.
type Options struct {
	Store    Store
	Carriers []Carrier
	Logger   *zap.Logger
	Clock    func() time.Time
	Metrics  Metrics
	// Holder names this process in leases and the records it writes.
	Holder string
	// RefreshMargin: a request finding its access token this close to
	// expiry renews it first (never more than a tenth of the lifetime).
	// Default 2 minutes.
	RefreshMargin time.Duration
	// ProactiveAt is the fraction of an access token's lifetime after which
	// the background refresher renews it (±5% jitter per replica).
	// Default 0.8.
	ProactiveAt float64
	// StoreTimeout bounds each Vault call. Default 10s.
	StoreTimeout time.Duration
	// OAuthTimeout bounds each call to UPS's token endpoint. Default 15s.
	OAuthTimeout time.Duration
	// LeaseTTL is how long a claimed refresh lease holds off other
	// replicas. Default OAuthTimeout + 2×StoreTimeout.
	LeaseTTL time.Duration
	// RecheckAfter: how long an error state (not logged in, rejected) is
	// served from memory before the store is read again, so a fresh login
	// is picked up without a restart. Default 5s.
	RecheckAfter time.Duration
	// LeasePoll is how often a replica waiting on another's lease re-reads
	// the store. Default 200ms.
	LeasePoll time.Duration
	// ForcedRenewalFloor is the least time between two renewals forced by
	// UPS answering 401 to a token (Invalidate), across all replicas.
	// Default DefaultForcedRenewalFloor.
	ForcedRenewalFloor time.Duration
	// After waits like time.After; with Clock it is the broker's time
	// (tests inject both). Default time.After.
	After func(time.Duration) <-chan time.Time
	// ErrorCode is the client-facing code of a broker error: the proxy's
	// one mapper (proxy.TokenErrorCode), injected so that logs and /status
	// name the code a client gets. nil leaves codes out.
	ErrorCode func(error) string
}

type key struct {
	carrier string
	env     ups.Environment
}

// state is an immutable snapshot of a carrier/environment's tokens.
type state struct {
	rec vaultstore.Record
	// dirty: rec holds a pair Vault has not accepted yet.
	dirty bool
	// err is what every request gets until something changes (not logged
	// in, refresh token expired or rejected); nil when the token is usable.
	err error
	// spent is the refresh token UPS consumed to mint rec (dirty only).
	spent string
	// refreshAt: from then on requests renew before using the token.
	refreshAt time.Time
	// proactiveAt: from then on the background refresher renews it.
	proactiveAt time.Time
	// recheckAt: an error state is re-read from the store after this.
	recheckAt time.Time
	// reread: the next renewal must read the store, not trust memory
	// (recheckRefused: a login may have replaced the refused pair).
	reread bool
}

type entry struct {
	carrier atomic.Pointer[Carrier] // replaced on config reload
	cur     atomic.Pointer[state]
	// mu serialises store writes for this entry.
	mu sync.Mutex
	// retrying is set while a background write retry runs.
	retrying atomic.Bool
	// status for /status: last refresh result and error.
	lastRefresh atomic.Pointer[refreshResult]
	// refused is the access token UPS last answered 401 to, when a renewal
	// was allowed for it.
	refused atomic.Pointer[string]
	// declined counts 401s to tokens the broker would not renew again;
	// declinedAt is the last one, declineLogged when it was last logged.
	declined      atomic.Int64
	declinedAt    atomic.Pointer[time.Time]
	declineLogged atomic.Pointer[time.Time]
	// recheckRefusedAt: the next time a declined 401 may re-read the store.
	recheckRefusedAt atomic.Pointer[time.Time]
	// backoff after transient refresh failures (guarded by the flight).
	failures  int
	failUntil time.Time
	failErr   error
	// began: when the current renewal started (guarded by the flight),
	// for the timings of the "access token refreshed" line.
	began time.Time
}

type refreshResult struct {
	at     time.Time
	result string
	err    string
}

// Broker hands out access tokens and keeps them fresh.
type Broker struct {
	opts    Options
	log     *zap.Logger
	now     func() time.Time
	entries atomic.Pointer[map[key]*entry]
	// warnBefore is the reminder window RunReminders was given, for the
	// verdicts on /status.
	warnBefore atomic.Int64
	flight     singleflight.Group
	done       chan struct{}
	close      sync.Once
}

// New builds a broker for the given carriers. It does not contact Vault:
// records are loaded lazily or by Preload.
func New(opts Options) (*Broker, error) {
	if opts.Store == nil {
		return nil, errors.New("tokens: a Store is required")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.RefreshMargin <= 0 {
		opts.RefreshMargin = 2 * time.Minute
	}
	if opts.ProactiveAt <= 0 || opts.ProactiveAt >= 1 {
		opts.ProactiveAt = 0.8
	}
	if opts.StoreTimeout <= 0 {
		opts.StoreTimeout = 10 * time.Second
	}
	if opts.OAuthTimeout <= 0 {
		opts.OAuthTimeout = 15 * time.Second
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = opts.OAuthTimeout + 2*opts.StoreTimeout
	}
	if opts.RecheckAfter <= 0 {
		opts.RecheckAfter = 5 * time.Second
	}
	if opts.LeasePoll <= 0 {
		opts.LeasePoll = 200 * time.Millisecond
	}
	if opts.ForcedRenewalFloor <= 0 {
		opts.ForcedRenewalFloor = DefaultForcedRenewalFloor
	}
	if opts.After == nil {
		opts.After = time.After
	}
	if opts.Holder == "" {
		opts.Holder = fmt.Sprintf("upsproxy-%08x", rand.Uint32())
	}
	b := &Broker{opts: opts, log: opts.Logger, now: opts.Clock, done: make(chan struct{})}
	if err := b.Update(opts.Carriers); err != nil {
		return nil, err
	}
	return b, nil
}

// car is the entry's current carrier configuration.
func (e *entry) car() *Carrier { return e.carrier.Load() }

// entryMap is the current set of entries; read-only.
func (b *Broker) entryMap() map[key]*entry {
	if m := b.entries.Load(); m != nil {
		return *m
	}
	return nil
}

// Update replaces the carrier set (config reload). Entries of carriers that
// stay keep their tokens in memory, including pairs Vault has not accepted
// yet; removed carriers' unstored pairs are flushed first.
func (b *Broker) Update(carriers []Carrier) error {
	old := b.entryMap()
	next := make(map[key]*entry, len(carriers))
	for _, c := range carriers {
		if !c.Environment.Valid() {
			return fmt.Errorf("tokens: carrier %q: invalid environment %q", c.Name, c.Environment)
		}
		k := key{c.Name, c.Environment}
		if _, dup := next[k]; dup {
			return fmt.Errorf("tokens: carrier %q (%s) listed twice", c.Name, c.Environment)
		}
		if c.OAuth == nil {
			return fmt.Errorf("tokens: carrier %q (%s) has no OAuth client", c.Name, c.Environment)
		}
		if c.Grant == "" {
			c.Grant = ups.GrantAuthorizationCode
		}
		e := old[k]
		if e == nil {
			e = &entry{}
		}
		next[k] = e
	}
	// Validation done: publish.
	for _, c := range carriers {
		c := c
		if c.Grant == "" {
			c.Grant = ups.GrantAuthorizationCode
		}
		next[key{c.Name, c.Environment}].carrier.Store(&c)
	}
	b.entries.Store(&next)
	for k, e := range old {
		if _, kept := next[k]; !kept {
			b.persist(e, b.logger(e))
		}
	}
	return nil
}

// Token returns a usable access token for the carrier/environment. In
// steady state it is a map lookup, an atomic load and a clock read; only
// when the token is missing or near expiry does it wait for one (shared)
// load or refresh.
func (b *Broker) Token(ctx context.Context, carrier string, env ups.Environment) (string, error) {
	e, ok := b.entryMap()[key{carrier, env}]
	if !ok {
		return "", ErrNotLoggedIn
	}
	if s := e.cur.Load(); s != nil {
		now := b.now()
		if s.err == nil && now.Before(s.refreshAt) {
			return s.rec.Token.AccessToken, nil
		}
		if s.err != nil && now.Before(s.recheckAt) {
			return "", s.err
		}
	}
	s, err := b.renew(ctx, e, b.needsRenewal)
	if s == nil {
		return "", err
	}
	return s.rec.Token.AccessToken, nil // err: a failed renewal; the token still works
}

// Invalidate tells the broker UPS refused token (401/250002): the next
// Token call renews it through the lease, unless a newer token is already
// in use or stored by another replica.
//
// A 401 cannot drive refreshes, though. UPS also answers 401/250002 when
// the UPS app lacks the called API's product, whatever the token, and each
// renewal spends a single-use refresh token against UPS's rate limits. So a
// token minted by a forced renewal is never force-renewed again, and no
// forced renewal follows another within ForcedRenewalFloor. Both facts are
// in the stored record (ForcedRenewalAt), so they hold across replicas;
// renewShared checks them again on the record it read under the lease.
// A refused token that is not renewed is logged (ERROR, at most once per
// floor), counted (Metrics.Refused) and shown on /status.
func (b *Broker) Invalidate(carrier string, env ups.Environment, token string) {
	e, ok := b.entryMap()[key{carrier, env}]
	if !ok || token == "" {
		return
	}
	s := e.cur.Load()
	if s != nil && s.err == nil && s.rec.Token.AccessToken == token && !b.forcedRenewalAllowed(s.rec) {
		b.declineRenewal(e, s.rec)
		b.recheckRefused(e, s)
		return
	}
	e.refused.Store(&token)
	if s == nil || s.err != nil || s.rec.Token.AccessToken != token {
		return
	}
	n := *s
	n.refreshAt, n.proactiveAt = time.Time{}, time.Time{}
	e.cur.CompareAndSwap(s, &n)
}

// forcedRenewalAllowed reports whether UPS's 401 to rec's access token may
// renew it: not when a forced renewal minted it, nor within the floor of
// the last forced renewal.
func (b *Broker) forcedRenewalAllowed(rec vaultstore.Record) bool {
	last := rec.ForcedRenewalAt
	if last.IsZero() {
		return true
	}
	if last.Equal(rec.LastRefresh) {
		return false // this very pair came from a forced renewal
	}
	return !b.now().Before(last.Add(b.opts.ForcedRenewalFloor))
}

// recheckRefused lets the next Token call re-read the store (no refresh:
// the state is not marked refused), at most once per RecheckAfter, so a
// login made to fix the refusals is picked up without waiting hours for
// the next renewal. A pair Vault lacks is left alone: re-reading would
// refresh it.
func (b *Broker) recheckRefused(e *entry, s *state) {
	now := b.now()
	if s.dirty {
		return
	}
	if next := e.recheckRefusedAt.Load(); next != nil && now.Before(*next) {
		return
	}
	next := now.Add(b.opts.RecheckAfter)
	e.recheckRefusedAt.Store(&next)
	n := *s
	n.refreshAt, n.reread = time.Time{}, true
	e.cur.CompareAndSwap(s, &n)
}

// declineRenewal records a 401 to a token the broker will not renew: the
// client gets UPS's 401 as it is.
func (b *Broker) declineRenewal(e *entry, rec vaultstore.Record) {
	now := b.now()
	e.declinedAt.Store(&now) // before the count: Status reads them in the other order
	e.declined.Add(1)
	if b.opts.Metrics != nil {
		b.opts.Metrics.Refused(e.car().Name, e.car().Environment)
	}
	if last := e.declineLogged.Load(); last != nil && now.Before(last.Add(b.opts.ForcedRenewalFloor)) {
		return
	}
	e.declineLogged.Store(&now)
	b.logger(e).Error(RefusedHint,
		zap.Time("token_issued_at", rec.Token.IssuedAt),
		zap.Time("last_forced_renewal_at", rec.ForcedRenewalAt),
		zap.Int64("refused_so_far", e.declined.Load()),
		zap.Duration("logged_at_most_every", b.opts.ForcedRenewalFloor))
}

// RefusedHint explains a 401 to a token the broker just renewed.
const RefusedHint = "UPS refused an access token that was just renewed: the UPS app most likely lacks the API product " +
	"of the call (add it on developer.ups.com); upsproxy passes UPS's 401 on and does not renew the token again"

// ForceRefresh renews the carrier/environment's tokens now, once, with the
// same coordination as the proxy (`upsproxy token refresh`): one rotation at
// UPS, or none if another replica rotates the pair meanwhile (then that pair
// is returned). It returns once Vault holds the new pair, retrying the
// write with backoff until ctx ends. Errors say what happened:
// ErrNotLoggedIn, *RefreshExpiredError, ErrStoreUnavailable (nothing was
// spent), ErrRefreshFailed wrapping UPS's answer, or ErrNotStored (UPS
// rotated the pair but Vault has not accepted it; it stays in memory).
func (b *Broker) ForceRefresh(ctx context.Context, carrier string, env ups.Environment) (vaultstore.Record, error) {
	e, ok := b.entryMap()[key{carrier, env}]
	if !ok {
		return vaultstore.Record{}, ErrNotLoggedIn
	}
	// The first pair looked at is renewed; after waiting for another
	// replica's lease, a pair it rotated counts as renewed.
	var first *string
	due := func(s *state) bool {
		if first == nil {
			tok := s.rec.Token.AccessToken
			first = &tok
			return true
		}
		return s.rec.Token.AccessToken == *first || b.needsRenewal(s)
	}
	var s *state
	// A renewal already under way (a request's) does not call due: then
	// ours starts after it.
	for attempt := 0; attempt < 2 && first == nil; attempt++ {
		var err error
		if s, err = b.renew(ctx, e, due); err != nil {
			return vaultstore.Record{}, err
		}
	}
	if first != nil && s.rec.Token.AccessToken == *first {
		return s.rec, fmt.Errorf("%w: UPS issued no new token", ErrRefreshFailed)
	}
	if err := b.storeNow(ctx, e); err != nil {
		return e.cur.Load().rec, err
	}
	return e.cur.Load().rec, nil
}

// storeNow makes sure Vault holds the entry's pair, retrying the write
// with backoff until it lands or ctx ends.
func (b *Broker) storeNow(ctx context.Context, e *entry) error {
	pending := func() bool { s := e.cur.Load(); return s != nil && s.dirty }
	if !pending() {
		return nil
	}
	log := b.logger(e)
	if retryBackoff(ctx, b, 250*time.Millisecond, 5*time.Second, func() bool { return !pending() || b.persist(e, log) }) {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrNotStored, context.Cause(ctx))
}

// needsRenewal is the in-request test: no usable state, or near expiry.
func (b *Broker) needsRenewal(s *state) bool {
	return s == nil || s.err != nil || s.rec.Token.AccessToken == "" || !b.now().Before(s.refreshAt)
}

// proactiveDue is the background refresher's test.
func (b *Broker) proactiveDue(s *state) bool {
	return b.needsRenewal(s) || !b.now().Before(s.proactiveAt)
}

// renew loads or refreshes the entry's tokens, once for all concurrent
// callers. It returns the state to use (nil when no token can be had) and
// why it was not renewed as due (nil when it was, or was not due): a
// failed renewal may leave a still-valid token to use. The work runs detached from any one request's context so a
// client hanging up cannot abort a refresh half-way (after UPS has spent
// the refresh token but before Vault has the new one).
func (b *Broker) renew(ctx context.Context, e *entry, due func(*state) bool) (*state, error) {
	ch := b.flight.DoChan(e.car().Name+"\x00"+string(e.car().Environment), func() (any, error) {
		return b.renewShared(e, due)
	})
	select {
	case res := <-ch:
		s, _ := res.Val.(*state)
		return s, res.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// newState builds a snapshot and its renewal times: requests renew
// RefreshMargin before expiry (at most a tenth of the lifetime); the
// background refresher at ProactiveAt of the lifetime, jittered per replica
// so replicas do not all reach for the lease at the same instant.
func (b *Broker) newState(rec vaultstore.Record, dirty bool, err error, spent string) *state {
	s := &state{rec: rec, dirty: dirty, err: err, spent: spent}
	if err != nil {
		s.recheckAt = b.now().Add(b.opts.RecheckAfter)
		return s
	}
	t := rec.Token
	life := t.ExpiresAt.Sub(t.IssuedAt)
	if life <= 0 || t.IssuedAt.IsZero() {
		life = 0
	}
	margin := b.opts.RefreshMargin
	if life > 0 && life/10 < margin {
		margin = life / 10
	}
	s.refreshAt = t.ExpiresAt.Add(-margin)
	frac := b.opts.ProactiveAt + (rand.Float64()-0.5)*0.1
	s.proactiveAt = t.IssuedAt.Add(time.Duration(float64(life) * frac))
	if life == 0 || s.proactiveAt.After(s.refreshAt) {
		s.proactiveAt = s.refreshAt
	}
	if b.opts.Metrics != nil && t.AccessToken != "" {
		b.opts.Metrics.Expiries(rec.Carrier, rec.Environment, t.ExpiresAt, t.RefreshExpiresAt)
	}
	return s
}

// usable reports whether s has an access token that has not expired yet.
func (b *Broker) usable(s *state) bool {
	return s != nil && s.err == nil && s.rec.Token.AccessToken != "" && b.now().Before(s.rec.Token.ExpiresAt)
}

func (b *Broker) logger(e *entry) *zap.Logger {
	return b.log.With(zap.String("carrier", e.car().Name), zap.String("environment", string(e.car().Environment)))
}

func (b *Broker) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), b.opts.StoreTimeout)
}

// renewShared runs inside the single flight of an entry.
func (b *Broker) renewShared(e *entry, due func(*state) bool) (*state, error) {
	e.began = b.now()
	log := b.logger(e)
	// forced is set when the last due(s) was true only because UPS refused
	// s's token: the renewal is then marked in the record (ForcedRenewalAt).
	forced := false
	if bad := e.refused.Load(); bad != nil {
		inner := due
		due = func(s *state) bool {
			forced = false
			if inner(s) {
				return true
			}
			if s.rec.Token.AccessToken != *bad {
				return false
			}
			// Judged again on this record: another replica may have
			// force-renewed since (see Invalidate).
			if !b.forcedRenewalAllowed(s.rec) {
				e.refused.CompareAndSwap(bad, nil)
				b.declineRenewal(e, s.rec)
				return false
			}
			forced = true
			return true
		}
	}
	cur := e.cur.Load()
	if cur != nil && cur.dirty {
		// Memory holds a pair Vault has not accepted: it is the newest
		// there is, and its refresh token is known to no other replica.
		if !due(cur) {
			// Its write is under way (persistReleased, schedulePersist):
			// a request that joined the renewal just too late does not
			// wait for that write.
			return cur, nil
		}
		if b.persist(e, log) {
			cur = e.cur.Load()
		}
		if cur.dirty {
			return b.refresh(e, cur, cur.rec.Version, forced, log)
		}
	}
	if b.now().Before(e.failUntil) {
		// UPS's token endpoint failed moments ago: don't hammer it.
		if b.usable(cur) {
			return cur, e.failErr
		}
		return nil, e.failErr
	}
	// The first look may be at memory instead of Vault (see known).
	mem, fromMemory := b.known(cur)
	for {
		var (
			rec vaultstore.Record
			err error
		)
		if fromMemory {
			rec, fromMemory = mem, false
		} else {
			rec, err = b.read(e)
		}
		switch {
		case errors.Is(err, ErrNotLoggedIn):
			if e.car().Grant != ups.GrantClientCredentials {
				s := b.newState(vaultstore.Record{Carrier: e.car().Name, Environment: e.car().Environment}, false, ErrNotLoggedIn, "")
				e.cur.Store(s)
				return nil, ErrNotLoggedIn
			}
			rec = vaultstore.Record{Carrier: e.car().Name, Environment: e.car().Environment, Grant: ups.GrantClientCredentials}
		case err != nil:
			if b.usable(cur) {
				return cur, err // Vault is away; the token in memory still works
			}
			return nil, err
		}
		s := b.newState(rec, false, b.recordError(*e.car(), rec), "")
		if rec.Version > 0 {
			e.cur.Store(s)
		}
		if s.err != nil {
			return nil, s.err
		}
		if rec.Version > 0 && !due(s) {
			return s, nil
		}
		// A refresh is due. Another replica may be doing it already.
		now := b.now()
		if rec.LeaseHolder != "" && rec.LeaseHolder != b.opts.Holder && now.Before(rec.LeaseUntil) {
			if b.waitLease(e, rec) {
				continue // re-read: the holder finished or gave up
			}
			err := fmt.Errorf("%w: timed out waiting for another replica's refresh", ErrRefreshFailed)
			if b.usable(cur) {
				return cur, err
			}
			return nil, err
		}
		// Claim the lease with check-and-set on the version just read.
		claim := rec
		claim.LeaseHolder, claim.LeaseUntil = b.opts.Holder, now.Add(b.opts.LeaseTTL)
		claim.UpdatedAt, claim.UpdatedBy = now, b.opts.Holder
		ctx, cancel := b.storeCtx()
		v, err := b.opts.Store.Put(ctx, claim)
		cancel()
		switch {
		case errors.Is(err, vaultstore.ErrConflict):
			continue // someone else wrote first: look again
		case err != nil:
			log.Warn("cannot claim the refresh lease in Vault", zap.Error(err))
			err = fmt.Errorf("%w: %v", ErrStoreUnavailable, err)
			if b.usable(cur) {
				return cur, err
			}
			return nil, err
		}
		claim.Version = v
		return b.refresh(e, b.newState(claim, false, nil, ""), v, forced, log)
	}
}

// known returns the record memory holds for cur when it may stand in for
// reading Vault before a renewal: what the broker last read or wrote, with
// no error, nothing unstored and no re-read asked for. A refresh storm then
// costs one Vault call before UPS (the lease claim) instead of two. This is
// safe because the claim is a check-and-set on the version memory holds: it
// succeeds only if Vault still holds exactly that record, which is what a
// read would have returned; any change since (another replica's lease or
// pair, a login, `upsproxy token delete`) makes it conflict, and the
// conflict path reads Vault and decides again, as before. The one change
// the version does not reveal is `vault kv delete` of the latest version
// outside upsproxy (KV v2 keeps the version number): the next renewal then
// stores a renewed pair over it, where a read would have answered "not
// logged in". Memory serves that deleted record's access token until the
// renewal anyway; `upsproxy token delete` removes the metadata and is seen.
func (b *Broker) known(cur *state) (vaultstore.Record, bool) {
	if cur == nil || cur.err != nil || cur.dirty || cur.reread || cur.rec.Version <= 0 {
		return vaultstore.Record{}, false
	}
	return cur.rec, true
}

// read loads the record of an entry.
func (b *Broker) read(e *entry) (vaultstore.Record, error) {
	ctx, cancel := b.storeCtx()
	defer cancel()
	rec, err := b.opts.Store.Get(ctx, e.car().Name, e.car().Environment)
	if err != nil {
		if errors.Is(err, vaultstore.ErrNotFound) {
			return rec, ErrNotLoggedIn
		}
		b.logger(e).Warn("token store read failed", zap.Error(err))
		return rec, fmt.Errorf("%w: %v", ErrStoreUnavailable, err)
	}
	return rec, nil
}

// waitLease polls the store while another replica holds the refresh lease.
// It returns true when the record changed or the lease lapsed (re-read and
// decide again), false on timeout.
func (b *Broker) waitLease(e *entry, held vaultstore.Record) bool {
	wait := b.opts.LeaseTTL + b.opts.StoreTimeout
	deadline := b.now().Add(wait)
	// The poll count bounds the wait too, should the clock stand still.
	for polls := int64(wait/b.opts.LeasePoll) + 1; polls > 0 && b.now().Before(deadline); polls-- {
		select {
		case <-b.done:
			return false
		case <-b.opts.After(b.opts.LeasePoll):
		}
		rec, err := b.read(e)
		if err != nil && !errors.Is(err, ErrNotLoggedIn) {
			continue
		}
		if err != nil || rec.Version != held.Version || !b.now().Before(held.LeaseUntil) {
			return true
		}
	}
	return false
}

// recordError is the error a stored record condemns requests to, if any.
// It is Assess's verdict: the one judge of token health.
func (b *Broker) recordError(c Carrier, rec vaultstore.Record) error {
	return Assess(c.subject(), &rec, b.now(), 0).Err()
}

// subject is what Assess judges of a configured carrier.
func (c Carrier) subject() Subject {
	return Subject{Carrier: c.Name, Environment: c.Environment, Grant: c.Grant, Inactive: c.Inactive}
}

// code is the client-facing code of err as the proxy's mapper names it,
// as a log field (none without a mapper).
func (b *Broker) code(err error) zap.Field {
	if b.opts.ErrorCode == nil || err == nil {
		return zap.Skip()
	}
	return zap.String("error_code", b.opts.ErrorCode(err))
}

// refresh obtains a new pair from UPS (the caller holds the lease, or the
// only copy of the refresh token) and stores it at check-and-set version v.
// forced: UPS refused cur's access token (Invalidate); the record says so.
func (b *Broker) refresh(e *entry, cur *state, v int, forced bool, log *zap.Logger) (*state, error) {
	c := *e.car()
	ctx, cancel := context.WithTimeout(context.Background(), b.opts.OAuthTimeout)
	defer cancel()

	var (
		tok ups.Token
		err error
	)
	asked := b.now()
	if c.Grant == ups.GrantClientCredentials {
		tok, err = c.OAuth.ClientCredentials(ctx)
	} else {
		if exp := cur.rec.Token.RefreshExpiresAt; !exp.IsZero() && !b.now().Before(exp) {
			// Expired: UPS would only refuse it. Serve what still works.
			rerr := &RefreshExpiredError{Carrier: c.Name, Environment: c.Environment, ExpiredAt: exp}
			log.Error("refresh token expired: an admin must log in again",
				zap.Time("refresh_token_expires_at", exp), zap.Int("days_left", 0),
				b.code(rerr), zap.String("command", LoginCommand(c.Name, c.Environment)))
			b.releaseLease(e, cur.rec, v, log)
			if b.usable(cur) {
				return cur, rerr
			}
			e.cur.Store(b.newState(cur.rec, false, rerr, ""))
			return nil, rerr
		}
		tok, err = c.OAuth.Refresh(ctx, cur.rec.Token.RefreshToken)
	}
	answered := b.now()
	if err != nil {
		if tok.RefreshToken != "" && tok.RefreshToken != cur.rec.Token.RefreshToken && c.Grant != ups.GrantClientCredentials {
			b.salvage(e, cur, v, tok, log)
		}
		return b.refreshFailed(e, cur, v, err, log)
	}

	rec := cur.rec
	rec.Carrier, rec.Environment, rec.Grant = c.Name, c.Environment, c.Grant
	if tok.RefreshToken == "" && c.Grant != ups.GrantClientCredentials {
		// UPS always rotates; should it ever not, the old one stays valid.
		tok.RefreshToken = cur.rec.Token.RefreshToken
		tok.RefreshExpiresAt = cur.rec.Token.RefreshExpiresAt
		tok.RefreshIssuedAt = cur.rec.Token.RefreshIssuedAt
	}
	rec.Token = tok
	rec.Rejected, rec.RejectedAt = false, time.Time{}
	rec.LeaseHolder, rec.LeaseUntil = "", time.Time{}
	rec.LastRefresh = b.now()
	if forced {
		// Equal to LastRefresh: this pair is never force-renewed again.
		rec.ForcedRenewalAt = rec.LastRefresh
	}
	rec.Version = v
	// Publish before writing: from here on the new pair is the only valid
	// one, and memory must hold it whatever Vault does.
	s := b.newState(rec, true, nil, cur.rec.Token.RefreshToken)
	e.cur.Store(s)
	e.failures, e.failUntil, e.failErr = 0, time.Time{}, nil
	e.refused.Store(nil)
	b.recordResult(e, "ok", nil)
	log.Info("access token refreshed", zap.Bool("forced_by_401", forced),
		zap.Time("access_token_expires_at", tok.ExpiresAt),
		zap.Time("refresh_token_expires_at", tok.RefreshExpiresAt),
		zap.Int("refresh_count", tok.RefreshCount),
		// What the renewal cost besides UPS (Vault, waiting for a lease or
		// for CPU) and what UPS took; the waiting requests get the token
		// as this line is written.
		zap.Duration("before_ups", asked.Sub(e.began)), zap.Duration("ups_took", answered.Sub(asked)))
	b.persistReleased(e, log)
	return s, nil
}

// persistReleased writes a freshly refreshed pair to Vault in the
// background: the requests waiting for the renewal get the new access
// token the moment UPS has answered, instead of a Vault round trip later.
// Nothing is weakened by not waiting:
//
//   - The pair is as safe as before. It is in memory already (requests
//     arriving meanwhile use it too), the write starts now as it did
//     before, persist retries a failed write with backoff until Vault takes
//     it (schedulePersist), and serve's shutdown Flushes whatever is
//     pending. Waiting held the requests back without making the write land
//     any sooner.
//   - No other replica refreshes with the refresh token UPS just spent:
//     the record in Vault still carries this replica's lease (the claim,
//     LeaseUntil = claim + LeaseTTL) until the pair write, which clears it
//     in the same check-and-set. Others read the lease and wait for the
//     record to change (waitLease), then use the pair written.
//   - Should the process die before Vault took the pair, the new refresh
//     token dies with it: UPS has already spent the old one, so no one can
//     recover it, with or without the wait. The lease is deliberately not
//     extended while the write is retried: a lease that outlived its holder
//     would only hold the other replicas off longer. Once it lapses, another
//     replica's refresh with the spent token gets invalid_grant and marks
//     the record rejected (markRejected), so every replica reports "log in
//     again" at once instead of failing in silence; and if the holder is
//     alive after all, its retried write still lands over that mark
//     (resolveConflict: the stored refresh token is the one it spent), so
//     the other replicas recover at their next store read.
//
// Callers that must know the pair is in Vault (ForceRefresh, Flush) take
// the same entry lock and find the write done or do it themselves.
func (b *Broker) persistReleased(e *entry, log *zap.Logger) {
	go b.persist(e, log)
}

// salvage keeps the new refresh token of a refresh answer that was
// otherwise unusable: UPS has spent the old one, so it is the only valid
// one. The old access token stays in use until it expires; the next renewal
// spends the salvaged refresh token.
func (b *Broker) salvage(e *entry, cur *state, v int, tok ups.Token, log *zap.Logger) {
	rec := cur.rec
	rec.Token.RefreshToken = tok.RefreshToken
	if !tok.RefreshExpiresAt.IsZero() {
		rec.Token.RefreshExpiresAt, rec.Token.RefreshIssuedAt = tok.RefreshExpiresAt, tok.RefreshIssuedAt
	}
	if tok.AccessToken != "" && tok.ExpiresAt.After(b.now()) {
		rec.Token.AccessToken, rec.Token.ExpiresAt, rec.Token.IssuedAt = tok.AccessToken, tok.ExpiresAt, tok.IssuedAt
	}
	rec.LeaseHolder, rec.LeaseUntil = "", time.Time{}
	rec.Version = v
	log.Error("UPS answered the refresh with a malformed response; keeping the new refresh token it contained")
	e.cur.Store(b.newState(rec, true, nil, cur.rec.Token.RefreshToken))
	b.persist(e, log)
}

// refreshFailed decides what a failed call to UPS means for requests.
func (b *Broker) refreshFailed(e *entry, cur *state, v int, err error, log *zap.Logger) (*state, error) {
	c := *e.car()
	var uerr *ups.Error
	if errors.As(err, &uerr) && uerr.InvalidGrant() && c.Grant != ups.GrantClientCredentials {
		// Another replica, or an admin's login, may have stored a newer
		// pair: that is no cause for alarm.
		if s, ok := b.adoptNewer(e, cur); ok {
			log.Info("refresh token already rotated elsewhere; using the pair in Vault")
			b.recordResult(e, "adopted", nil)
			return s, nil
		}
		return b.markRejected(e, cur, v, uerr, log)
	}
	b.recordResult(e, "failed", err)
	failErr := fmt.Errorf("%w: %v", ErrRefreshFailed, err)
	if errors.As(err, &uerr) && uerr.InvalidClient() {
		log.Error("UPS refused the carrier's client credentials: check client_id and client_secret in the config",
			zap.Error(err), b.code(failErr))
	} else {
		log.Warn("token refresh failed", zap.Error(err), b.code(failErr))
	}
	if prev := e.cur.Load(); prev != nil && prev.dirty {
		cur = prev // salvaged: the lease went with the write
	} else {
		b.releaseLease(e, cur.rec, v, log)
	}
	e.failures++
	e.failErr = failErr
	e.failUntil = b.now().Add(min(time.Duration(1<<min(e.failures-1, 6))*500*time.Millisecond, 30*time.Second))
	if b.usable(cur) {
		return cur, e.failErr
	}
	return nil, e.failErr
}

// adoptNewer re-reads the store and publishes its record when it holds a
// different, unrejected pair than the one that was just refused.
func (b *Broker) adoptNewer(e *entry, cur *state) (*state, bool) {
	rec, err := b.read(e)
	if err != nil || rec.Rejected || rec.Token.RefreshToken == "" || rec.Token.RefreshToken == cur.rec.Token.RefreshToken {
		return nil, false
	}
	s := b.newState(rec, false, b.recordError(*e.car(), rec), "")
	e.cur.Store(s)
	return s, s.err == nil
}

// markRejected records in Vault that UPS refused the newest refresh token,
// so every replica answers UPSPROXY_REFRESH_TOKEN_EXPIRED at once.
func (b *Broker) markRejected(e *entry, cur *state, v int, uerr *ups.Error, log *zap.Logger) (*state, error) {
	c := *e.car()
	now := b.now()
	rerr := &RefreshExpiredError{Carrier: c.Name, Environment: c.Environment, ExpiredAt: now, Rejected: true}
	b.recordResult(e, "rejected", uerr)
	log.Error("UPS rejected the refresh token: an admin must log in again",
		b.code(rerr),
		zap.String("ups_code", uerr.Code),
		zap.Time("refresh_token_expires_at", cur.rec.Token.RefreshExpiresAt),
		zap.String("command", LoginCommand(c.Name, c.Environment)))
	rec := cur.rec
	rec.Rejected, rec.RejectedAt = true, now
	rec.LeaseHolder, rec.LeaseUntil = "", time.Time{}
	rec.Version = v
	rec.UpdatedAt, rec.UpdatedBy = now, b.opts.Holder
	ctx, cancel := b.storeCtx()
	_, err := b.opts.Store.Put(ctx, rec)
	cancel()
	if errors.Is(err, vaultstore.ErrConflict) {
		// Written meanwhile: perhaps the pair we were refused for.
		if s, ok := b.adoptNewer(e, cur); ok {
			return s, nil
		}
	} else if err != nil {
		log.Warn("could not mark the refresh token rejected in Vault", zap.Error(err))
	}
	e.cur.Store(b.newState(rec, false, rerr, ""))
	return nil, rerr
}

// releaseLease clears our lease after a refresh that produced nothing, so
// another replica may try without waiting for it to lapse.
func (b *Broker) releaseLease(e *entry, rec vaultstore.Record, v int, log *zap.Logger) {
	if rec.LeaseHolder != b.opts.Holder || v == 0 {
		return
	}
	rec.LeaseHolder, rec.LeaseUntil, rec.Version = "", time.Time{}, v
	ctx, cancel := b.storeCtx()
	defer cancel()
	if _, err := b.opts.Store.Put(ctx, rec); err != nil && !errors.Is(err, vaultstore.ErrConflict) {
		log.Debug("could not release the refresh lease; it lapses by itself", zap.Error(err))
	}
}

func (b *Broker) recordResult(e *entry, result string, err error) {
	r := &refreshResult{at: b.now(), result: result}
	if err != nil {
		r.err = err.Error()
	}
	e.lastRefresh.Store(r)
	if b.opts.Metrics != nil {
		b.opts.Metrics.Refreshed(e.car().Name, e.car().Environment, result)
	}
}
