package tokens

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// Preload reads every active carrier's record from the store, so the first
// requests find their tokens in memory. Missing records and store errors are
// logged, not fatal: the proxy must start while Vault is briefly away.
func (b *Broker) Preload(ctx context.Context) {
	for _, e := range b.entryMap() {
		if e.car().Inactive {
			continue
		}
		if _, err := b.load(e); err != nil && !errors.Is(err, ErrNotLoggedIn) {
			b.logger(e).Warn("could not preload tokens", zap.Error(err))
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// load reads an entry's record and publishes it, unless memory holds a
// pair Vault has not accepted yet.
func (b *Broker) load(e *entry) (*state, error) {
	if cur := e.cur.Load(); cur != nil && cur.dirty {
		return cur, nil
	}
	rec, err := b.read(e)
	if err != nil {
		return nil, err
	}
	s := b.newState(rec, false, b.recordError(*e.car(), rec), "")
	e.cur.Store(s)
	return s, nil
}

// RunRefresher renews access tokens in the background at ProactiveAt of
// their lifetime, so requests never wait for UPS in steady state. It
// checks every tick until ctx ends.
func (b *Broker) RunRefresher(ctx context.Context, tick time.Duration) {
	if tick <= 0 {
		tick = time.Second
	}
	b.every(ctx, tick, func() { b.RefreshDue(ctx) })
}

// every runs f every interval until ctx ends or the broker closes.
func (b *Broker) every(ctx context.Context, interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.done:
			return
		case <-t.C:
			f()
		}
	}
}

// RefreshDue starts a background renewal for every active entry whose
// token is due, and waits for them.
func (b *Broker) RefreshDue(ctx context.Context) {
	var wg sync.WaitGroup
	for _, e := range b.entryMap() {
		if e.car().Inactive {
			continue
		}
		s := e.cur.Load()
		if s == nil || s.err != nil || !b.proactiveDue(s) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.renew(ctx, e, b.proactiveDue); err != nil && ctx.Err() == nil {
				b.logger(e).Debug("background renewal did not produce a token", zap.Error(err))
			}
		}()
	}
	wg.Wait()
}

// Close stops background work. Pending writes are abandoned; call Flush
// first to land them.
func (b *Broker) Close() { b.close.Do(func() { close(b.done) }) }

// Flush writes every pair Vault has not accepted yet. It returns an error
// naming the carriers whose tokens are still only in memory.
func (b *Broker) Flush(ctx context.Context) error {
	var failed []string
	for _, e := range b.entryMap() {
		s := e.cur.Load()
		if s == nil || !s.dirty {
			continue
		}
		if !b.persist(e, b.logger(e)) {
			failed = append(failed, e.car().Name+"/"+string(e.car().Environment))
		}
		if ctx.Err() != nil {
			break
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("tokens for %v are not stored in Vault", failed)
	}
	return nil
}

// Reminder is the state of one refresh token relative to the warning window.
type Reminder struct {
	Carrier     string
	Environment ups.Environment
	ExpiresAt   time.Time
	DaysLeft    int
	Expired     bool
	Rejected    bool
	Missing     bool
}

// RemindOnce logs one line per active authorization-code carrier whose
// refresh token expires within warnBefore (WARN), has expired or was
// rejected (ERROR). It reads memory first and the store for carriers not
// loaded yet.
func (b *Broker) RemindOnce(warnBefore time.Duration) {
	now := b.now()
	for _, e := range b.entryMap() {
		c := *e.car()
		if c.Inactive || c.Grant == GrantClientCredentials {
			continue
		}
		s := e.cur.Load()
		if s == nil {
			var err error
			if s, err = b.load(e); err != nil {
				if errors.Is(err, ErrNotLoggedIn) {
					b.log.Error("no UPS tokens stored: an admin must log in",
						zap.String("carrier", c.Name), zap.String("environment", string(c.Environment)),
						zap.String("error_code", "UPSPROXY_NOT_LOGGED_IN"),
						zap.String("command", LoginCommand(c.Name, c.Environment)))
				}
				continue
			}
		}
		r := reminderFor(c, s, now)
		fields := []zap.Field{
			zap.String("carrier", c.Name), zap.String("environment", string(c.Environment)),
			zap.Time("refresh_token_expires_at", r.ExpiresAt), zap.Int("days_left", r.DaysLeft),
			zap.String("command", LoginCommand(c.Name, c.Environment)),
		}
		switch {
		case r.Rejected:
			b.log.Error("UPS rejected the refresh token: an admin must log in again",
				append(fields, zap.String("error_code", "UPSPROXY_REFRESH_TOKEN_EXPIRED"))...)
		case r.Expired:
			b.log.Error("refresh token expired: an admin must log in again",
				append(fields, zap.String("error_code", "UPSPROXY_REFRESH_TOKEN_EXPIRED"))...)
		case !r.ExpiresAt.IsZero() && r.ExpiresAt.Sub(now) <= warnBefore:
			b.log.Warn("refresh token expires soon: an admin should log in again", fields...)
		}
	}
}

func reminderFor(c Carrier, s *state, now time.Time) Reminder {
	exp := s.rec.Token.RefreshExpiresAt
	r := Reminder{Carrier: c.Name, Environment: c.Environment, ExpiresAt: exp, Rejected: s.rec.Rejected}
	if !exp.IsZero() {
		r.Expired = !now.Before(exp)
		r.DaysLeft = DaysLeft(exp, now)
	}
	return r
}

// DaysLeft is the whole days from now until t (0 when less than a day or past).
func DaysLeft(t, now time.Time) int {
	d := t.Sub(now)
	if d <= 0 {
		return 0
	}
	return int(d / (24 * time.Hour))
}

// RunReminders logs reminders now and then every interval until ctx ends.
func (b *Broker) RunReminders(ctx context.Context, warnBefore, interval time.Duration) {
	b.RemindOnce(warnBefore)
	if interval > 0 {
		b.every(ctx, interval, func() { b.RemindOnce(warnBefore) })
	}
}
