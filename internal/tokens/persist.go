package tokens

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// persist writes the entry's dirty state to the store with check-and-set.
// It reports whether nothing is left unstored (written, or superseded by a
// newer record in the store).
func (b *Broker) persist(e *entry, log *zap.Logger) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for attempt := 0; attempt < 3; attempt++ {
		s := e.cur.Load()
		if s == nil || !s.dirty {
			return true
		}
		rec := s.rec
		rec.UpdatedAt, rec.UpdatedBy = b.now(), b.opts.Holder
		ctx, cancel := b.storeCtx()
		v, err := b.opts.Store.Put(ctx, rec)
		cancel()
		switch {
		case err == nil:
			rec.Version = v
			n := *s
			n.rec, n.dirty, n.spent = rec, false, ""
			e.cur.CompareAndSwap(s, &n)
			return true
		case errors.Is(err, vaultstore.ErrConflict):
			if !b.resolveConflict(e, s, log) {
				return true
			}
		default:
			// Keep the pair in memory: it may be the only valid one now.
			log.Error("could not store tokens in Vault; keeping them in memory and retrying", zap.Error(err))
			b.schedulePersist(e, log)
			return false
		}
	}
	log.Error("could not store tokens in Vault after repeated conflicts; keeping them in memory and retrying")
	b.schedulePersist(e, log)
	return false
}

// resolveConflict handles a check-and-set conflict on a dirty state s. It
// returns true when s should still be written (rebased on the stored
// version) and false when the stored record wins.
func (b *Broker) resolveConflict(e *entry, s *state, log *zap.Logger) bool {
	ctx, cancel := b.storeCtx()
	defer cancel()
	stored, err := b.opts.Store.Get(ctx, e.car().Name, e.car().Environment)
	rebased := *s
	switch {
	case errors.Is(err, vaultstore.ErrNotFound):
		// Deleted meanwhile (`token delete`): write ours afresh.
		rebased.rec.Version = 0
	case err != nil:
		return true // the retry reports the store error
	case !stored.Rejected && stored.Token.RefreshToken != "" && (s.spent == "" || stored.Token.RefreshToken != s.spent):
		// A login, or a pair minted from a refresh token we did not spend,
		// beats ours.
		log.Info("a newer token pair is in Vault; using it")
		e.cur.CompareAndSwap(s, b.newState(stored, false, b.recordError(*e.car(), stored), ""))
		return false
	default:
		// A lease, a rejected-marking, or a record still holding the
		// refresh token we just spent: our pair is the one UPS honours.
		rebased.rec.Version = stored.Version
	}
	return e.cur.CompareAndSwap(s, &rebased)
}

// schedulePersist retries a failed store write in the background with
// backoff until it lands or the state is superseded.
func (b *Broker) schedulePersist(e *entry, log *zap.Logger) {
	if !e.retrying.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer e.retrying.Store(false)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-b.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		if retryBackoff(ctx, b, 500*time.Millisecond, 30*time.Second, func() bool { return b.persist(e, log) }) {
			log.Info("pending tokens stored in Vault")
		}
	}()
}

// retryBackoff calls try, waiting first, then doubling the wait up to
// most, until try reports success (true) or ctx ends or the broker closes
// (false). The waits use the broker's time (Options.After).
func retryBackoff(ctx context.Context, b *Broker, first, most time.Duration, try func() bool) bool {
	for wait := first; ; wait = min(2*wait, most) {
		select {
		case <-ctx.Done():
			return false
		case <-b.done:
			return false
		case <-b.opts.After(wait):
		}
		if try() {
			return true
		}
	}
}
