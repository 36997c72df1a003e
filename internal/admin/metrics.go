package admin

import (
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// Label values used when the caller's value is not in the bounded set a
// label may take. Every label value comes from a small fixed set so that a
// misbehaving client cannot grow the number of series.
const (
	// LabelNone is the carrier (and environment) of a request no configured
	// carrier could be resolved for.
	LabelNone = "none"
	// LabelOther stands for a status, error code or refresh result outside
	// the known set.
	LabelOther = "other"
)

// The refresh results the token broker reports (tokens.Metrics.Refreshed).
var refreshResults = []string{"ok", "rejected", "failed", "adopted"}

// requestBuckets suit a proxy that adds a millisecond or so in front of UPS,
// whose own answers take from tens of milliseconds (Track) to seconds (Ship,
// Rate/Shop); 30s is beyond any sane client timeout.
var requestBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// maxCachedRequestSeries bounds the hot-path cache. Label values are already
// normalised to bounded sets, so this is only a backstop: past it,
// ObserveRequest still counts correctly, just without the cache.
const maxCachedRequestSeries = 4096

// Metrics holds every upsproxy metric, registered on its own registry (no
// globals, no default registry), so tests and a reloaded server never clash
// over registrations. Its methods are safe for concurrent use, and on a nil
// *Metrics they do nothing, so metrics can be left out.
//
// *Metrics implements tokens.Metrics.
type Metrics struct {
	reg *prometheus.Registry

	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	errors          *prometheus.CounterVec
	refreshes       *prometheus.CounterVec
	refused         *prometheus.CounterVec
	accessExpiry    *prometheus.GaugeVec
	refreshExpiry   *prometheus.GaugeVec
	notifications   *prometheus.CounterVec

	// children caches the curried series of ObserveRequest per label tuple
	// (requestKey → *requestSeries): a sync.Map lookup with a struct key
	// does not allocate, where WithLabelValues builds a label slice and
	// hashes it on every call. cached counts its entries.
	children sync.Map
	cached   atomic.Int64
}

// requestKey is ObserveRequest's arguments as given, so a cache hit needs no
// normalisation work at all.
type requestKey struct {
	carrier   string
	env       ups.Environment
	status    int
	errorCode string
}

type requestSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
	errors   prometheus.Counter // nil when the request had no error code
}

// NewMetrics creates the metrics and their registry, with the Go runtime and
// process collectors and upsproxy_build_info{version,commit,goversion} = 1.
// Create it once per process: counters must survive a config reload.
func NewMetrics(version, commit string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "upsproxy_requests_total",
		Help: "Requests handled by the proxy, by carrier, environment and HTTP status code returned to the client.",
	}, []string{"carrier", "environment", "code"})
	m.requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "upsproxy_request_duration_seconds",
		Help:    "Time from receiving a proxied request to answering it, UPS's own time included.",
		Buckets: requestBuckets,
	}, []string{"carrier", "environment"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "upsproxy_errors_total",
		Help: "Requests the proxy answered itself with an UPSPROXY_* error, by error code.",
	}, []string{"carrier", "environment", "error_code"})
	m.refreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "upsproxy_token_refreshes_total",
		Help: "Token refresh attempts by result: ok, rejected (log in again), failed (transient) or adopted (another replica refreshed).",
	}, []string{"carrier", "environment", "result"})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "upsproxy_token_refused_total",
		Help: "UPS answered 401 to an access token the proxy had just renewed, so it passed the 401 on instead of renewing again: the UPS app most likely lacks the API product of the call.",
	}, []string{"carrier", "environment"})
	m.accessExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "upsproxy_access_token_expiry_timestamp_seconds",
		Help: "Unix time at which the current access token expires.",
	}, []string{"carrier", "environment"})
	m.refreshExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "upsproxy_refresh_token_expiry_timestamp_seconds",
		Help: "Unix time at which the current refresh token expires; absent for client-credentials carriers. Alert well before it: only a login renews it.",
	}, []string{"carrier", "environment"})
	m.notifications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "upsproxy_notifications_total",
		Help: "Reminder messages by channel, event and result: sent, failed (retried on the next pass) or dropped (queue full, retried on the next pass).",
	}, []string{"channel", "event", "result"})
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "upsproxy_build_info",
		Help: "Always 1; the labels tell which build is running.",
		ConstLabels: prometheus.Labels{
			"version":   orUnknown(version),
			"commit":    orUnknown(commit),
			"goversion": runtime.Version(),
		},
	})
	buildInfo.Set(1)

	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.requestDuration, m.errors, m.refreshes, m.refused, m.accessExpiry, m.refreshExpiry, m.notifications, buildInfo,
	)
	return m
}

// Registry is the registry holding every upsproxy metric, for /metrics and
// for tests.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// InitCarrier creates the token counters of a configured carrier and
// environment at zero (every refresh result, and refused tokens), so that
// the first rejected refresh shows as an increase (increase() and rate()
// cannot see a series' first sample). serve calls it for every configured
// carrier at start-up and on reload.
func (m *Metrics) InitCarrier(carrier string, env ups.Environment) {
	if m == nil {
		return
	}
	c, e := carrierLabel(carrier), envLabel(env)
	for _, r := range refreshResults {
		m.refreshes.WithLabelValues(c, e, r)
	}
	m.refused.WithLabelValues(c, e)
}

