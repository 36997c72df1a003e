package notify

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// Channel delivers an event somewhere people read it.
type Channel interface {
	Name() string
	Send(ctx context.Context, ev Event) error
}

// TokenStore reads token records (vaultstore.Store).
type TokenStore interface {
	Get(ctx context.Context, carrier string, env ups.Environment) (vaultstore.Record, error)
}

// Ledger keeps the notice records (vaultstore.Store).
type Ledger interface {
	GetNotices(ctx context.Context, carrier string, env ups.Environment) (vaultstore.NoticeRecord, error)
	PutNotices(ctx context.Context, rec vaultstore.NoticeRecord) (int, error)
}

// Metrics counts deliveries; result is "sent", "failed" or "dropped".
type Metrics interface {
	Notified(channel, event, result string)
}

// RefreshView is this replica's last refresh attempt of a carrier (from the
// token broker's status); zero when it made none.
type RefreshView struct {
	At     time.Time
	Result string // "ok", "failed", "rejected", "adopted"
	Error  string
}

// Route is a channel and what it is told about.
type Route struct {
	Channel Channel
	// Events it gets; empty means all.
	Events []Kind
	// Carriers it hears about; empty means all.
	Carriers []string
}

func (r Route) wants(carrier string, k Kind) bool {
	return (len(r.Events) == 0 || slices.Contains(r.Events, k)) &&
		(len(r.Carriers) == 0 || slices.Contains(r.Carriers, carrier))
}

// Carrier is one carrier/environment the notifier watches.
type Carrier struct {
	Name        string
	Environment ups.Environment
	Grant       string
	Inactive    bool
}

// Options configure a Notifier.
type Options struct {
	Tokens   TokenStore
	Ledger   Ledger
	Routes   []Route
	Carriers []Carrier
	Policy   Policy
	// Refreshes reports this replica's last refresh attempt; nil means no
	// "failing" events.
	Refreshes func(carrier string, env ups.Environment) RefreshView
	// ConsoleURL is the console's public URL; messages then link to the
	// carrier's page. Empty: no link.
	ConsoleURL string
	// Holder names this process in claims.
	Holder  string
	Logger  *zap.Logger
	Clock   func() time.Time
	Metrics Metrics
	// Interval between passes. Default 1 minute.
	Interval time.Duration
	// ClaimTTL: a claim not marked sent by then (its replica died) may be
	// taken over. Default: long enough for every attempt.
	ClaimTTL time.Duration
	// Attempts per delivery and the first backoff between them (doubling).
	// Defaults 4 and 2s.
	Attempts int
	Backoff  time.Duration
	// SendTimeout bounds one attempt. Default 30s.
	SendTimeout time.Duration
	// QueueSize bounds each channel's queue. Default 64.
	QueueSize int
	// StoreTimeout bounds each Vault call. Default 10s.
	StoreTimeout time.Duration
}

// Notifier finds due events and delivers them once across replicas.
type Notifier struct {
	opts   Options
	log    *zap.Logger
	now    func() time.Time
	queues map[string]chan job

	mu      sync.Mutex
	failing map[vaultstore.Key]episode
}

// episode is a failing refresh as this replica saw it.
type episode struct {
	pair  time.Time // access token issue time of the pair that cannot be renewed
	since time.Time
}

// job is one claimed notice to deliver.
type job struct {
	route  Route
	notice vaultstore.Notice
	key    vaultstore.Key
	event  Event
}

// New checks the options.
func New(o Options) (*Notifier, error) {
	if o.Tokens == nil || o.Ledger == nil {
		return nil, errors.New("notify: a token store and a ledger are required")
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	if o.Attempts <= 0 {
		o.Attempts = 4
	}
	if o.Backoff <= 0 {
		o.Backoff = 2 * time.Second
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 30 * time.Second
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 64
	}
	if o.StoreTimeout <= 0 {
		o.StoreTimeout = 10 * time.Second
	}
	if o.ClaimTTL <= 0 {
		o.ClaimTTL = time.Duration(o.Attempts)*o.SendTimeout + (o.Backoff << o.Attempts) + 2*o.StoreTimeout
	}
	if o.Holder == "" {
		o.Holder = fmt.Sprintf("upsproxy-%08x", rand.Uint32())
	}
	n := &Notifier{opts: o, log: o.Logger, now: o.Clock, queues: map[string]chan job{}, failing: map[vaultstore.Key]episode{}}
	for _, r := range o.Routes {
		if _, dup := n.queues[r.Channel.Name()]; dup {
			return nil, fmt.Errorf("notify: channel %q listed twice", r.Channel.Name())
		}
		n.queues[r.Channel.Name()] = make(chan job, o.QueueSize)
	}
	return n, nil
}

// Run delivers on one goroutine per channel and makes a pass now and every
// Interval until ctx ends. Claims still queued at the end are released so
// another replica sends them.
func (n *Notifier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, r := range n.opts.Routes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.deliverLoop(ctx, r.Channel.Name())
		}()
	}
	t := time.NewTicker(n.opts.Interval)
	defer t.Stop()
	for {
		n.Pass(ctx)
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
		}
	}
}

