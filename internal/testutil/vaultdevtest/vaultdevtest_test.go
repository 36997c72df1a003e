package vaultdevtest

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
