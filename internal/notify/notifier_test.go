package notify

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/upsproxy/upsproxy/internal/testutil/fakeclock"
	"github.com/upsproxy/upsproxy/internal/testutil/smtptest"
	"github.com/upsproxy/upsproxy/internal/testutil/vaultdevtest"
	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// rig is one installation: a real dev Vault, a real SMTP server, a webhook
// receiver, and notifiers that come and go like replicas.
type rig struct {
	t     *testing.T
	store *vaultstore.Store
	smtp  *smtptest.Server
	hook  *hook
	url   string
	clock *fakeclock.Clock
	login time.Time
}

const smtpPassword = "smtp-pa55word-notify"

func newRig(t *testing.T, failN int) *rig {
	t.Helper()
	v := vaultdevtest.Start(t)
	st, err := vaultstore.New(vaultstore.Options{Client: v.Client(t)})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, store: st, smtp: smtptest.Start(t, smtptest.Options{Username: "upsproxy", Password: smtpPassword}),
		hook: &hook{failN: failN}, clock: fakeclock.New(testNow)}
	srv := httptest.NewServer(r.hook)
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/hook"
	r.newLogin(10 * 24 * time.Hour)
	return r
}

// newLogin stores a fresh token pair, as `upsproxy login` does.
func (r *rig) newLogin(refreshLife time.Duration) {
	r.t.Helper()
	now := r.clock.Now()
	rec, err := r.store.Get(context.Background(), "main", ups.Test)
	if err != nil {
		rec = vaultstore.Record{Carrier: "main", Environment: ups.Test, Grant: ups.GrantAuthorizationCode}
	}
	rec.Token = ups.Token{AccessToken: "at", RefreshToken: "rt", IssuedAt: now, ExpiresAt: now.Add(4 * time.Hour),
		RefreshIssuedAt: now, RefreshExpiresAt: now.Add(refreshLife)}
	rec.Rejected, rec.RejectedAt = false, time.Time{}
	rec.UpdatedBy = "login"
	if _, err := r.store.Put(context.Background(), rec); err != nil {
		r.t.Fatal(err)
	}
	r.login = now
}

func (r *rig) channels() []Route {
	m, err := NewEmail("mail", EmailOptions{Host: r.smtp.Host, Port: r.smtp.Port, RootCAs: r.smtp.CertPool(),
		Username: "upsproxy", Password: smtpPassword, From: "upsproxy@example.com", To: []string{"shipping@example.com"}})
	if err != nil {
		r.t.Fatal(err)
	}
	w, err := NewWebhook("chat", WebhookOptions{URL: r.url})
	if err != nil {
		r.t.Fatal(err)
	}
	return []Route{{Channel: m}, {Channel: w}}
}

// replica is one running notifier.
type replica struct {
	n    *Notifier
	stop func()
}

func (r *rig) start(name string, log *zap.Logger, mod func(*Options)) *replica {
	r.t.Helper()
	if log == nil {
		log = zap.NewNop()
	}
	o := Options{
		Tokens: r.store, Ledger: r.store, Routes: r.channels(),
		Carriers: []Carrier{{Name: "main", Environment: ups.Test, Grant: ups.GrantAuthorizationCode},
			{Name: "old", Environment: ups.Test, Inactive: true}},
		Policy: Policy{NotifyAt: []time.Duration{168 * time.Hour, 72 * time.Hour, 24 * time.Hour}, FailingAfter: time.Hour},
		Holder: name, Logger: log, Clock: r.clock.Now,
		Interval: time.Hour, Backoff: 10 * time.Millisecond, Attempts: 3, SendTimeout: 10 * time.Second,
	}
	if mod != nil {
		mod(&o)
	}
	n, err := New(o)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.Run(ctx) }()
	rp := &replica{n: n, stop: func() { cancel(); <-done }}
	r.t.Cleanup(rp.stop)
	return rp
}

// passAll runs a pass on every replica at once, then waits until no claim
// is outstanding.
func (r *rig) passAll(rs []*replica) {
	r.t.Helper()
	var wg sync.WaitGroup
	for _, rp := range rs {
		wg.Add(1)
		go func() { defer wg.Done(); rp.n.Pass(context.Background()) }()
	}
	wg.Wait()
	r.settled()
}

func (r *rig) settled() {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		nrec, err := r.store.GetNotices(context.Background(), "main", ups.Test)
		pending := false
		for _, nt := range nrec.Notices {
			pending = pending || nt.State == vaultstore.NoticeClaimed
		}
		if err == nil && !pending || err != nil && strings.Contains(err.Error(), "no token record") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatal("claims still outstanding after 20s")
}

