package vaultstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/upsproxy/upsproxy/internal/testutil/vaultdevtest"
	"github.com/upsproxy/upsproxy/internal/ups"
)

// ctxT bounds every Vault call of a test, so a hang fails fast.
func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newStore(t *testing.T, client *vaultapi.Client, opts Options) *Store {
	t.Helper()
	opts.Client = client
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startStore starts a real dev Vault and a store on it with default
// mount and prefix.
func startStore(t *testing.T) (*vaultdevtest.Server, *Store) {
	t.Helper()
	srv := vaultdevtest.Start(t)
	return srv, newStore(t, srv.Client(t), Options{})
}

// with returns a copy of rec changed by edit.
func with(rec Record, edit func(*Record)) Record {
	edit(&rec)
	return rec
}

func mustPut(t *testing.T, s *Store, rec Record) int {
	t.Helper()
	v, err := s.Put(ctxT(t), rec)
	if err != nil {
		t.Fatalf("Put %s: %v", rec, err)
	}
	return v
}

func TestPutCreatesAndGetReturnsEveryFieldAsStored(t *testing.T) {
	_, s := startStore(t)
	want := sampleRecord("main", ups.Production)

	v, err := s.Put(ctxT(t), want)
	if err != nil {
		t.Fatal(err)
	}
	if v != 1 {
		t.Fatalf("first Put returned version %d, want 1", v)
	}
	got, err := s.Get(ctxT(t), "main", ups.Production)
	if err != nil {
		t.Fatal(err)
	}
	want.Version = 1
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Get returned a different record:\n got  %+v\n want %+v\n tokens equal: %v", got, want, got.Token == want.Token)
	}
}

func TestTimesInOtherZonesKeepTheirInstant(t *testing.T) {
	_, s := startStore(t)
	rec := sampleRecord("main", ups.Test)
	berlin := time.FixedZone("CET", 3600)
	rec.Token.ExpiresAt = time.Date(2026, 1, 2, 3, 4, 5, 6, berlin)
	rec.UpdatedAt = time.Now() // carries a monotonic reading, which JSON drops
	mustPut(t, s, rec)

	got, err := s.Get(ctxT(t), "main", ups.Test)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Token.ExpiresAt.Equal(rec.Token.ExpiresAt) {
		t.Errorf("ExpiresAt = %s, want %s", got.Token.ExpiresAt, rec.Token.ExpiresAt)
	}
	if !got.UpdatedAt.Equal(rec.UpdatedAt) {
		t.Errorf("UpdatedAt = %s, want %s", got.UpdatedAt, rec.UpdatedAt)
	}
}

func TestGetOfARecordNeverStoredIsNotFound(t *testing.T) {
	_, s := startStore(t)
	_, err := s.Get(ctxT(t), "main", ups.Production)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get = %v, want ErrNotFound", err)
	}
	if errors.Is(err, ErrUnavailable) {
		t.Fatalf("a missing record must not look like an unavailable vault: %v", err)
	}
}

func TestSecondCreateOfTheSameRecordConflicts(t *testing.T) {
	_, s := startStore(t)
	first := sampleRecord("main", ups.Production)
	mustPut(t, s, first)

	second := sampleRecord("main", ups.Production)
	second.UpdatedBy = "host-b/99"
	second.Token.RefreshToken = "RT-from-host-b"
	_, err := s.Put(ctxT(t), second) // Version 0: must not exist
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("second create = %v, want ErrConflict", err)
	}
	got, err := s.Get(ctxT(t), "main", ups.Production)
	if err != nil {
		t.Fatal(err)
	}
	if got.Token.RefreshToken != secretRefresh || got.Version != 1 {
		t.Fatalf("the first record was overwritten: %s", got)
	}
}

func TestPutWithAStaleVersionConflictsAndKeepsTheNewerRecord(t *testing.T) {
	_, s := startStore(t)
	rec := sampleRecord("main", ups.Production)
	rec.Version = mustPut(t, s, rec) // 1

	newer := rec
	newer.Token.RefreshToken = "RT-newer"
	if v := mustPut(t, s, newer); v != 2 {
		t.Fatalf("update returned version %d, want 2", v)
	}

	stale := rec // still says version 1
	stale.Token.RefreshToken = "RT-stale"
	if _, err := s.Put(ctxT(t), stale); !errors.Is(err, ErrConflict) {
		t.Fatalf("Put with stale version = %v, want ErrConflict", err)
	}
	got, err := s.Get(ctxT(t), "main", ups.Production)
	if err != nil {
		t.Fatal(err)
	}
	if got.Token.RefreshToken != "RT-newer" || got.Version != 2 {
		t.Fatalf("stored record = %s with refresh token %q, want version 2 with RT-newer", got, got.Token.RefreshToken)
	}
}

