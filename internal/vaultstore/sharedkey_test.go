package vaultstore

import (
	"bytes"
	"context"
	"sync"
	"testing"

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
