package tokens

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
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

// every runs f every interval (on the broker's time) until ctx ends or
// the broker closes.
func (b *Broker) every(ctx context.Context, interval time.Duration, f func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.done:
			return
		case <-b.opts.After(interval):
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

// RemindOnce logs one line per active authorization-code carrier whose
// refresh token expires within warnBefore (WARN), has expired, was
// rejected, or was never stored (ERROR), as Assess judges it. It reads
// memory first and the store for carriers not loaded yet.
func (b *Broker) RemindOnce(warnBefore time.Duration) {
	for _, h := range b.reminders(warnBefore) {
		fields := []zap.Field{
			zap.String("carrier", h.Carrier), zap.String("environment", string(h.Environment)),
		}
		if h.State != StateNotLoggedIn {
			days := 0
			if h.DaysLeft != nil {
				days = *h.DaysLeft
			}
			fields = append(fields, zap.Time("refresh_token_expires_at", h.RefreshExpires), zap.Int("days_left", days))
		}
		fields = append(fields, zap.String("command", h.LoginCommand))
		if h.ErrorCode != "" {
			fields = append(fields, zap.String("error_code", h.ErrorCode))
		}
		switch h.State {
		case StateNotLoggedIn:
			b.log.Error("no UPS tokens stored: an admin must log in", fields...)
		case StateRejected:
			b.log.Error("UPS rejected the refresh token: an admin must log in again", fields...)
		case StateExpired:
			b.log.Error("refresh token expired: an admin must log in again", fields...)
		case StateExpiring:
			b.log.Warn("refresh token expires soon: an admin should log in again", fields...)
		}
	}
}

// reminders assesses every active authorization-code carrier and returns
// those an admin must act on (State.NeedsLogin), with error codes filled
// in. Carriers whose record cannot be read now are left out.
func (b *Broker) reminders(warnBefore time.Duration) []Health {
	now := b.now()
	var out []Health
	for _, e := range b.entryMap() {
		c := *e.car()
		if c.Inactive || c.Grant == ups.GrantClientCredentials {
			continue
		}
		var rec *vaultstore.Record
		if s := e.cur.Load(); s != nil {
			rec = &s.rec
		} else if s, err := b.load(e); err == nil {
			rec = &s.rec
		} else if !errors.Is(err, ErrNotLoggedIn) {
			continue // Vault is away: the next round tells
		}
		if h := Assess(c.subject(), rec, now, warnBefore).WithCode(b.opts.ErrorCode); h.State.NeedsLogin() {
			out = append(out, h)
		}
	}
	return out
}

// RunReminders logs reminders now and then every interval until ctx ends.
func (b *Broker) RunReminders(ctx context.Context, warnBefore, interval time.Duration) {
	b.warnBefore.Store(int64(warnBefore))
	b.RemindOnce(warnBefore)
	if interval > 0 {
		b.every(ctx, interval, func() { b.RemindOnce(warnBefore) })
	}
}