func TestConcurrentUpdatesOfTheSameVersionHaveExactlyOneWinner(t *testing.T) {
	srv, s := startStore(t)
	base := sampleRecord("main", ups.Production)
	base.Version = mustPut(t, s, base)

	const writers = 8
	var (
		wg        sync.WaitGroup
		start     = make(chan struct{})
		wins      atomic.Int32
		conflicts atomic.Int32
		winner    atomic.Value
		others    = make(chan error, writers)
	)
	for i := range writers {
		// Each replica has its own client, as separate processes would.
		store := newStore(t, srv.Client(t), Options{})
		rec := base
		rec.UpdatedBy = fmt.Sprintf("replica-%d", i)
		rec.Token.RefreshToken = fmt.Sprintf("RT-replica-%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := store.Put(context.Background(), rec)
			switch {
			case err == nil:
				wins.Add(1)
				winner.Store(rec.Token.RefreshToken)
			case errors.Is(err, ErrConflict):
				conflicts.Add(1)
			default:
				others <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(others)
	for err := range others {
		t.Errorf("unexpected error: %v", err)
	}
	if wins.Load() != 1 || conflicts.Load() != writers-1 {
		t.Fatalf("wins=%d conflicts=%d, want 1 and %d", wins.Load(), conflicts.Load(), writers-1)
	}
	got, err := s.Get(ctxT(t), "main", ups.Production)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 2 || got.Token.RefreshToken != winner.Load() {
		t.Fatalf("stored %s with refresh token %q, want version 2 with the winner's %q", got, got.Token.RefreshToken, winner.Load())
	}
}

func TestDeleteRemovesTheRecordAndItCanBeCreatedAgain(t *testing.T) {
	_, s := startStore(t)
	rec := sampleRecord("main", ups.Production)
	mustPut(t, s, rec)
	mustPut(t, s, with(rec, func(r *Record) { r.Version = 1; r.UpdatedBy = "second" }))

	if err := s.Delete(ctxT(t), "main", ups.Production); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctxT(t), "main", ups.Production); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctxT(t), "main", ups.Production); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete = %v, want ErrNotFound", err)
	}
	// Every version went: a new login starts again at version 1.
	if v := mustPut(t, s, rec); v != 1 {
		t.Fatalf("Put after Delete returned version %d, want 1", v)
	}
}

func TestDeleteOfAnUnknownCarrierIsNotFound(t *testing.T) {
	_, s := startStore(t)
	mustPut(t, s, sampleRecord("main", ups.Production))
	if err := s.Delete(ctxT(t), "mian", ups.Production); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete of a mistyped carrier = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctxT(t), "main", ups.Production); err != nil {
		t.Fatalf("the other record was touched: %v", err)
	}
}

func TestARecordDeletedWithVaultKVDeleteIsNotFoundAndCanBeCreatedAgain(t *testing.T) {
	srv, s := startStore(t)
	mustPut(t, s, sampleRecord("main", ups.Production))
	// `vault kv delete` soft-deletes the latest version: metadata stays.
	if err := srv.Client(t).KVv2("secret").Delete(ctxT(t), "upsproxy/tokens/main/production"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctxT(t), "main", ups.Production); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a soft-deleted record = %v, want ErrNotFound", err)
	}
	rec := sampleRecord("main", ups.Production)
	rec.UpdatedBy = "login"
	v, err := s.Put(ctxT(t), rec) // Version 0, as after any ErrNotFound
	if err != nil {
		t.Fatalf("create over a soft-deleted record: %v", err)
	}
	if v != 2 {
		t.Fatalf("version = %d, want 2", v)
	}
	got, err := s.Get(ctxT(t), "main", ups.Production)
	if err != nil || got.UpdatedBy != "login" {
		t.Fatalf("Get = %s, %v", got, err)
	}
}

