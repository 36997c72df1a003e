package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestServiceLog_RotatesAtItsSizeAndKeepsOnlyTheNewestFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "upsproxy.log")
	w, err := openServiceLog(path, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	line := []byte(`{"level":"info","msg":"request","path":"/api/rating/v2409/Rate","pad":"` + strings.Repeat("x", 1000) + "\"}\n")
	const lines = 4500 // about 4.6 MB: four rotations at 1 MB
	for i := 0; i < lines; i++ {
		if _, err := w.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 1<<20 {
		t.Fatalf("the current log holds %d bytes, over its 1 MB", st.Size())
	}
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Fatalf("a new log file has mode %v, want 0600", st.Mode().Perm())
	}
	// Old files beyond the newest two are deleted in the background.
	var backups []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		backups, _ = filepath.Glob(filepath.Join(dir, "upsproxy-*.log"))
		if len(backups) <= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(backups) != 2 {
		t.Fatalf("%d rotated files kept, want 2: %v", len(backups), backups)
	}
	// Every line in the kept files is whole, and they and the current
	// file hold the newest lines.
	total := 0
	for _, f := range append(backups, path) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n := bytes.Count(b, []byte("\n"))
		if len(b) > 0 && b[len(b)-1] != '\n' || bytes.Count(b, line) != n {
			t.Fatalf("%s holds a cut line", f)
		}
		total += n
	}
	if total < 2*1000 || total >= lines {
		t.Fatalf("the kept files hold %d of %d lines", total, lines)
	}
}

func TestServiceLog_AppendsToTheLastRunsFileAndFailsTheStartWhenNoFileCanBeMade(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "upsproxy.log")
	writeFile(t, path, `{"msg":"from the last run"}`+"\n")
	w, err := openServiceLog(path, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(`{"msg":"this run"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	if b, _ := os.ReadFile(path); string(b) != `{"msg":"from the last run"}`+"\n"+`{"msg":"this run"}`+"\n" {
		t.Fatalf("the log holds %q", b)
	}

	// The log's directory cannot be made: a file stands where it should be.
	blocker := filepath.Join(dir, "logs")
	writeFile(t, blocker, "")
	if _, err := openServiceLog(filepath.Join(blocker, "upsproxy.log"), 1, 2); err == nil {
		t.Fatal("opened a log file under a file")
	}
}
