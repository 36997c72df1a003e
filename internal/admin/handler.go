// Package admin serves the admin listener: /healthz, /readyz, /status and
// /metrics, and holds upsproxy's Prometheus metrics.
package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// DefaultReadyTimeout bounds one readiness check. A probe that hangs is
// worse than one that fails: orchestrators count a timeout as a failure
// anyway, and a hung handler holds a connection per probe.
const DefaultReadyTimeout = 2 * time.Second

// maxReasonLen keeps /readyz's answer to one short line even when a Vault
// error quotes a long body.
const maxReasonLen = 300

// Options configure the admin handler. Every field is optional.
type Options struct {
	Logger *zap.Logger
	// Metrics is served on /metrics; nil leaves /metrics out (404).
	Metrics *Metrics
	// Ready reports whether the proxy can serve: nil error means ready
	// (e.g. config loaded and the token store answers Ping). Its error text
	// is shown to whoever asks /readyz, so it must hold no secrets. A nil
	// Ready means always ready.
	Ready func(ctx context.Context) error
	// ReadyTimeout bounds Ready's context; 0 means DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Status returns the per carrier/environment state shown on /status,
	// e.g. func() any { return broker.Status() }. It is marshalled as JSON
	// and must hold no token values.
	Status func() any
	// Version and Commit of the running build, shown on /status.
	Version, Commit string
	// Now is the clock for /status's "time"; nil means time.Now.
	Now func() time.Time
}

type handler struct {
	opts Options
	log  *zap.Logger
	// readyState remembers the last readiness answer so that only changes
	// are logged, not every probe (kubelet asks every few seconds).
	readyState atomic.Int32
}

const (
	stateUnknown int32 = iota
	stateReady
	stateNotReady
)

// NewHandler returns the admin listener's handler: GET (or HEAD) /healthz,
// /readyz, /status and /metrics; other paths answer 404 and other methods
// 405.
func NewHandler(opts Options) http.Handler {
	h := &handler{opts: opts, log: opts.Logger}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	h.log = h.log.Named("admin")
	if h.opts.ReadyTimeout <= 0 {
		h.opts.ReadyTimeout = DefaultReadyTimeout
	}
	if h.opts.Now == nil {
		h.opts.Now = time.Now
	}

	mux := http.NewServeMux()
	// A "GET" pattern matches HEAD too, and the mux answers other methods
	// with 405 and an Allow header.
	mux.HandleFunc("GET /healthz", h.healthz)
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.HandleFunc("GET /status", h.status)
	if opts.Metrics != nil {
		reg := opts.Metrics.Registry()
		metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
			ErrorLog: zap.NewStdLog(h.log.Named("metrics")),
			// A broken collector should cost its own series, not the scrape.
			ErrorHandling: promhttp.ContinueOnError,
			Registry:      reg,
			Timeout:       10 * time.Second,
		})
		// Both promhttp helpers reuse already registered collectors, so a
		// second NewHandler on the same Metrics (a reload, a test) is fine.
		mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(reg, metrics))
	}
	return noStore(mux)
}

// noStore keeps caches and browsers from serving a stale readiness or
// status answer, and browsers from sniffing the plain-text bodies.
func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

func (h *handler) healthz(w http.ResponseWriter, _ *http.Request) {
	writeText(w, http.StatusOK, "ok")
}

func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	err := h.checkReady(r.Context())
	if r.Context().Err() != nil {
		return // the prober hung up: say nothing, change nothing
	}
	if err == nil {
		if h.readyState.Swap(stateReady) != stateReady {
			h.log.Info("ready")
		}
		writeText(w, http.StatusOK, "ready")
		return
	}
	reason := oneLine("not ready: " + err.Error())
	if h.readyState.Swap(stateNotReady) != stateNotReady {
		h.log.Warn("not ready", zap.String("reason", reason))
	}
	writeText(w, http.StatusServiceUnavailable, reason)
}

// checkReady runs Ready with a deadline. It runs Ready in its own goroutine
// so the probe answers on time even if Ready ignores its context.
func (h *handler) checkReady(parent context.Context) error {
	if h.opts.Ready == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(parent, h.opts.ReadyTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.opts.Ready(ctx) }()
	select {
	case err := <-done:
		if err != nil && errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
			return fmt.Errorf("readiness check timed out after %s: %w", h.opts.ReadyTimeout, err)
		}
		return err
	case <-ctx.Done():
		if err := parent.Err(); err != nil {
			return err // the prober went away; nobody reads the answer
		}
		return fmt.Errorf("readiness check timed out after %s", h.opts.ReadyTimeout)
	}
}

// statusDoc is /status's body.
type statusDoc struct {
	Version  string    `json:"version"`
	Commit   string    `json:"commit"`
	Time     time.Time `json:"time"`
	Carriers any       `json:"carriers"`
}

func (h *handler) status(w http.ResponseWriter, _ *http.Request) {
	doc := statusDoc{
		Version:  h.opts.Version,
		Commit:   h.opts.Commit,
		Time:     h.opts.Now().UTC(),
		Carriers: []struct{}{},
	}
	if h.opts.Status != nil {
		if c := h.opts.Status(); !isNil(c) {
			doc.Carriers = c
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		h.log.Error("cannot encode /status", zap.Error(err))
		writeText(w, http.StatusInternalServerError, "cannot encode status")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// isNil reports whether v is nil or a nil slice, map or pointer, which
// would marshal as null where clients expect a list.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Slice, reflect.Map, reflect.Pointer:
		return rv.IsNil()
	}
	return false
}

func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

// oneLine collapses whitespace (Vault errors may span lines) and cuts the
// text to maxReasonLen bytes without splitting a UTF-8 sequence.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxReasonLen {
		s = strings.ToValidUTF8(s[:maxReasonLen], "") + "..."
	}
	return s
}