func TestListReturnsEveryStoredRecordSortedAndSkipsForeignPaths(t *testing.T) {
	srv, s := startStore(t)
	keys, err := s.List(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Fatalf("List on an empty vault = %v, want none", keys)
	}

	mustPut(t, s, sampleRecord("main", ups.Production))
	mustPut(t, s, sampleRecord("main", ups.Test))
	mustPut(t, s, sampleRecord("aux", ups.Test))
	// Things an operator may have put there by hand, and another prefix.
	kv := srv.Client(t).KVv2("secret")
	for _, p := range []string{"upsproxy/tokens/README", "upsproxy/tokens/main/staging", "upsproxy/other/x"} {
		if _, err := kv.Put(ctxT(t), p, map[string]any{"note": "x"}); err != nil {
			t.Fatal(err)
		}
	}
	other := newStore(t, srv.Client(t), Options{Prefix: "team-b"})
	mustPut(t, other, sampleRecord("elsewhere", ups.Test))

	keys, err = s.List(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []Key{{"aux", ups.Test}, {"main", ups.Production}, {"main", ups.Test}}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("List = %v, want %v", keys, want)
	}
}

func TestMountAndPrefixPlaceRecordsWhereTheSpecSays(t *testing.T) {
	srv := vaultdevtest.Start(t)
	s := newStore(t, srv.Client(t), Options{Mount: "/secret/", Prefix: "team/upsproxy/"})
	mustPut(t, s, sampleRecord("main", ups.Production))

	sec, err := srv.Client(t).KVv2("secret").Get(ctxT(t), "team/upsproxy/tokens/main/production")
	if err != nil {
		t.Fatalf("record not at secret/data/team/upsproxy/tokens/main/production: %v", err)
	}
	// Stored as a map of fields, readable with `vault kv get`.
	if sec.Data["carrier"] != "main" || sec.Data["grant"] != ups.GrantAuthorizationCode {
		t.Fatalf("stored data = %v", sec.Data)
	}
	if _, ok := sec.Data["token"].(map[string]any); !ok {
		t.Fatalf("token is not stored as a map of fields: %T", sec.Data["token"])
	}
}

func TestPathUnsafeCarrierNamesAreRefusedBeforeReachingVault(t *testing.T) {
	_, s := startStore(t)
	for _, carrier := range []string{"", "..", "../main", "main/production", "a b", "main?list=true", "x%2F"} {
		t.Run(fmt.Sprintf("%q", carrier), func(t *testing.T) {
			rec := sampleRecord(carrier, ups.Production)
			if _, err := s.Put(ctxT(t), rec); err == nil || !strings.Contains(err.Error(), "invalid carrier") {
				t.Errorf("Put = %v, want an invalid carrier error", err)
			}
			if _, err := s.Get(ctxT(t), carrier, ups.Production); err == nil || errors.Is(err, ErrNotFound) {
				t.Errorf("Get = %v, want an invalid carrier error", err)
			}
			if err := s.Delete(ctxT(t), carrier, ups.Production); err == nil || errors.Is(err, ErrNotFound) {
				t.Errorf("Delete = %v, want an invalid carrier error", err)
			}
		})
	}
	if keys, err := s.List(ctxT(t)); err != nil || len(keys) != 0 {
		t.Fatalf("List = %v, %v: something was written", keys, err)
	}
}

func TestAnUnknownEnvironmentIsRefused(t *testing.T) {
	_, s := startStore(t)
	if _, err := s.Get(ctxT(t), "main", "staging"); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Get = %v, want an invalid environment error", err)
	}
}

func TestSealedVaultIsUnavailableAndServesAgainWhenUnsealed(t *testing.T) {
	srv := vaultdevtest.Start(t)
	client := srv.Client(t)
	// The library retries 503s with a 1s+ back-off; the outcome is the
	// same, only slower.
	client.SetMaxRetries(0)
	s := newStore(t, client, Options{})
	rec := sampleRecord("main", ups.Production)
	rec.Version = mustPut(t, s, rec)

	srv.Seal(t)
	if err := s.Ping(ctxT(t)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ping on a sealed vault = %v, want ErrUnavailable", err)
	}
	if _, err := s.Get(ctxT(t), "main", ups.Production); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Get on a sealed vault = %v, want ErrUnavailable", err)
	}
	if _, err := s.Put(ctxT(t), rec); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Put on a sealed vault = %v, want ErrUnavailable", err)
	}
	if _, err := s.List(ctxT(t)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("List on a sealed vault = %v, want ErrUnavailable", err)
	}
	if err := s.Delete(ctxT(t), "main", ups.Production); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Delete on a sealed vault = %v, want ErrUnavailable", err)
	}

	srv.Unseal(t)
	if err := s.Ping(ctxT(t)); err != nil {
		t.Fatalf("Ping after unseal: %v", err)
	}
	got, err := s.Get(ctxT(t), "main", ups.Production)
	if err != nil || got.Version != 1 {
		t.Fatalf("Get after unseal = %s, %v; want the record stored before sealing", got, err)
	}
}

