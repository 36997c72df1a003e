package proxy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"math/big"
	"time"

	"go.uber.org/zap"
)

// TicketKey is one TLS session ticket key.
type TicketKey = [32]byte

// TicketKeySet is the shared ticket keys as stored: newest first.
type TicketKeySet struct {
	Keys      []TicketKey
	RotatedAt time.Time
	// Version is the store's check-and-set version; 0: none stored yet.
	Version int
}

// ErrTicketKeysConflict is what TicketKeyStore.Put returns when another
// replica wrote the keys first.
var ErrTicketKeysConflict = errors.New("ticket keys changed since they were read")

// TicketKeyStore keeps the ticket keys every replica shares (Vault in
// `serve`). Get returns Version 0 and no error when none are stored; Put
// writes with check-and-set on set.Version and returns
// ErrTicketKeysConflict (wrapped or not) when it lost.
type TicketKeyStore interface {
	GetTicketKeys(ctx context.Context) (TicketKeySet, error)
	PutTicketKeys(ctx context.Context, set TicketKeySet) error
}

// ticketKeysKept is how many keys a rotation keeps: the new one seals new
// tickets, the previous one still opens the tickets it sealed.
const ticketKeysKept = 2

// mitmTemplate is the server TLS config of MITM tunnels without its leaf:
// HTTP/1.1 only (the tunnel loop speaks nothing else) and the session
// ticket keys, or tickets off when keys is empty: that is before
// RunTicketKeys installs a first key, or always with
// mitm.session_tickets = false. (While the store is down, RunTicketKeys
// installs a key of this process, so tickets resume on this replica.)
func mitmTemplate(keys []TicketKey) *tls.Config {
	c := &tls.Config{NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}
	if len(keys) == 0 {
		// Without keys set here a ticket could never be used: each
		// tunnel's cloned config would seal it with a random key of its
		// own. Do not send any.
		c.SessionTicketsDisabled = true
		return c
	}
	c.SetSessionTicketKeys(keys)
	return c
}

// setTicketKeys makes new MITM handshakes seal tickets with keys[0] and
// accept tickets sealed with any of keys.
func (p *Proxy) setTicketKeys(keys []TicketKey) {
	p.mitmConf.Store(mitmTemplate(keys))
}

// RunTicketKeys shares the MITM session ticket keys with the other
// replicas through store until ctx ends: it loads them, creates or rotates
// them (check-and-set: when two replicas rotate at once one wins and the
// other takes its keys) once they are older than every, and wakes again
// when the next rotation is due, with a little jitter so replicas do not
// all ask at once. Until the store first answers, tickets are sealed with
// a key of this process alone (they resume on this replica only).
func (p *Proxy) RunTicketKeys(ctx context.Context, store TicketKeyStore, every time.Duration) {
	local := newTicketKey()
	p.setTicketKeys([]TicketKey{local})
	retry := min(every/4, time.Minute)
	failing := false
	for {
		next, err := p.SyncTicketKeys(ctx, store, every)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				p.log.Warn("MITM session ticket keys not shared: the ticket store is unavailable; resumption works on this replica only until it answers",
					zap.Error(err), zap.Duration("retry_in", retry))
			}
			failing = true
			next = retry
		} else if failing {
			p.log.Info("MITM session ticket keys shared again")
			failing = false
		}
		t := time.NewTimer(next + jitter(every/60))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// SyncTicketKeys is one step of RunTicketKeys: it installs the stored
// keys, creating or rotating them first when due, and returns how long
// until the next rotation is due.
func (p *Proxy) SyncTicketKeys(ctx context.Context, store TicketKeyStore, every time.Duration) (time.Duration, error) {
	for attempt := 0; ; attempt++ {
		set, err := store.GetTicketKeys(ctx)
		if err != nil {
			return 0, err
		}
		now := p.now()
		age := now.Sub(set.RotatedAt)
		if set.Version > 0 && len(set.Keys) > 0 && age >= 0 && age < every {
			p.setTicketKeys(set.Keys)
			p.log.Debug("MITM session ticket keys loaded", zap.Int("version", set.Version))
			return every - age, nil
		}
		keys := append([]TicketKey{newTicketKey()}, set.Keys...)
		keys = keys[:min(len(keys), ticketKeysKept)]
		err = store.PutTicketKeys(ctx, TicketKeySet{Keys: keys, RotatedAt: now, Version: set.Version})
		if errors.Is(err, ErrTicketKeysConflict) && attempt < 3 {
			continue // another replica rotated: use its keys
		}
		if err != nil {
			return 0, err
		}
		p.setTicketKeys(keys)
		p.log.Info("MITM session ticket key rotated", zap.Int("version", set.Version+1))
		return every, nil
	}
}

func newTicketKey() TicketKey {
	var k TicketKey
	_, _ = rand.Read(k[:]) // crypto/rand.Read never fails (Go 1.24+)
	return k
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	n, err := rand.Int(rand.Reader, big.NewInt(int64(d)))
	if err != nil {
		return 0
	}
	return time.Duration(n.Int64())
}
