package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/upsproxy/upsproxy/internal/config"
)

// Log batching. At level info the proxy writes one access line per request;
// written one by one, each costs a write syscall (about 4% of a request's
// CPU on loopback, more into a pipe read by journald or a container
// runtime). When the log goes to a file or pipe (*os.File: serve's stderr),
// lines that come within batchInterval of the last write are collected and
// written together at most batchInterval later. A line after a quiet
// batchInterval is written at once, so at low rates (a login, the demo's
// one request, an idle proxy) every line appears when it is logged, as
// before; Warn and above are written at once together with everything
// before them; Sync (serve's exit) writes what is pending. What a crash
// (SIGKILL, OOM) can lose is the last batchInterval of lines under load.
// Any other writer (tests' buffers) gets every line at once.
const (
	batchInterval = 50 * time.Millisecond
	// maxBatch bounds what waits: a batch this large is written at once.
	maxBatch = 64 << 10
)

// newLogger builds the zap logger the config asks for, writing to w.
func newLogger(l config.Log, w io.Writer) (*zap.Logger, zap.AtomicLevel, error) {
	level, err := zap.ParseAtomicLevel(l.Level)
	if err != nil {
		return nil, level, fmt.Errorf("log level: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey = "ts"
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	encCfg.EncodeDuration = zapcore.StringDurationEncoder
	var enc zapcore.Encoder
	if l.Format == "console" {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	if f, ok := w.(*os.File); ok {
		out := newBatchWriter(f, batchInterval, time.Now)
		return zap.New(warnFlushCore{zapcore.NewCore(enc, out, level), out}), level, nil
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)), level, nil
}

// batchWriter collects log lines written in quick succession and writes
// them in one call (see batchInterval).
type batchWriter struct {
	w        io.Writer
	interval time.Duration
	now      func() time.Time

	mu    sync.Mutex
	buf   []byte
	last  time.Time   // of the last write to w
	timer *time.Timer // writes buf interval after its first line; nil until needed
	armed bool
}

func newBatchWriter(w io.Writer, interval time.Duration, now func() time.Time) *batchWriter {
	return &batchWriter{w: w, interval: interval, now: now}
}

// Write writes p at once after a quiet interval, or adds it to the batch.
// zap reuses p once Write returns, so a batched line is copied.
func (b *batchWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if len(b.buf) == 0 && now.Sub(b.last) >= b.interval {
		b.last = now
		return b.w.Write(p)
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) >= maxBatch {
		return len(p), b.flushLocked()
	}
	if !b.armed {
		b.armed = true
		if b.timer == nil {
			b.timer = time.AfterFunc(b.interval, b.onTimer)
		} else {
			b.timer.Reset(b.interval)
		}
	}
	return len(p), nil
}

func (b *batchWriter) onTimer() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.armed = false
	// A write error here has no logger to return to; zap reports the
	// next one (the destination is the same).
	_ = b.flushLocked()
}

// Flush writes the pending batch.
func (b *batchWriter) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

func (b *batchWriter) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	b.last = b.now()
	_, err := b.w.Write(b.buf)
	if cap(b.buf) > 2*maxBatch {
		b.buf = nil // a burst's buffer is not kept
	} else {
		b.buf = b.buf[:0]
	}
	return err
}

// Sync writes the pending batch and syncs the destination (zap calls it
// after Fatal and Panic lines; serve on exit).
func (b *batchWriter) Sync() error {
	if err := b.Flush(); err != nil {
		return err
	}
	if s, ok := b.w.(interface{ Sync() error }); ok {
		return s.Sync()
	}
	return nil
}

// warnFlushCore writes Warn and higher lines at once, with the batch
// before them: what goes wrong is never late, and stays in order.
type warnFlushCore struct {
	zapcore.Core
	out *batchWriter
}

// With keeps the flushing for derived loggers (log.Named, log.With).
func (c warnFlushCore) With(fields []zapcore.Field) zapcore.Core {
	return warnFlushCore{c.Core.With(fields), c.out}
}

// Check adds c itself (not the wrapped core) so that Write below runs.
func (c warnFlushCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(ent.Level) {
		return ce.AddCore(ent, c)
	}
	return ce
}

func (c warnFlushCore) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	err := c.Core.Write(ent, fields)
	if ent.Level >= zapcore.WarnLevel {
		if ferr := c.out.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}