func TestStoppedVaultIsUnavailable(t *testing.T) {
	srv := vaultdevtest.Start(t)
	client := srv.Client(t)
	client.SetMaxRetries(0)
	s := newStore(t, client, Options{})
	if err := s.Ping(ctxT(t)); err != nil {
		t.Fatalf("Ping on a running vault: %v", err)
	}
	srv.Stop()

	if err := s.Ping(ctxT(t)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ping = %v, want ErrUnavailable", err)
	}
	if _, err := s.Get(ctxT(t), "main", ups.Production); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Get = %v, want ErrUnavailable", err)
	}
	if _, err := s.Put(ctxT(t), sampleRecord("main", ups.Production)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Put = %v, want ErrUnavailable", err)
	}
	if _, err := s.List(ctxT(t)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("List = %v, want ErrUnavailable", err)
	}
}

func TestACallerDeadlineEndsTheCallAsUnavailable(t *testing.T) {
	_, s := startStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Get(ctx, "main", ups.Production)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with a cancelled context = %v, want ErrUnavailable wrapping context.Canceled", err)
	}
}

func TestATokenWithoutPolicyGetsAClearDenialNotUnavailable(t *testing.T) {
	srv := vaultdevtest.Start(t)
	limited := limitedClient(t, srv, "elsewhere", `path "secret/data/elsewhere/*" { capabilities = ["read"] }`)
	s := newStore(t, limited, Options{})

	for name, call := range map[string]func(context.Context) error{
		"Get": func(ctx context.Context) error { _, err := s.Get(ctx, "main", ups.Production); return err },
		"Put": func(ctx context.Context) error {
			_, err := s.Put(ctx, sampleRecord("main", ups.Production))
			return err
		},
		"List": func(ctx context.Context) error { _, err := s.List(ctx); return err },
		"Ping": func(ctx context.Context) error { return s.Ping(ctx) },
	} {
		t.Run(name, func(t *testing.T) {
			err := call(ctxT(t))
			if !errors.Is(err, ErrPermissionDenied) || errors.Is(err, ErrUnavailable) {
				t.Fatalf("err = %v, want ErrPermissionDenied and not ErrUnavailable", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "vault denied access to secret/") || !strings.Contains(msg, "check the policy") {
				t.Fatalf("message %q does not name the path and the policy", msg)
			}
			if strings.Contains(msg, limited.Token()) {
				t.Fatalf("message contains the vault token")
			}
		})
	}
}

func TestAMistypedMountIsAClearErrorNotNotFound(t *testing.T) {
	srv := vaultdevtest.Start(t)
	s := newStore(t, srv.Client(t), Options{Mount: "nosuchmount"})
	for name, call := range map[string]func(context.Context) error{
		"Get": func(ctx context.Context) error { _, err := s.Get(ctx, "main", ups.Production); return err },
		"Put": func(ctx context.Context) error {
			_, err := s.Put(ctx, sampleRecord("main", ups.Production))
			return err
		},
		"Delete": func(ctx context.Context) error { return s.Delete(ctx, "main", ups.Production) },
		"List":   func(ctx context.Context) error { _, err := s.List(ctx); return err },
		"Ping":   func(ctx context.Context) error { return s.Ping(ctx) },
	} {
		t.Run(name, func(t *testing.T) {
			err := call(ctxT(t))
			if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "KV version 2") {
				t.Fatalf("err = %v, want an error pointing at the KV v2 mount", err)
			}
		})
	}
}

func TestARecordCopiedToAnotherEnvironmentsPathIsRefused(t *testing.T) {
	srv, s := startStore(t)
	data, err := encodeRecord(sampleRecord("main", ups.Test))
	if err != nil {
		t.Fatal(err)
	}
	// An operator copies the test record to the production path by hand.
	if _, err := srv.Client(t).KVv2("secret").Put(ctxT(t), "upsproxy/tokens/main/production", data); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctxT(t), "main", ups.Production); err == nil || !strings.Contains(err.Error(), "copied") {
		t.Fatalf("Get = %v, want the copied record refused", err)
	}
}