// received lists what arrived, as "event threshold" per channel.
func (r *rig) received() (mail, hooks []string) {
	for _, m := range r.smtp.Messages() {
		ev, th := "", ""
		for _, line := range strings.Split(m.Data, "\r\n") {
			if v, ok := strings.CutPrefix(line, "X-Upsproxy-Event: "); ok {
				ev = v
			}
			if v, ok := strings.CutPrefix(line, "Subject: "); ok {
				th = v
			}
		}
		mail = append(mail, ev+" | "+th)
	}
	_, bodies := r.hook.got()
	for _, b := range bodies {
		hooks = append(hooks, fmt.Sprintf("%v %v", b["event"], b["threshold"]))
	}
	return mail, hooks
}

func (r *rig) expect(step string, mails, hooks []string) {
	r.t.Helper()
	gotM, gotH := r.received()
	if fmt.Sprint(gotM) != fmt.Sprint(mails) {
		r.t.Errorf("%s: mails = %q\nwant %q", step, gotM, mails)
	}
	if fmt.Sprint(gotH) != fmt.Sprint(hooks) {
		r.t.Errorf("%s: webhook calls = %q\nwant %q", step, gotH, hooks)
	}
}

func TestThreeReplicasSendEachReminderExactlyOnceAcrossThresholdsRestartsAndANewLogin(t *testing.T) {
	r := newRig(t, 0)
	rs := []*replica{r.start("r1", nil, nil), r.start("r2", nil, nil), r.start("r3", nil, nil)}
	exp := r.login.Add(10 * 24 * time.Hour)

	r.clock.Set(r.login.Add(24 * time.Hour)) // 9 days left
	r.passAll(rs)
	r.expect("9 days left", nil, nil)

	m7 := "expiring | upsproxy: UPS login for main (test) expires in 6 days"
	r.clock.Set(exp.Add(-168*time.Hour + time.Minute))
	r.passAll(rs)
	r.passAll(rs)
	r.expect("7 days", []string{m7}, []string{"expiring 168h0m0s"})

	// Every replica restarts: nothing is sent again.
	for _, rp := range rs {
		rp.stop()
	}
	rs = []*replica{r.start("r1b", nil, nil), r.start("r2b", nil, nil), r.start("r3b", nil, nil)}
	r.passAll(rs)
	r.expect("after restart", []string{m7}, []string{"expiring 168h0m0s"})

	m3 := "expiring | upsproxy: UPS login for main (test) expires in 2 days"
	r.clock.Set(exp.Add(-72*time.Hour + time.Minute))
	r.passAll(rs)
	r.passAll(rs)
	m1 := "expiring | upsproxy: UPS login for main (test) expires in less than a day"
	r.clock.Set(exp.Add(-24*time.Hour + time.Minute))
	r.passAll(rs)
	mx := "expired | upsproxy: UPS login for main (test) has expired"
	r.clock.Set(exp.Add(time.Minute))
	r.passAll(rs)
	r.passAll(rs)
	r.expect("3 days, 1 day, expired", []string{m7, m3, m1, mx},
		[]string{"expiring 168h0m0s", "expiring 72h0m0s", "expiring 24h0m0s", "expired <nil>"})

	// A new login: the team hears it was handled, and the cycle starts
	// again.
	r.newLogin(10 * 24 * time.Hour)
	r.passAll(rs)
	r.passAll(rs)
	mr := "renewed | upsproxy: UPS login for main (test) renewed"
	r.clock.Set(r.login.Add(3*24*time.Hour + time.Minute))
	r.passAll(rs)
	r.expect("new login", []string{m7, m3, m1, mx, mr, m7}, []string{"expiring 168h0m0s", "expiring 72h0m0s",
		"expiring 24h0m0s", "expired <nil>", "renewed <nil>", "expiring 168h0m0s"})

	nrec, err := r.store.GetNotices(context.Background(), "main", ups.Test)
	if err != nil || !nrec.Login.Equal(r.login) {
		t.Fatalf("notice record = %+v, %v", nrec, err)
	}
	if _, err := r.store.GetNotices(context.Background(), "old", ups.Test); err == nil {
		t.Error("an inactive carrier has a notice record")
	}
}

func TestAProxyStartedTwoDaysBeforeExpirySendsOneReminderNotThree(t *testing.T) {
	r := newRig(t, 0)
	r.clock.Set(r.login.Add(8 * 24 * time.Hour))
	rs := []*replica{r.start("r1", nil, nil)}
	r.passAll(rs)
	r.expect("2 days left", []string{"expiring | upsproxy: UPS login for main (test) expires in 2 days"}, []string{"expiring 72h0m0s"})
}

