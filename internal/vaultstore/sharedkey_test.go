package vaultstore

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/testutil/vaultdevtest"
)

func TestSharedKey_ReplicasStartingTogetherAllGetTheSameKey(t *testing.T) {
	v := vaultdevtest.Start(t)
	keys := make([][]byte, 6)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := New(Options{Client: v.Client(t), Prefix: "shared-key-test"})
			if err != nil {
				t.Error(err)
				return
			}
			if keys[i], err = s.SharedKey(context.Background(), "console"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i, k := range keys {
		if len(k) != SharedKeySize || !bytes.Equal(k, keys[0]) {
			t.Fatalf("replica %d got a different key", i)
		}
	}
	// A key deleted with `vault kv delete` is made again, not an error.
	c := v.Client(t)
	if _, err := c.Logical().Delete("secret/data/shared-key-test/keys/console"); err != nil {
		t.Fatal(err)
	}
	s, _ := New(Options{Client: c, Prefix: "shared-key-test"})
	k, err := s.SharedKey(context.Background(), "console")
	if err != nil || len(k) != SharedKeySize || bytes.Equal(k, keys[0]) {
		t.Fatalf("after delete: %v, same key %v", err, bytes.Equal(k, keys[0]))
	}
	if _, err := s.SharedKey(context.Background(), "../x"); err == nil {
		t.Fatal("a path-unsafe key name was accepted")
	}
}

func TestSharedKey_TheShippedPolicyAllowsCreatingAndReadingTheSharedKeysButNotReplacingThem(t *testing.T) {
	srv := vaultdevtest.Start(t)
	roleID, secretID := setupAppRole(t, srv.Client(t), "upsproxy", "1m", "2m")
	secretFile := filepath.Join(t.TempDir(), "secret-id")
	writeFile(t, secretFile, secretID+"\n")
	s := mustSession(t, sessionOpts(srv, AppRoleAuth{RoleID: roleID, SecretIDFile: secretFile}, zap.NewNop()))
	store := newStore(t, s.Client(), Options{Mount: "secret", Prefix: "upsproxy"})
	for _, name := range []string{"console", "oauth"} {
		first, err := store.SharedKey(ctxT(t), name)
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		again, err := store.SharedKey(ctxT(t), name)
		if err != nil || !bytes.Equal(first, again) {
			t.Fatalf("read %s: %v (same key %v)", name, err, bytes.Equal(first, again))
		}
		// Replacing a key would sign every replica's sessions or tokens
		// out: the policy grants create and read, never update.
		if _, err := store.write(ctxT(t), "secret/data/upsproxy/keys/"+name, map[string]any{"key": "x"}, 1); err == nil {
			t.Fatalf("the policy lets the proxy replace the %s key", name)
		}
	}
}