// dropFirstWriteAnswer is a reverse proxy in front of the real Vault that
// forwards the first write but answers 502 instead of Vault's answer, the
// way a load balancer timing out does.
func dropFirstWriteAnswer(t *testing.T, vaultAddr string) string {
	t.Helper()
	target, err := url.Parse(vaultAddr)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	var dropped atomic.Bool
	rp.ModifyResponse = func(resp *http.Response) error {
		if (resp.Request.Method == http.MethodPut || resp.Request.Method == http.MethodPost) &&
			strings.Contains(resp.Request.URL.Path, "/data/") && dropped.CompareAndSwap(false, true) {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return errors.New("answer lost")
		}
		return nil
	}
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	ts := httptest.NewServer(rp)
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestAWriteWhoseAnswerWasLostIsNotReportedAsAConflict(t *testing.T) {
	srv := vaultdevtest.Start(t)
	client := srv.Client(t)
	if err := client.SetAddress(dropFirstWriteAnswer(t, srv.Addr)); err != nil {
		t.Fatal(err)
	}
	client.SetMaxRetries(2)
	client.SetMinRetryWait(5 * time.Millisecond)
	client.SetMaxRetryWait(10 * time.Millisecond)
	s := newStore(t, client, Options{})

	rec := sampleRecord("main", ups.Production)
	v, err := s.Put(ctxT(t), rec)
	if err != nil {
		t.Fatalf("Put whose first answer was lost = %v, want success (the write landed)", err)
	}
	if v != 1 {
		t.Fatalf("version = %d, want 1", v)
	}
	// And a real conflict is still one.
	rec.UpdatedBy = "other"
	if _, err := s.Put(ctxT(t), rec); !errors.Is(err, ErrConflict) {
		t.Fatalf("second create = %v, want ErrConflict", err)
	}
}

func TestStoreWorksWithAClientFromNewClient(t *testing.T) {
	srv := vaultdevtest.Start(t)
	client, err := NewClient(ClientOptions{Getenv: envMap(map[string]string{EnvAddress: srv.Addr, EnvToken: srv.Token})})
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, client, Options{})
	if err := s.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, sampleRecord("main", ups.Production))
}

func TestLogsAndErrorsNeverContainTokenValues(t *testing.T) {
	srv := vaultdevtest.Start(t)
	core, logs := observer.New(zap.DebugLevel)
	client := srv.Client(t)
	client.SetMaxRetries(0)
	s := newStore(t, client, Options{Logger: zap.New(core)})

	var errs []error
	rec := sampleRecord("main", ups.Production)
	rec.Version = mustPut(t, s, rec)
	_, err := s.Put(ctxT(t), with(rec, func(r *Record) { r.Version = 0; r.UpdatedBy = "x" }))
	errs = append(errs, err)
	got, err := s.Get(ctxT(t), "main", ups.Production)
	errs = append(errs, err, s.Delete(ctxT(t), "main", ups.Production))
	srv.Seal(t)
	_, err = s.Put(ctxT(t), got)
	errs = append(errs, err)

	if logs.Len() == 0 {
		t.Fatal("no log lines at debug level: the test would prove nothing")
	}
	var all strings.Builder
	for _, e := range logs.All() {
		fmt.Fprintf(&all, "%s %v\n", e.Message, e.ContextMap())
	}
	for _, err := range errs {
		if err != nil {
			fmt.Fprintln(&all, err.Error())
		}
	}
	for _, secret := range []string{secretAccess, secretRefresh, srv.Token} {
		if strings.Contains(all.String(), secret) {
			t.Fatalf("a secret reached the logs or errors:\n%s", all.String())
		}
	}
}

// leastPrivilegePolicy is every capability the store needs under the
// default mount and prefix; config/'s shipped policy must grant at least
// this.
const leastPrivilegePolicy = `
path "secret/data/upsproxy/tokens/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/upsproxy/tokens/*" {
  capabilities = ["read", "list", "delete"]
}
`

func TestEveryOperationWorksWithTheLeastPrivilegePolicy(t *testing.T) {
	srv := vaultdevtest.Start(t)
	s := newStore(t, limitedClient(t, srv, "upsproxy", leastPrivilegePolicy), Options{})

	if err := s.Ping(ctxT(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	rec := sampleRecord("main", ups.Production)
	rec.Version = mustPut(t, s, rec)
	rec.UpdatedBy = "refresh"
	mustPut(t, s, rec)
	if _, err := s.Get(ctxT(t), "main", ups.Production); err != nil {
		t.Fatalf("Get: %v", err)
	}
	if keys, err := s.List(ctxT(t)); err != nil || len(keys) != 1 {
		t.Fatalf("List = %v, %v", keys, err)
	}
	if err := s.Delete(ctxT(t), "main", ups.Production); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}
