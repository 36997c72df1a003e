package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/upsproxy/upsproxy/internal/config"
	"github.com/upsproxy/upsproxy/internal/testutil/fakeclock"
)

// writeLog records each Write call to the destination.
type writeLog struct {
	mu     sync.Mutex
	writes []string
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func (w *writeLog) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.writes...)
}

func TestBatchWriter_LinesAfterAQuietIntervalAreWrittenAtOnceAndBurstsAreWrittenTogether(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	dst := &writeLog{}
	// The timer never fires within the test: only the clock decides.
	b := newBatchWriter(dst, time.Hour, clock.Now)

	write := func(s string) {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	write("first\n")
	if got := dst.get(); len(got) != 1 || got[0] != "first\n" {
		t.Fatalf("a line after a quiet interval was not written at once: %q", got)
	}
	write("second\n")
	write("third\n")
	if got := dst.get(); len(got) != 1 {
		t.Fatalf("lines right after a write were not batched: %q", got)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := dst.get(); len(got) != 2 || got[1] != "second\nthird\n" {
		t.Fatalf("the batch was not written in one call, in order: %q", got)
	}

	clock.Advance(time.Hour)
	write("after a quiet hour\n")
	if got := dst.get(); len(got) != 3 || got[2] != "after a quiet hour\n" {
		t.Fatalf("a line after a quiet interval waited: %q", got)
	}

	// A batch that reaches maxBatch is written without waiting.
	line := strings.Repeat("x", 1023) + "\n"
	for range maxBatch / len(line) {
		write(line)
	}
	if got := dst.get(); len(got) != 4 || len(got[3]) != maxBatch {
		t.Fatalf("a full batch was not written at once: %d writes", len(got))
	}
}

func TestBatchWriter_ABatchIsWrittenWithinTheIntervalWithoutFurtherLines(t *testing.T) {
	dst := &writeLog{}
	b := newBatchWriter(dst, 20*time.Millisecond, time.Now)
	for i := range 3 {
		_, _ = b.Write([]byte{'a' + byte(i), '\n'})
	}
	deadline := time.Now().Add(10 * time.Second)
	for strings.Join(dst.get(), "") != "a\nb\nc\n" {
		if time.Now().After(deadline) {
			t.Fatalf("batched lines never written: %q", dst.get())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(dst.get()); n != 2 {
		t.Errorf("%d writes for a line and a batch of two, want 2", n)
	}
}

func TestBatchWriter_WarnLinesAndSyncWriteTheBatchAtOnceInOrder(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	dst := &writeLog{}
	out := newBatchWriter(dst, time.Hour, clock.Now)
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{MessageKey: "msg", LevelKey: "level", EncodeLevel: zapcore.LowercaseLevelEncoder})
	log := zap.New(warnFlushCore{zapcore.NewCore(enc, out, zap.DebugLevel), out}).Named("proxy").With(zap.String("k", "v"))

	log.Info("request 1")
	log.Info("request 2")
	log.Debug("request 3")
	if all := strings.Join(dst.get(), ""); strings.Contains(all, "request 2") {
		t.Fatalf("info lines under load were not batched: %q", all)
	}
	log.Warn("UPS is slow")
	all := strings.Join(dst.get(), "")
	i2, i3, iw := strings.Index(all, "request 2"), strings.Index(all, "request 3"), strings.Index(all, "UPS is slow")
	if i2 < 0 || i3 < i2 || iw < i3 {
		t.Fatalf("a warn line did not write the batch before it, in order:\n%s", all)
	}
	if !strings.Contains(all, `"k":"v"`) {
		t.Errorf("a derived logger lost its fields:\n%s", all)
	}

	log.Info("last words")
	if err := log.Sync(); err != nil {
		t.Fatal(err)
	}
	if all := strings.Join(dst.get(), ""); !strings.Contains(all, "last words") {
		t.Fatalf("Sync did not write the batch:\n%s", all)
	}
}

func TestNewLogger_OnlyAFileOrPipeGetsBatchingAndLevelsStillApply(t *testing.T) {
	cases := []struct {
		name    string
		level   string
		logs    func(*zap.Logger)
		want    []string
		notWant []string
	}{
		{
			name:  "info level writes info and warn, not debug",
			level: "info",
			logs: func(l *zap.Logger) {
				l.Debug("dbg")
				l.Info("proxy listening", zap.String("addr", "127.0.0.1:1"))
				l.Warn("careful")
			},
			want:    []string{`"msg":"proxy listening"`, `"addr":"127.0.0.1:1"`, `"msg":"careful"`},
			notWant: []string{"dbg"},
		},
		{
			name:    "warn level hides the access lines",
			level:   "warn",
			logs:    func(l *zap.Logger) { l.Info("request"); l.Error("boom") },
			want:    []string{`"msg":"boom"`},
			notWant: []string{`"msg":"request"`},
		},
	}
	for _, c := range cases {
		t.Run(c.name+", buffer: every line at once", func(t *testing.T) {
			var buf bytes.Buffer
			log, _, err := newLogger(config.Log{Level: c.level, Format: "json"}, &buf)
			if err != nil {
				t.Fatal(err)
			}
			c.logs(log)
			// No Sync: a writer that is not a file gets each line as logged.
			checkLines(t, buf.String(), c.want, c.notWant)
		})
		t.Run(c.name+", file: everything by Sync", func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "log"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			log, _, err := newLogger(config.Log{Level: c.level, Format: "json"}, f)
			if err != nil {
				t.Fatal(err)
			}
			c.logs(log)
			_ = log.Sync()
			got, _ := os.ReadFile(f.Name())
			checkLines(t, string(got), c.want, c.notWant)
		})
	}
}

func TestNewLogger_AStartupLineInABurstReachesAPipeWithinTheBatchInterval(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	log, _, err := newLogger(config.Log{Level: "info", Format: "json"}, w)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		var all []byte
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			all = append(all, buf[:n]...)
			if strings.Contains(string(all), `"proxy listening"`) || err != nil {
				got <- string(all)
				return
			}
		}
	}()
	start := time.Now()
	for i := range 20 {
		log.Info("preloaded tokens", zap.Int("i", i))
	}
	log.Info("proxy listening", zap.String("addr", "127.0.0.1:8080"))
	// Nothing else is logged and nobody calls Sync: the timer must write it.
	select {
	case <-got:
		if d := time.Since(start); d > time.Second {
			t.Errorf("the listening line took %s", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the listening line never reached the pipe")
	}
}

func checkLines(t *testing.T, out string, want, notWant []string) {
	t.Helper()
	for _, s := range want {
		if !strings.Contains(out, s) {
			t.Errorf("log lacks %s:\n%s", s, out)
		}
	}
	for _, s := range notWant {
		if strings.Contains(out, s) {
			t.Errorf("log has %s:\n%s", s, out)
		}
	}
}