func (n *Notifier) storeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, n.opts.StoreTimeout)
}

// Pass judges every active carrier and claims and queues what is due.
func (n *Notifier) Pass(ctx context.Context) {
	for _, c := range n.opts.Carriers {
		if ctx.Err() != nil {
			return
		}
		if c.Inactive {
			continue
		}
		n.passCarrier(ctx, c)
	}
}

func (n *Notifier) passCarrier(ctx context.Context, c Carrier) {
	log := n.log.With(zap.String("carrier", c.Name), zap.String("environment", string(c.Environment)))
	sctx, cancel := n.storeCtx(ctx)
	rec, err := n.opts.Tokens.Get(sctx, c.Name, c.Environment)
	cancel()
	if errors.Is(err, vaultstore.ErrNotFound) {
		return // nobody logged in: the token broker's reminders say so
	}
	if err != nil {
		log.Warn("notify: cannot read the token record", zap.Error(err))
		return
	}
	now := n.now()
	f := factsOf(c, &rec)
	n.observeRefresh(c, rec, &f, now)
	found := judge(f, now, n.opts.Policy)

	for attempt := 0; attempt < 5; attempt++ {
		jobs, retry := n.claim(ctx, c, f, found, now, log)
		if retry {
			continue
		}
		for _, j := range jobs {
			n.enqueue(ctx, j, log)
		}
		return
	}
	log.Warn("notify: the notice record kept changing under us; trying again next pass")
}

