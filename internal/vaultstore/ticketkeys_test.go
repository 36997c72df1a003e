package vaultstore

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/testutil/vaultdevtest"
)

func TestTicketKeysAreRotatedWithCheckAndSetUnderTheShippedPolicy(t *testing.T) {
	srv := vaultdevtest.Start(t)
	s := newStore(t, limitedClient(t, srv, "upsproxy", shippedPolicy(t)), Options{})

	none, err := s.GetTicketKeys(ctxT(t))
	if err != nil || none.Version != 0 || len(none.Keys) != 0 {
		t.Fatalf("GetTicketKeys of nothing = %v, %v; want version 0 and no error", none, err)
	}
	k1 := [TicketKeySize]byte{1, 2, 3}
	k2 := [TicketKeySize]byte{9, 8, 7}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	if _, err := s.PutTicketKeys(ctxT(t), TicketKeys{Keys: [][TicketKeySize]byte{k1}, RotatedAt: at, RotatedBy: "r1"}); err != nil {
		t.Fatal(err)
	}
	// A second replica that also found none loses, and must re-read.
	if _, err := s.PutTicketKeys(ctxT(t), TicketKeys{Keys: [][TicketKeySize]byte{k2}, RotatedAt: at, RotatedBy: "r2"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("competing create = %v, want ErrConflict", err)
	}
	got, err := s.GetTicketKeys(ctxT(t))
	if err != nil || got.Version != 1 || len(got.Keys) != 1 || got.Keys[0] != k1 || !got.RotatedAt.Equal(at) || got.RotatedBy != "r1" {
		t.Fatalf("stored = %v, %v", got, err)
	}
	rot := TicketKeys{Keys: [][TicketKeySize]byte{k2, k1}, RotatedAt: at.Add(time.Hour), RotatedBy: "r2", Version: got.Version}
	if v, err := s.PutTicketKeys(ctxT(t), rot); err != nil || v != 2 {
		t.Fatalf("rotation = %d, %v", v, err)
	}
	if got, err = s.GetTicketKeys(ctxT(t)); err != nil || len(got.Keys) != 2 || got.Keys[0] != k2 || got.Keys[1] != k1 {
		t.Fatalf("after rotation = %v, %v", got, err)
	}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(f, got); strings.Contains(out, "[9 8 7") || strings.Contains(out, "CQgH") {
			t.Errorf("%s prints key material: %s", f, out)
		}
	}
	if keys, err := s.List(ctxT(t)); err != nil || len(keys) != 0 {
		t.Errorf("token list shows the ticket keys: %v, %v", keys, err)
	}
}

func TestMalformedTicketKeysInVaultAreAClearError(t *testing.T) {
	srv, s := startStore(t)
	root := srv.Client(t)
	for _, data := range []map[string]any{
		{"keys": []any{"not base64!"}},
		{"keys": []any{"AAEC"}}, // 3 bytes
		{"keys": []any{}},
	} {
		if _, err := root.Logical().WriteWithContext(ctxT(t), "secret/data/upsproxy/mitm/session-ticket-keys", map[string]any{"data": data}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetTicketKeys(ctxT(t)); err == nil || !strings.Contains(err.Error(), "delete the secret") {
			t.Errorf("GetTicketKeys of %v = %v, want an error saying what to do", data, err)
		}
	}
}
