package vaultstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"go.uber.org/zap"
)

// signingKeyPath is where the key that signs the proxy's own OAuth tokens
// (internal/clienttoken) lives: <mount>/data/<prefix>/oauth/signing-key.
func (s *Store) signingKeyPath() string {
	return s.mount + "/data/" + s.prefix + "/oauth/signing-key"
}

// SigningKey returns the key every replica signs its clients' tokens with,
// creating it with newKey when none is stored. The create is a
// check-and-set with cas=0, so replicas starting together agree on one
// key: whoever loses the race reads the winner's. size is the key length
// expected; a stored key of another length is an error, not replaced (that
// would invalidate every token the other replicas issued).
func (s *Store) SigningKey(ctx context.Context, size int, newKey func() ([]byte, error)) ([]byte, error) {
	path := s.signingKeyPath()
	for attempt := 0; attempt < 2; attempt++ {
		secret, err := s.get(ctx, "read", path, false)
		if err != nil {
			return nil, err
		}
		if secret != nil && secret.Data["data"] != nil {
			data, _ := secret.Data["data"].(map[string]any)
			enc, _ := data["key"].(string)
			key, err := base64.StdEncoding.DecodeString(enc)
			if err != nil || len(key) != size {
				return nil, fmt.Errorf("read %s: the stored signing key is not %d base64-encoded bytes; delete it to make a new one (every token issued so far then stops working)", path, size)
			}
			return key, nil
		}
		version := 0
		if secret != nil {
			// A deleted latest version: create over it.
			if version, err = versionOf(secret.Data["metadata"]); err != nil {
				return nil, fmt.Errorf("read %s: %w", path, err)
			}
		}
		key, err := newKey()
		if err != nil {
			return nil, fmt.Errorf("new signing key: %w", err)
		}
		_, err = s.write(ctx, path, map[string]any{"key": base64.StdEncoding.EncodeToString(key)}, version)
		if errors.Is(err, ErrConflict) {
			continue // another replica created it first: read theirs
		}
		if err != nil {
			return nil, err
		}
		s.log.Info("created the signing key of client tokens", zap.String("path", path))
		return key, nil
	}
	return nil, fmt.Errorf("read %s: the signing key keeps changing under check-and-set", path)
}