// observeRefresh sets the failing facts from this replica's last refresh:
// it failed, and nothing newer (another replica's success, a login) is
// stored since.
func (n *Notifier) observeRefresh(c Carrier, rec vaultstore.Record, f *Facts, now time.Time) {
	if n.opts.Refreshes == nil {
		return
	}
	k := vaultstore.Key{Carrier: c.Name, Environment: c.Environment}
	v := n.opts.Refreshes(c.Name, c.Environment)
	stored := rec.LastRefresh
	if rec.Token.IssuedAt.After(stored) {
		stored = rec.Token.IssuedAt
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if v.Result != "failed" || !v.At.After(stored) {
		delete(n.failing, k)
		return
	}
	ep, ok := n.failing[k]
	if !ok || !ep.pair.Equal(rec.Token.IssuedAt) {
		ep = episode{pair: rec.Token.IssuedAt, since: now}
		n.failing[k] = ep
	}
	f.FailingSince, f.LastError = ep.since, v.Error
}

// claim reads the notice record, decides which notices to send and claims
// them with check-and-set. retry is set when another replica wrote first.
func (n *Notifier) claim(ctx context.Context, c Carrier, f Facts, found []finding, now time.Time, log *zap.Logger) (jobs []job, retry bool) {
	sctx, cancel := n.storeCtx(ctx)
	nrec, err := n.opts.Ledger.GetNotices(sctx, c.Name, c.Environment)
	cancel()
	if err != nil && !errors.Is(err, vaultstore.ErrNotFound) {
		log.Warn("notify: cannot read the notice record", zap.Error(err))
		return nil, false
	}
	login := f.login()
	switch {
	case errors.Is(err, vaultstore.ErrNotFound):
		nrec.Login, nrec.Notices = login, nil
	case login.After(nrec.Login):
		// A new login: the previous login's reminders are done, and if
		// any went out, the people who got them hear it was handled.
		if remindedOf(nrec) {
			found = append(found, finding{kind: Renewed})
		}
		nrec.Login, nrec.Notices = login, nil
	case login.Before(nrec.Login):
		return nil, false // we read an older token record than another replica: next pass
	}
	key := vaultstore.Key{Carrier: c.Name, Environment: c.Environment}
	for _, fd := range found {
		for _, r := range n.opts.Routes {
			if !r.wants(c.Name, fd.kind) {
				continue
			}
			ch := r.Channel.Name()
			if !n.due(nrec.Notices, fd, ch, now) {
				continue
			}
			nt := vaultstore.Notice{
				Event: string(fd.kind), Threshold: fd.key, Channel: ch, Login: login,
				State: vaultstore.NoticeClaimed, Holder: n.opts.Holder, ClaimedUntil: now.Add(n.opts.ClaimTTL),
			}
			nrec.Notices = setNotice(nrec.Notices, nt, fd.kind == Failing)
			jobs = append(jobs, job{route: r, notice: nt, key: key, event: n.event(c, f, fd, now)})
		}
	}
	if len(jobs) == 0 {
		return nil, false
	}
	nrec.UpdatedAt, nrec.UpdatedBy = now, n.opts.Holder
	sctx, cancel = n.storeCtx(ctx)
	_, err = n.opts.Ledger.PutNotices(sctx, nrec)
	cancel()
	switch {
	case errors.Is(err, vaultstore.ErrConflict):
		return nil, true
	case err != nil:
		log.Warn("notify: cannot claim notices in vault; trying again next pass", zap.Error(err))
		return nil, false
	}
	return jobs, false
}

// remindedOf reports whether a login-related reminder went out for the
// record's login.
func remindedOf(nrec vaultstore.NoticeRecord) bool {
	for _, nt := range nrec.Notices {
		switch Kind(nt.Event) {
		case Expiring, Expired, Rejected:
			if nt.State == vaultstore.NoticeSent {
				return true
			}
		}
	}
	return false
}

// due reports whether a finding still needs sending on channel ch: not
// sent, not claimed by a live claim, not superseded by a tighter threshold.
func (n *Notifier) due(notices []vaultstore.Notice, fd finding, ch string, now time.Time) bool {
	for _, nt := range notices {
		if nt.Channel != ch || nt.Event != string(fd.kind) {
			continue
		}
		if fd.kind == Expiring && nt.State == vaultstore.NoticeSent {
			if t, err := time.ParseDuration(nt.Threshold); err == nil && supersedes(t, fd.threshold) {
				return false
			}
		}
		if nt.Threshold != fd.key {
			continue
		}
		if nt.State == vaultstore.NoticeSent || now.Before(nt.ClaimedUntil) {
			return false
		}
	}
	return true
}

// setNotice replaces the notice with the same event, threshold and channel,
// or adds it. A new failing episode drops the channel's older ones, which
// keeps the record small.
func setNotice(notices []vaultstore.Notice, nt vaultstore.Notice, dropOtherEpisodes bool) []vaultstore.Notice {
	out := notices[:0:0]
	for _, o := range notices {
		same := o.Event == nt.Event && o.Channel == nt.Channel
		if same && (o.Threshold == nt.Threshold || dropOtherEpisodes) {
			continue
		}
		out = append(out, o)
	}
	return append(out, nt)
}

// event composes the message of a finding.
func (n *Notifier) event(c Carrier, f Facts, fd finding, now time.Time) Event {
	ev := newEvent(fd.kind, c.Name, c.Environment, f.Record.Token.RefreshExpiresAt, now, n.opts.ConsoleURL)
	if fd.kind == Expiring {
		ev.Threshold = fd.threshold.String()
	}
	if fd.kind == Failing {
		ev.FailingSince, ev.Error = f.FailingSince, f.LastError
	}
	return ev.withText()
}

// enqueue hands a claimed notice to its channel's goroutine; a full queue
// (a channel stuck for a long time) releases the claim for a later pass.
func (n *Notifier) enqueue(ctx context.Context, j job, log *zap.Logger) {
	select {
	case n.queues[j.route.Channel.Name()] <- j:
	default:
		log.Error("notify: channel queue full; the message is retried on a later pass",
			zap.String("channel", j.route.Channel.Name()), zap.String("event", string(j.event.Event)))
		n.count(j, "dropped")
		n.settle(ctx, j, false)
	}
}

// deliverLoop sends the jobs of one channel until ctx ends, then releases
// what is still queued.
func (n *Notifier) deliverLoop(ctx context.Context, name string) {
	q := n.queues[name]
	for {
		select {
		case j := <-q:
			n.deliver(ctx, j)
		case <-ctx.Done():
			for {
				select {
				case j := <-q:
					n.settle(context.Background(), j, false)
				default:
					return
				}
			}
		}
	}
}

// deliver sends with retries and backoff, then records the outcome.
func (n *Notifier) deliver(ctx context.Context, j job) {
	ch := j.route.Channel
	log := n.log.With(zap.String("channel", ch.Name()), zap.String("event", string(j.event.Event)),
		zap.String("carrier", j.key.Carrier), zap.String("environment", string(j.key.Environment)))
	var err error
	delay := n.opts.Backoff
	for attempt := 1; attempt <= n.opts.Attempts; attempt++ {
		actx, cancel := context.WithTimeout(ctx, n.opts.SendTimeout)
		err = ch.Send(actx, j.event)
		cancel()
		if err == nil || ctx.Err() != nil {
			break
		}
		if attempt < n.opts.Attempts {
			log.Warn("notify: delivery failed; retrying", zap.Int("attempt", attempt), zap.Duration("backoff", delay), zap.Error(err))
			select {
			case <-ctx.Done():
			case <-time.After(delay):
			}
			delay *= 2
		}
	}
	if err != nil {
		log.Error("notify: message could not be delivered; it is retried on the next pass",
			zap.Int("attempts", n.opts.Attempts), zap.Error(err))
		n.count(j, "failed")
		n.settle(context.Background(), j, false)
		return
	}
	log.Info("notify: message delivered", zap.String("threshold", j.event.Threshold))
	n.count(j, "sent")
	n.settle(context.Background(), j, true)
}

func (n *Notifier) count(j job, result string) {
	if n.opts.Metrics != nil {
		n.opts.Metrics.Notified(j.route.Channel.Name(), string(j.event.Event), result)
	}
}

// settle marks our claim sent, or releases it, with check-and-set. A claim
// no longer ours (the login changed, or it lapsed and another replica took
// it) is left alone.
func (n *Notifier) settle(ctx context.Context, j job, sent bool) {
	log := n.log.With(zap.String("channel", j.route.Channel.Name()), zap.String("carrier", j.key.Carrier),
		zap.String("environment", string(j.key.Environment)))
	for attempt := 0; attempt < 10; attempt++ {
		sctx, cancel := n.storeCtx(ctx)
		nrec, err := n.opts.Ledger.GetNotices(sctx, j.key.Carrier, j.key.Environment)
		cancel()
		if err != nil {
			log.Error("notify: cannot record the delivery in vault", zap.Bool("sent", sent), zap.Error(err))
			return
		}
		i := slices.IndexFunc(nrec.Notices, func(o vaultstore.Notice) bool {
			return o.Event == j.notice.Event && o.Threshold == j.notice.Threshold && o.Channel == j.notice.Channel &&
				o.Holder == n.opts.Holder && o.State == vaultstore.NoticeClaimed && o.Login.Equal(j.notice.Login)
		})
		if i < 0 {
			return
		}
		if sent {
			nrec.Notices[i].State, nrec.Notices[i].SentAt = vaultstore.NoticeSent, n.now()
			nrec.Notices[i].ClaimedUntil = time.Time{}
		} else {
			nrec.Notices = slices.Delete(nrec.Notices, i, i+1)
		}
		nrec.UpdatedAt, nrec.UpdatedBy = n.now(), n.opts.Holder
		sctx, cancel = n.storeCtx(ctx)
		_, err = n.opts.Ledger.PutNotices(sctx, nrec)
		cancel()
		if errors.Is(err, vaultstore.ErrConflict) {
			continue
		}
		if err != nil {
			log.Error("notify: cannot record the delivery in vault", zap.Bool("sent", sent), zap.Error(err))
		}
		return
	}
	log.Error("notify: cannot record the delivery in vault: the record kept changing", zap.Bool("sent", sent))
}

// SendTest sends a test message to the named channel now, without retries
// or records (`upsproxy notify test`).
func SendTest(ctx context.Context, ch Channel, carrier string, env ups.Environment, consoleURL string, now time.Time) error {
	ev := newEvent(Test, carrier, env, time.Time{}, now, consoleURL).withText()
	if carrier == "" {
		ev.Command = ""
	}
	return ch.Send(ctx, ev)
}
