package vaultstore

import (
	"bytes"
	"context"
	"sync"
	"testing"
)

func TestSigningKeyIsCreatedOnceAndEveryReplicaReadsTheSameKey(t *testing.T) {
	srv, _ := startStore(t)
	ctx := context.Background()
	const n = 4
	var (
		wg   sync.WaitGroup
		keys [n][]byte
		errs [n]error
	)
	for i := 0; i < n; i++ {
		// One Store per replica, racing to create the key.
		st := newStore(t, srv.Client(t), Options{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys[i], errs[i] = st.SigningKey(ctx, 32, func() ([]byte, error) {
				k := bytes.Repeat([]byte{byte(i + 1)}, 32)
				return k, nil
			})
		}()
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("replica %d got another key than replica 0", i)
		}
	}
	again, err := newStore(t, srv.Client(t), Options{}).SigningKey(ctx, 32, func() ([]byte, error) {
		t.Fatal("a stored key was replaced")
		return nil, nil
	})
	if err != nil || !bytes.Equal(again, keys[0]) {
		t.Fatalf("restart read %v, %v", again, err)
	}
}

func TestSigningKeyOfTheWrongSizeIsAnErrorNotReplaced(t *testing.T) {
	srv, st := startStore(t)
	ctx := context.Background()
	if _, err := st.SigningKey(ctx, 16, func() ([]byte, error) { return make([]byte, 16), nil }); err != nil {
		t.Fatal(err)
	}
	_, err := newStore(t, srv.Client(t), Options{}).SigningKey(ctx, 32, func() ([]byte, error) {
		t.Fatal("a stored key was replaced")
		return nil, nil
	})
	if err == nil {
		t.Fatal("a 16-byte key was accepted as a 32-byte one")
	}
}
