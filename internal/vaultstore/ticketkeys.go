package vaultstore

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// TicketKeySize is the size of one TLS session ticket key (crypto/tls).
const TicketKeySize = 32

// maxTicketKeys bounds the keys kept: the current one and those tickets
// issued before the last rotations may still be sealed with.
const maxTicketKeys = 4

// TicketKeys are the TLS session ticket keys of the MITM listener, shared by
// every replica so that a client resumes its session on whichever replica
// it reaches. They live at <mount>/data/<prefix>/mitm/session-ticket-keys
// and are rotated with check-and-set, so two replicas rotating at once
// cannot each install a different key.
type TicketKeys struct {
	// Keys, newest first: the first seals new tickets, all open them.
	Keys      [][TicketKeySize]byte
	RotatedAt time.Time
	RotatedBy string
	// Version is the KV v2 version read; 0 means not stored yet.
	Version int
}

// String keeps the keys out of logs.
func (t TicketKeys) String() string {
	return fmt.Sprintf("TicketKeys{%d keys, rotated %s by %s, version %d}", len(t.Keys), t.RotatedAt.Format(time.RFC3339), t.RotatedBy, t.Version)
}

// GoString keeps the keys out of %#v.
func (t TicketKeys) GoString() string { return t.String() }

func (s *Store) ticketKeysPath() string {
	return s.mount + "/data/" + s.prefix + "/mitm/session-ticket-keys"
}

// GetTicketKeys reads the shared ticket keys. None stored yet (or deleted)
// is no error: Version then says what PutTicketKeys must name to create
// them.
func (s *Store) GetTicketKeys(ctx context.Context) (TicketKeys, error) {
	path := s.ticketKeysPath()
	secret, err := s.get(ctx, "read", path, false)
	if err != nil || secret == nil {
		return TicketKeys{}, err
	}
	version, err := versionOf(secret.Data["metadata"])
	if err != nil {
		return TicketKeys{}, fmt.Errorf("read %s: %w", path, err)
	}
	data, _ := secret.Data["data"].(map[string]any)
	if data == nil {
		return TicketKeys{Version: version}, nil // latest version deleted
	}
	out := TicketKeys{Version: version}
	raw, _ := data["keys"].([]any)
	if len(raw) == 0 || len(raw) > maxTicketKeys {
		return TicketKeys{}, fmt.Errorf("read %s: malformed ticket keys in vault (%d keys); delete the secret and upsproxy makes new ones", path, len(raw))
	}
	for i, k := range raw {
		ks, _ := k.(string)
		b, err := base64.StdEncoding.DecodeString(ks)
		if err != nil || len(b) != TicketKeySize {
			return TicketKeys{}, fmt.Errorf("read %s: ticket key %d is not %d bytes of base64; delete the secret and upsproxy makes new ones", path, i, TicketKeySize)
		}
		out.Keys = append(out.Keys, [TicketKeySize]byte(b))
	}
	if ts, _ := data["rotated_at"].(string); ts != "" {
		if out.RotatedAt, err = time.Parse(time.RFC3339Nano, ts); err != nil {
			return TicketKeys{}, fmt.Errorf("read %s: rotated_at %q: %w", path, ts, err)
		}
	}
	out.RotatedBy, _ = data["rotated_by"].(string)
	return out, nil
}

// PutTicketKeys writes t with check-and-set on t.Version and returns the
// new version; ErrConflict when another replica rotated first (re-read and
// use its keys).
func (s *Store) PutTicketKeys(ctx context.Context, t TicketKeys) (int, error) {
	if len(t.Keys) == 0 || len(t.Keys) > maxTicketKeys {
		return 0, fmt.Errorf("ticket keys: want 1 to %d keys, not %d", maxTicketKeys, len(t.Keys))
	}
	keys := make([]any, len(t.Keys))
	for i, k := range t.Keys {
		keys[i] = base64.StdEncoding.EncodeToString(k[:])
	}
	data := map[string]any{"keys": keys, "rotated_at": t.RotatedAt.UTC().Format(time.RFC3339Nano), "rotated_by": t.RotatedBy}
	v, err := s.write(ctx, s.ticketKeysPath(), data, t.Version)
	if err != nil {
		return 0, err
	}
	s.log.Debug("stored MITM session ticket keys", zap.Int("keys", len(t.Keys)), zap.Int("version", v))
	return v, nil
}
