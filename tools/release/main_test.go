package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func stage(t *testing.T, root, name string, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(root, name)
	for n, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPackWritesZipForWindowsTarGzElsewhereAndChecksums(t *testing.T) {
	root := t.TempDir()
	win := stage(t, root, "upsproxy_v1_windows_amd64", map[string]string{"upsproxy.exe": "MZ", "README.md": "r", "config/upsproxy.hcl": "c"})
	lin := stage(t, root, "upsproxy_v1_linux_arm64", map[string]string{"upsproxy": "ELF", "README.md": "r"})
	mtime := time.Unix(1700000000, 0).UTC()
	archives, err := pack([]string{win, lin}, mtime)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeSums(filepath.Join(root, "SHA256SUMS"), archives); err != nil {
		t.Fatal(err)
	}

	zr, err := zip.OpenReader(win + ".zip")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if f.Name == "upsproxy_v1_windows_amd64/upsproxy.exe" && f.Mode().Perm() != 0o755 {
			t.Errorf("exe mode %v", f.Mode())
		}
		if !f.Modified.Equal(mtime) {
			t.Errorf("%s modified %v", f.Name, f.Modified)
		}
	}
	zr.Close()
	if got := strings.Join(names, ","); got != "upsproxy_v1_windows_amd64/README.md,upsproxy_v1_windows_amd64/config/upsproxy.hcl,upsproxy_v1_windows_amd64/upsproxy.exe" {
		t.Errorf("zip entries %s", got)
	}

	raw, err := os.ReadFile(lin + ".tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	found := map[string]int64{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		found[h.Name] = h.Mode
	}
	if found["upsproxy_v1_linux_arm64/upsproxy"] != 0o755 || found["upsproxy_v1_linux_arm64/README.md"] != 0o644 {
		t.Errorf("tar entries %v", found)
	}

	sums, err := os.ReadFile(filepath.Join(root, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if !strings.Contains(string(sums), hex.EncodeToString(sum[:])+"  upsproxy_v1_linux_arm64.tar.gz\n") ||
		!strings.Contains(string(sums), "  upsproxy_v1_windows_amd64.zip\n") {
		t.Errorf("SHA256SUMS:\n%s", sums)
	}

	// Reproducible: packing again gives the same bytes.
	if _, err := pack([]string{lin}, mtime); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(lin + ".tar.gz")
	if !bytes.Equal(raw, again) {
		t.Error("a second pack of the same files differs")
	}
}

func TestPackRefusesAnEmptyDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "upsproxy_v1_linux_amd64")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := pack([]string{dir}, time.Unix(0, 0)); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("got %v", err)
	}
}
