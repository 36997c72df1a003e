package vaultstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// Notice states.
const (
	// NoticeClaimed: a replica is delivering the notice; others leave it
	// alone until ClaimedUntil.
	NoticeClaimed = "claimed"
	// NoticeSent: delivered; never sent again.
	NoticeSent = "sent"
)

// NoticeRecord is what the notifier of every replica remembers about the
// reminders of one carrier and environment: which were sent, or are being
// sent, and for which login. It lives beside the token record at
// <mount>/data/<prefix>/notify/<carrier>/<environment> and, like it, is
// written with check-and-set, so two replicas can never both claim the same
// notice.
type NoticeRecord struct {
	Carrier     string          `json:"carrier"`
	Environment ups.Environment `json:"environment"`
	// Login is the issue time of the refresh token the notices belong to:
	// a new login (a new refresh token chain) starts a new set.
	Login     time.Time `json:"refresh_token_issued_at"`
	Notices   []Notice  `json:"notices"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by"`
	// Version is the KV v2 version read; 0 means not stored yet.
	Version int `json:"-"`
}

// Notice is one message on one channel.
type Notice struct {
	Event string `json:"event"`
	// Threshold tells notices of the same event apart: the notify_at
	// threshold of an "expiring" notice ("72h"), the failing episode of a
	// "failing" one.
	Threshold string `json:"threshold,omitempty"`
	Channel   string `json:"channel"`
	// Login repeats the record's Login: what the notice was sent for.
	Login        time.Time `json:"refresh_token_issued_at"`
	State        string    `json:"state"` // NoticeClaimed | NoticeSent
	Holder       string    `json:"holder,omitempty"`
	ClaimedUntil time.Time `json:"claimed_until,omitzero"`
	SentAt       time.Time `json:"sent_at,omitzero"`
}

func (s *Store) noticePath(carrier string, env ups.Environment) string {
	return s.mount + "/data/" + s.prefix + "/notify/" + carrier + "/" + string(env)
}

// GetNotices reads the notice record of carrier/env, with Version set.
// A record never written (or deleted) comes back empty with ErrNotFound,
// its Version being what PutNotices must name to create it.
func (s *Store) GetNotices(ctx context.Context, carrier string, env ups.Environment) (NoticeRecord, error) {
	if err := validateKey(carrier, env); err != nil {
		return NoticeRecord{}, err
	}
	path := s.noticePath(carrier, env)
	empty := NoticeRecord{Carrier: carrier, Environment: env}
	secret, err := s.get(ctx, "read", path, false)
	if err != nil {
		return NoticeRecord{}, err
	}
	if secret == nil {
		return empty, fmt.Errorf("read %s: %w", path, ErrNotFound)
	}
	version, err := versionOf(secret.Data["metadata"])
	if err != nil {
		return NoticeRecord{}, fmt.Errorf("read %s: %w", path, err)
	}
	raw := secret.Data["data"]
	if raw == nil {
		empty.Version = version
		return empty, fmt.Errorf("read %s: latest version %d is deleted: %w", path, version, ErrNotFound)
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return NoticeRecord{}, fmt.Errorf("read %s: %w", path, err)
	}
	var rec NoticeRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return NoticeRecord{}, fmt.Errorf("read %s: malformed notice record in vault: %w", path, err)
	}
	if rec.Carrier != carrier || rec.Environment != env {
		return NoticeRecord{}, fmt.Errorf("read %s: the notice record names carrier %q environment %q: it was copied from elsewhere; delete it",
			path, rec.Carrier, rec.Environment)
	}
	rec.Version = version
	return rec, nil
}

// PutNotices writes rec with check-and-set on rec.Version (0: must not exist
// yet) and returns the new version. ErrConflict when another replica wrote
// first: re-read and decide again.
func (s *Store) PutNotices(ctx context.Context, rec NoticeRecord) (int, error) {
	if err := validateKey(rec.Carrier, rec.Environment); err != nil {
		return 0, err
	}
	if rec.Version < 0 {
		return 0, fmt.Errorf("notice record %s/%s: negative version %d", rec.Carrier, rec.Environment, rec.Version)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return 0, fmt.Errorf("encode notice record %s/%s: %w", rec.Carrier, rec.Environment, err)
	}
	var data map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&data); err != nil {
		return 0, fmt.Errorf("encode notice record %s/%s: %w", rec.Carrier, rec.Environment, err)
	}
	path := s.noticePath(rec.Carrier, rec.Environment)
	// Unlike Put, a conflict is always reported, even when the stored
	// record equals ours: two passes of one process can compute identical
	// claims, and only one of them may deliver. A write whose answer was
	// lost then looks like a lost claim, which lapses after its TTL: late,
	// never twice.
	v, err := s.write(ctx, path, data, rec.Version)
	if err != nil {
		return 0, err
	}
	s.log.Debug("stored notice record", zap.String("carrier", rec.Carrier),
		zap.String("environment", string(rec.Environment)), zap.Int("version", v))
	return v, nil
}
