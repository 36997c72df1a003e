package vaultdevtest

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

const testPath = "secret/data/upsproxy/test"

func TestKVv2CASSealUnseal(t *testing.T) {
	s := Start(t)
	if !strings.HasPrefix(s.Addr, "http://127.0.0.1:") {
		t.Errorf("Addr = %q, want http://127.0.0.1:PORT", s.Addr)
	}
	if s.Token == "" || s.UnsealKey == "" {
		t.Fatalf("empty token %q or unseal key %q", s.Token, s.UnsealKey)
	}
	c := s.Client(t)

	// First write with cas=0: creates version 1.
	sec, err := c.Logical().Write(testPath, map[string]interface{}{
		"options": map[string]interface{}{"cas": 0},
		"data":    map[string]interface{}{"refresh_token": "rt-1"},
	})
	if err != nil {
		t.Fatalf("first cas=0 write: %v", err)
	}
	if v := fmt.Sprint(sec.Data["version"]); v != "1" {
		t.Errorf("first write version = %v, want 1", sec.Data["version"])
	}

	readBack := func(want string) {
		t.Helper()
		sec, err := c.Logical().Read(testPath)
		if err != nil {
			t.Fatalf("read %s: %v", testPath, err)
		}
		if sec == nil {
			t.Fatalf("read %s: no secret", testPath)
		}
		data, _ := sec.Data["data"].(map[string]interface{})
		if got := data["refresh_token"]; got != want {
			t.Fatalf("read %s: refresh_token = %v, want %q", testPath, got, want)
		}
	}
	readBack("rt-1")

	// Second write with cas=0 must fail: the secret already exists.
	_, err = c.Logical().Write(testPath, map[string]interface{}{
		"options": map[string]interface{}{"cas": 0},
		"data":    map[string]interface{}{"refresh_token": "rt-2"},
	})
	var re *vaultapi.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("second cas=0 write: err = %v, want a *api.ResponseError", err)
	}
	if re.StatusCode != http.StatusBadRequest ||
		!strings.Contains(strings.Join(re.Errors, "; "), "check-and-set parameter did not match the current version") {
		t.Fatalf("second cas=0 write: status %d errors %q, want 400 check-and-set mismatch", re.StatusCode, re.Errors)
	}
	readBack("rt-1")

	// Sealed: reads fail with 503 "Vault is sealed".
	s.Seal(t)
	_, err = c.Logical().Read(testPath)
	if !errors.As(err, &re) || re.StatusCode != http.StatusServiceUnavailable ||
		!strings.Contains(strings.Join(re.Errors, "; "), "sealed") {
		t.Fatalf("read while sealed: err = %v, want 503 Vault is sealed", err)
	}
	h, err := c.Sys().Health()
	if err != nil {
		t.Fatalf("health while sealed: %v", err)
	}
	if !h.Sealed {
		t.Fatalf("health while sealed: sealed = false")
	}

	// Unsealed again with the printed key: the data survived.
	s.Unseal(t)
	readBack("rt-1")
}

func TestAppRoleEnabled(t *testing.T) {
	s := Start(t)
	auths, err := s.Client(t).Sys().ListAuth()
	if err != nil {
		t.Fatalf("sys/auth: %v", err)
	}
	a, ok := auths["approle/"]
	if !ok {
		t.Fatalf("sys/auth has no approle/: %v", keys(auths))
	}
	if a.Type != "approle" {
		t.Fatalf("approle/ type = %q, want approle", a.Type)
	}

	mounts, err := s.Client(t).Sys().ListMounts()
	if err != nil {
		t.Fatalf("sys/mounts: %v", err)
	}
	m, ok := mounts["secret/"]
	if !ok || m.Type != "kv" || m.Options["version"] != "2" {
		t.Fatalf("secret/ mount = %+v, want kv version 2", m)
	}
}

func TestStopIsIdempotent(t *testing.T) {
	s := Start(t)
	s.Stop()
	s.Stop()
	if !s.exitedCleanly() {
		t.Fatalf("vaultdev did not exit 0 on SIGTERM: %s\n%s", s.exitStatus(), s.stderr.String())
	}
	if _, err := s.Client(t).Sys().Health(); err == nil {
		t.Fatal("vault still answers after Stop")
	}
}

func TestBinaryMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-vaultdev")
	t.Setenv(EnvBinary, missing)
	_, err := Binary()
	if err == nil {
		t.Fatal("Binary() succeeded for a missing file")
	}
	want := "vaultdev binary not found at " + missing + ": run `make vaultdev`"
	if err.Error() != want {
		t.Fatalf("Binary() error = %q, want %q", err, want)
	}
}

func TestBinaryFromModuleRoot(t *testing.T) {
	if os.Getenv(EnvBinary) != "" {
		t.Setenv(EnvBinary, "")
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "tools", "vaultdev", "go.mod")); err != nil {
		t.Fatalf("module root %s has no tools/vaultdev/go.mod: %v", root, err)
	}
	p, err := Binary()
	if err != nil {
		// Same failure mode as Start: the binary must be built.
		t.Fatal(err)
	}
	if p != filepath.Join(root, "bin", "vaultdev") {
		t.Fatalf("Binary() = %s, want %s", p, filepath.Join(root, "bin", "vaultdev"))
	}
}

// The leak guard: if the test process dies without its cleanups, the stdin
// pipe closes and vaultdev (--exit-on-stdin-close) shuts down by itself.
func TestExitsWhenStdinCloses(t *testing.T) {
	s := Start(t)
	_ = s.stdin.Close()
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		t.Fatal("vaultdev still running 15s after its stdin closed")
	}
	if !s.exitedCleanly() {
		t.Fatalf("vaultdev did not exit 0 on stdin EOF: %s\n%s", s.exitStatus(), s.stderr.String())
	}
}

// fakeTB records a Fatal instead of failing the real test.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	fatal    string
	cleanups []func()
}

func (f *fakeTB) Helper()             {}
func (f *fakeTB) Logf(string, ...any) {}
func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}
func (f *fakeTB) Fatal(args ...any) { f.fail(fmt.Sprint(args...)) }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fail(fmt.Sprintf(format, args...))
}
func (f *fakeTB) fail(msg string) {
	f.mu.Lock()
	f.fatal = msg
	f.mu.Unlock()
	runtime.Goexit()
}

// startFake runs Start against a fake TB in its own goroutine and returns the
// Fatal message ("" if Start returned).
func startFake(t *testing.T) string {
	t.Helper()
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := Start(f)
		s.Stop()
	}()
	<-done
	for _, fn := range f.cleanups {
		fn()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fatal
}

func TestStartFailureShowsStderr(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "vaultdev")
	script := "#!/bin/sh\necho 'vaultdev: cannot listen on 127.0.0.1:0: boom' >&2\nexit 1\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvBinary, fake)
	msg := startFake(t)
	for _, want := range []string{"failed to start", "exit status 1", "cannot listen on 127.0.0.1:0: boom"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Start failure message lacks %q:\n%s", want, msg)
		}
	}
}

func TestStartMissingBinaryFails(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "vaultdev")
	t.Setenv(EnvBinary, missing)
	msg := startFake(t)
	if want := "vaultdev binary not found at " + missing + ": run `make vaultdev`"; msg != want {
		t.Fatalf("Start fatal = %q, want %q", msg, want)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
