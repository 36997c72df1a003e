package main

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/upsproxy/upsproxy/internal/config"
	"github.com/upsproxy/upsproxy/internal/fileperm"
)

const secretFilesConfig = `
vault {
  address = "http://127.0.0.1:8200"
  auth "approle" {
    role_id        = "r"
    secret_id_file = "secret-id"
  }
}
carrier "main" {
  environment   = "test"
  client_id     = "id"
  client_secret = file("ups-secret")
  redirect_uri  = "https://127.0.0.1/upscallback"
}
`

func writeSecretFilesConfig(t *testing.T, mode os.FileMode) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range []string{"secret-id", "ups-secret"} {
		p := filepath.Join(dir, n)
		writeFile(t, p, "s3cret-value-for-"+n)
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "upsproxy.hcl")
	writeFile(t, cfg, secretFilesConfig)
	return cfg
}

func TestSecretFiles_ReadableByOthersAreWarnedAboutNotRefused(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes do not apply on Windows; the ACL rule is tested in internal/fileperm")
	}
	cfg := writeSecretFilesConfig(t, 0o644)
	dir := filepath.Dir(cfg)
	out, errb := newBuf(), newBuf()
	if code := run(context.Background(), []string{"config", "validate", "--config", cfg}, strings.NewReader(""), out, errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, n := range []string{"secret-id", "ups-secret"} {
		want := "upsproxy: warning: secret file " + filepath.Join(dir, n) + " is readable by group or others (mode 0644): run `chmod 600 " + filepath.Join(dir, n) + "`"
		if !strings.Contains(errb.String(), want) {
			t.Errorf("no warning for %s:\n%s", n, errb.String())
		}
	}
	if strings.Contains(errb.String(), "s3cret-value") {
		t.Fatal("a warning shows the secret")
	}
}

func TestSecretFiles_PrivateOnesAreQuiet(t *testing.T) {
	cfg := writeSecretFilesConfig(t, 0o600)
	errb := newBuf()
	if code := run(context.Background(), []string{"config", "validate", "--config", cfg}, strings.NewReader(""), newBuf(), errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if strings.Contains(errb.String(), "warning: secret file") {
		t.Fatalf("unexpected warning:\n%s", errb.String())
	}
}

// TestSecretFiles_WindowsDecisionReachesTheWarning feeds the Windows ACL
// decision (an inherited read for Users) through the same warning path.
func TestSecretFiles_WindowsDecisionReachesTheWarning(t *testing.T) {
	cfgPath := writeSecretFilesConfig(t, 0o600)
	cfg, _, diags := config.Load(cfgPath)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	errb := newBuf()
	c := &cli{errOut: errb}
	c.warnExposedSecretFiles(cfg, func(p string) error {
		return &fileperm.ExposedError{Path: p, Who: `BUILTIN\Users`, Fix: "run `icacls ...`"}
	})
	if n := strings.Count(errb.String(), `is readable by BUILTIN\Users: run `+"`icacls"); n != 2 {
		t.Fatalf("%d warnings, want one per secret file:\n%s", n, errb.String())
	}
}
