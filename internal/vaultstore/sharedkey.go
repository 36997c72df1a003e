package vaultstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
)

// SharedKeySize is the length of a shared key in bytes.
const SharedKeySize = 32

// SharedKey returns the random key stored at
// <mount>/data/<prefix>/keys/<name>, creating it on first use with
// check-and-set 0, so that every replica ends up with the same key however
// many start at once: a replica that loses the race reads the winner's.
// The console signs its sessions and login state with it.
func (s *Store) SharedKey(ctx context.Context, name string) ([]byte, error) {
	if !validSegment(name) {
		return nil, fmt.Errorf("vaultstore: invalid key name %q", name)
	}
	path := s.mount + "/data/" + s.prefix + "/keys/" + name
	for attempt := 0; attempt < 3; attempt++ {
		secret, err := s.get(ctx, "read", path, false)
		if err != nil {
			return nil, err
		}
		cas := 0
		if secret != nil {
			if data, ok := secret.Data["data"].(map[string]any); ok && data != nil {
				return decodeSharedKey(path, data)
			}
			// Latest version deleted: creating again names that version.
			if cas, err = versionOf(secret.Data["metadata"]); err != nil {
				return nil, fmt.Errorf("read %s: %w", path, err)
			}
		}
		key := make([]byte, SharedKeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		_, err = s.write(ctx, path, map[string]any{"key": base64.StdEncoding.EncodeToString(key)}, cas)
		switch {
		case err == nil:
			return key, nil
		case errors.Is(err, ErrConflict):
			continue // another replica created it first: read theirs
		default:
			return nil, err
		}
	}
	return nil, fmt.Errorf("write %s: %w: the key kept changing", path, ErrConflict)
}

func decodeSharedKey(path string, data map[string]any) ([]byte, error) {
	s, _ := data["key"].(string)
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(key) != SharedKeySize {
		return nil, fmt.Errorf("read %s: field \"key\" is not %d bytes of base64: delete the secret and restart to make a new one", path, SharedKeySize)
	}
	return key, nil
}
