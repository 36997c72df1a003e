package vaultstore

import (
	"errors"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/testutil/vaultdevtest"
	"github.com/upsproxy/upsproxy/internal/ups"
)

func TestNoticeRecordsAreClaimedWithCheckAndSetUnderTheShippedPolicyAndDoNotShowInTheTokenList(t *testing.T) {
	srv := vaultdevtest.Start(t)
	s := newStore(t, limitedClient(t, srv, "upsproxy", shippedPolicy(t)), Options{})

	nr, err := s.GetNotices(ctxT(t), "main", ups.Test)
	if !errors.Is(err, ErrNotFound) || nr.Version != 0 {
		t.Fatalf("GetNotices of nothing = %+v, %v", nr, err)
	}
	login := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	nr.Login = login
	nr.Notices = []Notice{{Event: "expiring", Threshold: "72h0m0s", Channel: "mail", Login: login, State: NoticeClaimed, Holder: "r1"}}
	a, b := nr, nr
	b.Notices = []Notice{{Event: "expiring", Threshold: "72h0m0s", Channel: "mail", Login: login, State: NoticeClaimed, Holder: "r2"}}
	if _, err := s.PutNotices(ctxT(t), a); err != nil {
		t.Fatal(err)
	}
	// Even an identical second claim must lose: only one may deliver.
	if _, err := s.PutNotices(ctxT(t), a); !errors.Is(err, ErrConflict) {
		t.Fatalf("second claim at version 0 = %v, want a conflict", err)
	}
	if _, err := s.PutNotices(ctxT(t), b); !errors.Is(err, ErrConflict) {
		t.Fatalf("competing claim = %v, want a conflict", err)
	}
	got, err := s.GetNotices(ctxT(t), "main", ups.Test)
	if err != nil || got.Version != 1 || len(got.Notices) != 1 || got.Notices[0].Holder != "r1" || !got.Login.Equal(login) {
		t.Fatalf("stored = %+v, %v", got, err)
	}
	if keys, err := s.List(ctxT(t)); err != nil || len(keys) != 0 {
		t.Errorf("token list shows notice records: %v, %v", keys, err)
	}
}