func TestAFailingWebhookIsRetriedWithBackoffThenLoggedAndRetriedNextPassWhileMailIsNotResent(t *testing.T) {
	r := newRig(t, 5) // the receiver fails its first 5 calls
	core, logs := observer.New(zapcore.InfoLevel)
	var sent, failed atomic.Int64
	rp := r.start("r1", zap.New(core), func(o *Options) {
		o.Metrics = metricsFunc(func(ch, ev, res string) {
			if ch == "chat" && res == "sent" {
				sent.Add(1)
			}
			if ch == "chat" && res == "failed" {
				failed.Add(1)
			}
		})
	})
	r.clock.Set(r.login.Add(8 * 24 * time.Hour))

	r.passAll([]*replica{rp}) // 3 attempts fail
	if calls, bodies := r.hook.got(); calls != 3 || len(bodies) != 0 {
		t.Fatalf("first pass: %d calls, %d delivered; want 3 attempts, none delivered", calls, len(bodies))
	}
	if logs.FilterLevelExact(zapcore.ErrorLevel).FilterMessageSnippet("could not be delivered").Len() != 1 {
		t.Errorf("no ERROR line for the undeliverable message:\n%v", logs.All())
	}
	nrec, _ := r.store.GetNotices(context.Background(), "main", ups.Test)
	for _, nt := range nrec.Notices {
		if nt.Channel == "chat" {
			t.Errorf("the failed message's claim was not released: %+v", nt)
		}
	}

	r.passAll([]*replica{rp}) // 2 more failures, then delivered
	calls, bodies := r.hook.got()
	if calls != 6 || len(bodies) != 1 {
		t.Fatalf("second pass: %d calls, %d delivered; want 6 and 1", calls, len(bodies))
	}
	if sent.Load() != 1 || failed.Load() != 1 {
		t.Errorf("metrics: %d sent, %d failed", sent.Load(), failed.Load())
	}
	if n := len(r.smtp.Messages()); n != 1 {
		t.Errorf("%d mails; the mail channel must not resend because the webhook failed", n)
	}
}

func TestASlowChannelDoesNotHoldUpAPassOrOtherChannels(t *testing.T) {
	r := newRig(t, 0)
	block := make(chan struct{})
	slow := channelFunc{name: "slow", send: func(ctx context.Context, _ Event) error {
		select {
		case <-block:
		case <-ctx.Done():
		}
		return ctx.Err()
	}}
	rp := r.start("r1", nil, func(o *Options) { o.Routes = append(o.Routes, Route{Channel: slow}) })
	r.clock.Set(r.login.Add(8 * 24 * time.Hour))
	done := make(chan struct{})
	go func() { rp.n.Pass(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a pass waited for a stuck channel")
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(r.smtp.Messages()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if len(r.smtp.Messages()) != 1 {
		t.Error("mail waited for the stuck channel")
	}
	close(block)
}

type metricsFunc func(ch, ev, res string)

func (f metricsFunc) Notified(ch, ev, res string) { f(ch, ev, res) }

type channelFunc struct {
	name string
	send func(context.Context, Event) error
}

func (c channelFunc) Name() string                             { return c.name }
func (c channelFunc) Send(ctx context.Context, ev Event) error { return c.send(ctx, ev) }

func TestRefreshesFailingLongerThanFailingAfterSendOneMessageWithTheCauseAndASuccessEndsTheEpisode(t *testing.T) {
	r := newRig(t, 0)
	var view atomic.Pointer[RefreshView]
	view.Store(&RefreshView{})
	rp := r.start("r1", nil, func(o *Options) {
		o.Refreshes = func(string, ups.Environment) RefreshView { return *view.Load() }
	})
	r.clock.Set(r.login.Add(3 * time.Hour))
	view.Store(&RefreshView{At: r.clock.Now(), Result: "failed", Error: "UPS answered 503"})
	r.passAll([]*replica{rp})
	r.clock.Advance(59 * time.Minute)
	r.passAll([]*replica{rp})
	r.expect("59 minutes", nil, nil)
	r.clock.Advance(time.Minute)
	r.passAll([]*replica{rp})
	r.passAll([]*replica{rp})
	_, bodies := r.hook.got()
	if len(bodies) != 1 || bodies[0]["event"] != "failing" || bodies[0]["error"] != "UPS answered 503" ||
		!strings.Contains(fmt.Sprint(bodies[0]["text"]), "unable to refresh") {
		t.Fatalf("webhook calls = %v", bodies)
	}
	// Another replica refreshed: a newer pair is stored; the old failure
	// no longer counts.
	r.newLogin(10 * 24 * time.Hour)
	r.clock.Advance(2 * time.Hour)
	r.passAll([]*replica{rp})
	if _, bodies := r.hook.got(); len(bodies) != 1 {
		t.Errorf("a stale failure sent again: %v", bodies)
	}
}