// ObserveRequest records one proxied request: status is the HTTP status the
// client got, errorCode the UPSPROXY_* code when the proxy answered itself
// (or ""), d the time taken. carrier is "" when no configured carrier was
// resolved. It is called for every request and does not allocate once a
// label combination has been seen.
func (m *Metrics) ObserveRequest(carrier string, env ups.Environment, status int, errorCode string, d time.Duration) {
	if m == nil {
		return
	}
	k := requestKey{carrier: carrier, env: env, status: status, errorCode: errorCode}
	var s *requestSeries
	if v, ok := m.children.Load(k); ok {
		s = v.(*requestSeries)
	} else {
		s = m.series(k)
	}
	s.requests.Inc()
	s.duration.Observe(d.Seconds())
	if s.errors != nil {
		s.errors.Inc()
	}
}

// series resolves (and usually caches) the series of a label tuple.
func (m *Metrics) series(k requestKey) *requestSeries {
	c, e := carrierLabel(k.carrier), envLabel(k.env)
	s := &requestSeries{
		requests: m.requests.WithLabelValues(c, e, statusLabel(k.status)),
		duration: m.requestDuration.WithLabelValues(c, e),
	}
	if k.errorCode != "" {
		s.errors = m.errors.WithLabelValues(c, e, errorCodeLabel(k.errorCode))
	}

	// Concurrent first requests may overshoot the bound by a few entries;
	// it only has to stop unbounded growth.
	if m.cached.Load() >= maxCachedRequestSeries {
		return s
	}
	v, loaded := m.children.LoadOrStore(k, s)
	if !loaded {
		m.cached.Add(1)
	}
	return v.(*requestSeries)
}

// Refreshed counts a token refresh attempt (tokens.Metrics). result is one
// of "ok", "rejected", "failed", "adopted"; anything else counts as "other".
func (m *Metrics) Refreshed(carrier string, env ups.Environment, result string) {
	if m == nil {
		return
	}
	m.refreshes.WithLabelValues(carrierLabel(carrier), envLabel(env), resultLabel(result)).Inc()
}

// Refused counts a 401 from UPS to a token the broker will not renew
// again (tokens.Metrics).
func (m *Metrics) Refused(carrier string, env ups.Environment) {
	if m == nil {
		return
	}
	m.refused.WithLabelValues(carrierLabel(carrier), envLabel(env)).Inc()
}

// Expiries sets the expiry gauges of the current token pair
// (tokens.Metrics). A zero time means unknown (a client-credentials carrier
// has no refresh token): the series is removed rather than left showing the
// previous pair's expiry.
func (m *Metrics) Expiries(carrier string, env ups.Environment, access, refresh time.Time) {
	if m == nil {
		return
	}
	c, e := carrierLabel(carrier), envLabel(env)
	setOrDelete(m.accessExpiry, c, e, access)
	setOrDelete(m.refreshExpiry, c, e, refresh)
}

func setOrDelete(g *prometheus.GaugeVec, carrier, env string, t time.Time) {
	if t.IsZero() {
		g.DeleteLabelValues(carrier, env)
		return
	}
	g.WithLabelValues(carrier, env).Set(float64(t.UnixMilli()) / 1000)
}

// The notification events and results (notify.Metrics.Notified).
var (
	notifyEvents  = []string{"expiring", "expired", "rejected", "failing", "renewed", "test"}
	notifyResults = []string{"sent", "failed", "dropped"}
)

// Notified counts one reminder delivery (notify.Metrics). channel is a
// configured channel name (checked like a carrier name); event and result
// outside the known sets count as "other".
func (m *Metrics) Notified(channel, event, result string) {
	if m == nil {
		return
	}
	m.notifications.WithLabelValues(carrierLabel(channel), oneOf(event, notifyEvents), oneOf(result, notifyResults)).Inc()
}

func oneOf(v string, known []string) string {
	for _, k := range known {
		if v == k {
			return v
		}
	}
	return LabelOther
}

// carrierLabel: the proxy reports a carrier it could not resolve as "".
// Configured names are 1-128 of [A-Za-z0-9_.-] (the config and the Vault
// store enforce it); anything else is treated as unknown too, because the
// Prometheus client panics on a label value that is not valid UTF-8.
func carrierLabel(c string) string {
	if c == "" || len(c) > 128 {
		return LabelNone
	}
	for i := 0; i < len(c); i++ {
		switch b := c[i]; {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b == '_', b == '.', b == '-':
		default:
			return LabelNone
		}
	}
	return c
}

func envLabel(e ups.Environment) string {
	if !e.Valid() {
		return LabelNone
	}
	return string(e)
}

func statusLabel(status int) string {
	if status < 100 || status > 599 {
		return LabelOther
	}
	return strconv.Itoa(status)
}

// errorCodeLabel accepts codes shaped like UPSPROXY_SOMETHING, so a new code
// added to the proxy shows up without a change here, while anything else
// (a UPS code, free text) cannot create series.
func errorCodeLabel(code string) string {
	const prefix = "UPSPROXY_"
	if len(code) <= len(prefix) || len(code) > 64 || code[:len(prefix)] != prefix {
		return LabelOther
	}
	for i := len(prefix); i < len(code); i++ {
		if c := code[i]; (c < 'A' || c > 'Z') && c != '_' {
			return LabelOther
		}
	}
	return code
}

func resultLabel(r string) string {
	for _, known := range refreshResults {
		if r == known {
			return r
		}
	}
	return LabelOther
}

// orUnknown also repairs invalid UTF-8, on which the Prometheus client
// would panic: version and commit come from build flags, not from us.
func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return strings.ToValidUTF8(s, "?")
}
