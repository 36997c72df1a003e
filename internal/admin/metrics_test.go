package admin

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/upsproxy/upsproxy/internal/tokens"
	"github.com/upsproxy/upsproxy/internal/ups"
)

// The broker reports through the tokens.Metrics interface.
var _ tokens.Metrics = (*Metrics)(nil)

// series finds one series of a family in a gather; ok is false when absent.
func series(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) (*dto.Metric, bool) {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			if len(got) != len(labels) {
				continue
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			return m, true
		}
	}
	return nil, false
}

// value is a counter or gauge's value, or a histogram's sample count.
func value(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	m, ok := series(t, g, name, labels)
	if !ok {
		t.Fatalf("no series %s%v; have:\n%s", name, labels, dump(t, g, name))
	}
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	t.Fatalf("series %s%v has an unexpected type", name, labels)
	return 0
}

// labelSets lists every series of a family as "k=v,k=v", sorted.
func labelSets(t *testing.T, g prometheus.Gatherer, name string) []string {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var out []string
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var kv []string
			for _, lp := range m.GetLabel() {
				kv = append(kv, lp.GetName()+"="+lp.GetValue())
			}
			out = append(out, strings.Join(kv, ","))
		}
	}
	sort.Strings(out)
	return out
}

func dump(t *testing.T, g prometheus.Gatherer, name string) string {
	t.Helper()
	return strings.Join(labelSets(t, g, name), "\n")
}

type labels = map[string]string

func TestMetricsReflectAScriptedSequenceOfRequestsRefreshesAndExpiries(t *testing.T) {
	m := NewMetrics("1.2.3", "abc123")
	accessExp := time.Date(2026, 11, 25, 13, 0, 0, 500e6, time.UTC)
	refreshExp := time.Date(2027, 1, 24, 9, 0, 0, 0, time.UTC)

	m.ObserveRequest("main", ups.Production, 200, "", 120*time.Millisecond)
	m.ObserveRequest("main", ups.Production, 200, "", 80*time.Millisecond)
	m.ObserveRequest("main", ups.Production, 401, "UPSPROXY_REFRESH_TOKEN_EXPIRED", time.Millisecond)
	m.ObserveRequest("main", ups.Test, 502, "UPSPROXY_UPSTREAM_UNAVAILABLE", 30*time.Second)
	m.ObserveRequest("main", ups.Test, 404, "", 40*time.Millisecond) // UPS's own 404: not a proxy error
	m.ObserveRequest("", "", 400, "UPSPROXY_NO_CARRIER", 50*time.Microsecond)
	m.Refreshed("main", ups.Production, "ok")
	m.Refreshed("main", ups.Production, "ok")
	m.Refreshed("main", ups.Production, "rejected")
	m.Refreshed("main", ups.Test, "adopted")
	m.Expiries("main", ups.Production, accessExp, refreshExp)
	m.Expiries("cc", ups.Test, accessExp, time.Time{})

	tests := []struct {
		name   string
		metric string
		labels labels
		want   float64
	}{
		{"successful requests are counted per carrier, environment and status code",
			"upsproxy_requests_total", labels{"carrier": "main", "environment": "production", "code": "200"}, 2},
		{"a request refused by the proxy counts under the status the client got",
			"upsproxy_requests_total", labels{"carrier": "main", "environment": "production", "code": "401"}, 1},
		{"requests of the other environment of the same carrier are counted apart",
			"upsproxy_requests_total", labels{"carrier": "main", "environment": "test", "code": "502"}, 1},
		{"a request with no resolvable carrier is counted under carrier and environment none",
			"upsproxy_requests_total", labels{"carrier": "none", "environment": "none", "code": "400"}, 1},
		{"the duration histogram holds one sample per request of the carrier and environment",
			"upsproxy_request_duration_seconds", labels{"carrier": "main", "environment": "production"}, 3},
		{"the proxy's own error answers are counted by error code",
			"upsproxy_errors_total", labels{"carrier": "main", "environment": "production", "error_code": "UPSPROXY_REFRESH_TOKEN_EXPIRED"}, 1},
		{"an unresolved carrier's error is counted under carrier none",
			"upsproxy_errors_total", labels{"carrier": "none", "environment": "none", "error_code": "UPSPROXY_NO_CARRIER"}, 1},
		{"successful refreshes are counted",
			"upsproxy_token_refreshes_total", labels{"carrier": "main", "environment": "production", "result": "ok"}, 2},
		{"rejected refreshes are counted apart from successful ones",
			"upsproxy_token_refreshes_total", labels{"carrier": "main", "environment": "production", "result": "rejected"}, 1},
		{"a pair adopted from another replica is counted as adopted",
			"upsproxy_token_refreshes_total", labels{"carrier": "main", "environment": "test", "result": "adopted"}, 1},
		{"the access token expiry is exposed in unix seconds with sub-second precision",
			"upsproxy_access_token_expiry_timestamp_seconds", labels{"carrier": "main", "environment": "production"}, float64(accessExp.Unix()) + 0.5},
		{"the refresh token expiry is exposed in unix seconds",
			"upsproxy_refresh_token_expiry_timestamp_seconds", labels{"carrier": "main", "environment": "production"}, float64(refreshExp.Unix())},
		{"a client-credentials carrier still exposes its access token expiry",
			"upsproxy_access_token_expiry_timestamp_seconds", labels{"carrier": "cc", "environment": "test"}, float64(accessExp.Unix()) + 0.5},
		{"build info is 1 with the version, commit and Go version as labels",
			"upsproxy_build_info", labels{"version": "1.2.3", "commit": "abc123", "goversion": runtime.Version()}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := value(t, m.Registry(), tt.metric, tt.labels); got != tt.want {
				t.Errorf("%s%v = %v, want %v", tt.metric, tt.labels, got, tt.want)
			}
		})
	}

	t.Run("a request without an error code does not count as a proxy error", func(t *testing.T) {
		want := []string{
			"carrier=main,environment=production,error_code=UPSPROXY_REFRESH_TOKEN_EXPIRED",
			"carrier=main,environment=test,error_code=UPSPROXY_UPSTREAM_UNAVAILABLE",
			"carrier=none,environment=none,error_code=UPSPROXY_NO_CARRIER",
		}
		if got := labelSets(t, m.Registry(), "upsproxy_errors_total"); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("error series = %v, want %v", got, want)
		}
	})
	t.Run("a 30s request lands in the top bucket, a 50us one in the lowest", func(t *testing.T) {
		slow, _ := series(t, m.Registry(), "upsproxy_request_duration_seconds", labels{"carrier": "main", "environment": "test"})
		fast, _ := series(t, m.Registry(), "upsproxy_request_duration_seconds", labels{"carrier": "none", "environment": "none"})
		b := slow.GetHistogram().GetBucket()
		if top := b[len(b)-1]; top.GetUpperBound() != 30 || top.GetCumulativeCount() != 2 {
			t.Errorf("top bucket = le %v count %d, want le 30 count 2 (the 40ms and the 30s request)", top.GetUpperBound(), top.GetCumulativeCount())
		}
		if low := fast.GetHistogram().GetBucket()[0]; low.GetUpperBound() != 0.001 || low.GetCumulativeCount() != 1 {
			t.Errorf("lowest bucket = le %v count %d, want le 0.001 count 1", low.GetUpperBound(), low.GetCumulativeCount())
		}
	})
	t.Run("a carrier without a refresh token has no refresh expiry series", func(t *testing.T) {
		if _, ok := series(t, m.Registry(), "upsproxy_refresh_token_expiry_timestamp_seconds", labels{"carrier": "cc", "environment": "test"}); ok {
			t.Error("a refresh expiry series exists for a client-credentials carrier; an alert on it would fire on 1970")
		}
	})
}

func TestLabelValuesStayInBoundedSets(t *testing.T) {
	tests := []struct {
		name    string
		observe func(m *Metrics)
		metric  string
		want    labels
		value   float64
	}{
		{"an unknown carrier reported as empty is labelled none",
			func(m *Metrics) { m.ObserveRequest("", ups.Production, 400, "", time.Millisecond) },
			"upsproxy_requests_total", labels{"carrier": "none", "environment": "production", "code": "400"}, 1},
		{"an environment that is neither test nor production is labelled none",
			func(m *Metrics) { m.ObserveRequest("main", "staging", 200, "", time.Millisecond) },
			"upsproxy_requests_total", labels{"carrier": "main", "environment": "none", "code": "200"}, 1},
		{"a status of zero (no response written) is labelled other",
			func(m *Metrics) { m.ObserveRequest("main", ups.Test, 0, "", time.Millisecond) },
			"upsproxy_requests_total", labels{"carrier": "main", "environment": "test", "code": "other"}, 1},
		{"a status above 599 is labelled other",
			func(m *Metrics) { m.ObserveRequest("main", ups.Test, 1000, "", time.Millisecond) },
			"upsproxy_requests_total", labels{"carrier": "main", "environment": "test", "code": "other"}, 1},
		{"a UPS error code passed as a proxy error code is labelled other",
			func(m *Metrics) { m.ObserveRequest("main", ups.Test, 401, "250002", time.Millisecond) },
			"upsproxy_errors_total", labels{"carrier": "main", "environment": "test", "error_code": "other"}, 1},
		{"free text passed as an error code is labelled other",
			func(m *Metrics) {
				m.ObserveRequest("main", ups.Test, 502, "UPSPROXY_ dial tcp 1Z999AA10123456784", time.Millisecond)
			},
			"upsproxy_errors_total", labels{"carrier": "main", "environment": "test", "error_code": "other"}, 1},
		{"a new UPSPROXY_ code unknown to this package is kept as it is",
			func(m *Metrics) {
				m.ObserveRequest("main", ups.Test, 502, "UPSPROXY_MITM_NOT_CONFIGURED", time.Millisecond)
			},
			"upsproxy_errors_total", labels{"carrier": "main", "environment": "test", "error_code": "UPSPROXY_MITM_NOT_CONFIGURED"}, 1},
		{"an unknown refresh result is labelled other",
			func(m *Metrics) { m.Refreshed("main", ups.Test, "invalid_grant: token abc") },
			"upsproxy_token_refreshes_total", labels{"carrier": "main", "environment": "test", "result": "other"}, 1},
		{"a carrier name that is not valid UTF-8 is labelled none instead of panicking",
			func(m *Metrics) { m.ObserveRequest("\xe7", ups.Test, 200, "", time.Millisecond) },
			"upsproxy_requests_total", labels{"carrier": "none", "environment": "test", "code": "200"}, 1},
		{"a carrier name with a path or a tracking number in it is labelled none",
			func(m *Metrics) { m.Refreshed("1Z999AA10123456784 /api/track", ups.Test, "ok") },
			"upsproxy_token_refreshes_total", labels{"carrier": "none", "environment": "test", "result": "ok"}, 1},
		{"expiries of an unknown carrier are labelled none",
			func(m *Metrics) { m.Expiries("", ups.Test, time.Unix(100, 0), time.Unix(200, 0)) },
			"upsproxy_refresh_token_expiry_timestamp_seconds", labels{"carrier": "none", "environment": "test"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics("", "")
			tt.observe(m)
			if got := value(t, m.Registry(), tt.metric, tt.want); got != tt.value {
				t.Errorf("%s%v = %v, want %v", tt.metric, tt.want, got, tt.value)
			}
		})
	}
}

func TestExpiriesOfANewPairReplaceTheOldOnes(t *testing.T) {
	m := NewMetrics("", "")
	m.Expiries("main", ups.Production, time.Unix(1000, 0), time.Unix(5000, 0))
	m.Expiries("main", ups.Production, time.Unix(2000, 0), time.Unix(6000, 0))
	if got := value(t, m.Registry(), "upsproxy_access_token_expiry_timestamp_seconds", labels{"carrier": "main", "environment": "production"}); got != 2000 {
		t.Errorf("access expiry = %v, want the new pair's 2000", got)
	}
	if got := value(t, m.Registry(), "upsproxy_refresh_token_expiry_timestamp_seconds", labels{"carrier": "main", "environment": "production"}); got != 6000 {
		t.Errorf("refresh expiry = %v, want the new pair's 6000", got)
	}
	// The carrier switched to client credentials (a new login): the old
	// refresh token's expiry must not linger and fire an alert later.
	m.Expiries("main", ups.Production, time.Unix(3000, 0), time.Time{})
	if _, ok := series(t, m.Registry(), "upsproxy_refresh_token_expiry_timestamp_seconds", labels{"carrier": "main", "environment": "production"}); ok {
		t.Error("the previous refresh expiry is still exposed after a pair without refresh token")
	}
}

func TestInitCarrierExposesZeroRefreshCountersSoTheFirstRejectionIsAnIncrease(t *testing.T) {
	m := NewMetrics("", "")
	m.InitCarrier("main", ups.Production)
	for _, result := range []string{"ok", "rejected", "failed", "adopted"} {
		if got := value(t, m.Registry(), "upsproxy_token_refreshes_total", labels{"carrier": "main", "environment": "production", "result": result}); got != 0 {
			t.Errorf("%s = %v, want 0", result, got)
		}
	}
}

func TestRegistryHasGoProcessAndBuildInfoAndPassesPromlint(t *testing.T) {
	m := NewMetrics("v1", "c1")
	m.ObserveRequest("main", ups.Test, 200, "UPSPROXY_NO_CARRIER", time.Millisecond)
	m.Refreshed("main", ups.Test, "ok")
	m.Expiries("main", ups.Test, time.Unix(1, 0), time.Unix(2, 0))
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range fams {
		have[f.GetName()] = true
	}
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total", "upsproxy_build_info"} {
		if !have[name] {
			t.Errorf("registry lacks %s", name)
		}
	}
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "upsproxy_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
}

func TestBuildInfoWithoutVersionOrWithABrokenOneStillRegisters(t *testing.T) {
	tests := []struct {
		name, version, commit string
		want                  labels
	}{
		{"a dev build without version or commit says unknown", "", "", labels{"version": "unknown", "commit": "unknown", "goversion": runtime.Version()}},
		{"a version that is not valid UTF-8 is repaired instead of panicking", "1.0\xff", "c", labels{"version": "1.0?", "commit": "c", "goversion": runtime.Version()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics(tt.version, tt.commit)
			if got := value(t, m.Registry(), "upsproxy_build_info", tt.want); got != 1 {
				t.Errorf("build info = %v, want 1", got)
			}
		})
	}
}

func TestTwoMetricsDoNotShareSeries(t *testing.T) {
	a, b := NewMetrics("", ""), NewMetrics("", "")
	a.ObserveRequest("main", ups.Test, 200, "", time.Millisecond)
	if _, ok := series(t, b.Registry(), "upsproxy_requests_total", labels{"carrier": "main", "environment": "test", "code": "200"}); ok {
		t.Error("a request observed on one Metrics shows on another: a global registry is in use")
	}
}

func TestNilMetricsIgnoresEveryCall(t *testing.T) {
	var m *Metrics
	m.ObserveRequest("main", ups.Test, 200, "", time.Millisecond)
	m.Refreshed("main", ups.Test, "ok")
	m.Expiries("main", ups.Test, time.Now(), time.Now())
	m.InitCarrier("main", ups.Test)
	if m.Registry() != nil {
		t.Error("nil Metrics has a registry")
	}
	var tm tokens.Metrics = m // a typed nil handed to the broker must not crash it
	tm.Refreshed("main", ups.Test, "ok")
}

func TestConcurrentRequestsAreAllCounted(t *testing.T) {
	m := NewMetrics("", "")
	const workers, each = 8, 500
	carriers := []string{"a", "b", "c", ""}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				m.ObserveRequest(carriers[(w+i)%len(carriers)], ups.Production, 200+i%3, "", time.Millisecond)
			}
		})
	}
	wg.Wait()
	var total float64
	for _, c := range []string{"a", "b", "c", "none"} {
		for _, code := range []string{"200", "201", "202"} {
			total += value(t, m.Registry(), "upsproxy_requests_total", labels{"carrier": c, "environment": "production", "code": code})
		}
	}
	if total != workers*each {
		t.Errorf("counted %v requests, want %d", total, workers*each)
	}
}

func TestRequestsBeyondTheCacheBoundAreStillCounted(t *testing.T) {
	m := NewMetrics("", "")
	// Distinct raw error codes all normalise to "other": the cache bound is
	// hit without creating more than one series.
	n := maxCachedRequestSeries + 100
	for i := range n {
		m.ObserveRequest("main", ups.Test, 500, fmt.Sprintf("bogus-%d", i), time.Millisecond)
	}
	if got := value(t, m.Registry(), "upsproxy_errors_total", labels{"carrier": "main", "environment": "test", "error_code": "other"}); got != float64(n) {
		t.Errorf("errors{other} = %v, want %d", got, n)
	}
	entries := 0
	m.children.Range(func(any, any) bool { entries++; return true })
	if got := entries; got > maxCachedRequestSeries {
		t.Errorf("cache holds %d entries, bound is %d", got, maxCachedRequestSeries)
	}
}

func TestObserveRequestDoesNotAllocateOnceALabelSetWasSeen(t *testing.T) {
	m := NewMetrics("", "")
	m.ObserveRequest("main", ups.Production, 200, "", time.Millisecond)
	m.ObserveRequest("main", ups.Production, 401, "UPSPROXY_REFRESH_TOKEN_EXPIRED", time.Millisecond)
	allocs := testing.AllocsPerRun(1000, func() {
		m.ObserveRequest("main", ups.Production, 200, "", time.Millisecond)
		m.ObserveRequest("main", ups.Production, 401, "UPSPROXY_REFRESH_TOKEN_EXPIRED", time.Millisecond)
	})
	if allocs != 0 {
		t.Errorf("ObserveRequest allocates %v times per call pair in steady state, want 0", allocs)
	}
}

func BenchmarkObserveRequest(b *testing.B) {
	m := NewMetrics("", "")
	carriers := []string{"main", "second", "third", ""}
	statuses := []int{200, 200, 200, 401, 502}
	b.ReportAllocs()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			m.ObserveRequest(carriers[i%len(carriers)], ups.Production, statuses[i%len(statuses)], "", 25*time.Millisecond)
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				m.ObserveRequest(carriers[i%len(carriers)], ups.Production, statuses[i%len(statuses)], "", 25*time.Millisecond)
				i++
			}
		})
	})
}

// FuzzObserveRequestLabels feeds caller-supplied values (which in a buggy
// caller might come from a request) through the label hygiene: whatever
// comes in, only bounded label values come out.
func FuzzObserveRequestLabels(f *testing.F) {
	f.Add("", "", 0, "")
	f.Add("main", "production", 200, "")
	f.Add("main", "test", 401, "UPSPROXY_REFRESH_TOKEN_EXPIRED")
	f.Add("x", "staging", -1, "UPSPROXY_")
	f.Add("x", "test", 99999, "UPSPROXY_\xff\n")
	f.Add("x", "test", 503, "upsproxy_lowercase")
	f.Add("\xe7", "test", 200, "")
	f.Add("1Z999AA10123456784 /api/track/v1/details", "production", 200, "")
	f.Fuzz(func(t *testing.T, carrier, env string, status int, code string) {
		m := NewMetrics("", "")
		m.ObserveRequest(carrier, ups.Environment(env), status, code, time.Millisecond)
		m.Refreshed(carrier, ups.Environment(env), code)
		fams, err := m.Registry().Gather()
		if err != nil {
			t.Fatalf("gather: %v", err)
		}
		for _, f := range fams {
			if !strings.HasPrefix(f.GetName(), "upsproxy_") {
				continue
			}
			for _, s := range f.GetMetric() {
				for _, lp := range s.GetLabel() {
					v := lp.GetValue()
					switch lp.GetName() {
					case "environment":
						if v != "test" && v != "production" && v != LabelNone {
							t.Errorf("environment label %q", v)
						}
					case "code":
						if v != LabelOther && (len(v) != 3 || v < "100" || v > "599") {
							t.Errorf("code label %q", v)
						}
					case "error_code":
						if v != LabelOther && errorCodeLabel(v) != v {
							t.Errorf("error_code label %q", v)
						}
					case "result":
						if resultLabel(v) != v && v != LabelOther {
							t.Errorf("result label %q", v)
						}
					case "carrier":
						if v != LabelNone && carrierLabel(v) != v {
							t.Errorf("carrier label %q", v)
						}
					}
				}
			}
		}
	})
}

func TestNotificationsAreCountedByChannelEventAndResultWithUnknownValuesBounded(t *testing.T) {
	m := NewMetrics("v", "c")
	m.Notified("shipping-mail", "expiring", "sent")
	m.Notified("shipping-mail", "expiring", "sent")
	m.Notified("slack", "failing", "failed")
	m.Notified("bad channel\xff", "made-up", "weird")
	for _, c := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"channel": "shipping-mail", "event": "expiring", "result": "sent"}, 2},
		{map[string]string{"channel": "slack", "event": "failing", "result": "failed"}, 1},
		{map[string]string{"channel": LabelNone, "event": LabelOther, "result": LabelOther}, 1},
	} {
		if got := value(t, m.Registry(), "upsproxy_notifications_total", c.labels); got != c.want {
			t.Errorf("%v = %v, want %v", c.labels, got, c.want)
		}
	}
}

func TestRefusedTokensAreCountedPerCarrierFromZero(t *testing.T) {
	m := NewMetrics("", "")
	m.InitCarrier("main", ups.Test)
	if got := value(t, m.Registry(), "upsproxy_token_refused_total", labels{"carrier": "main", "environment": "test"}); got != 0 {
		t.Fatalf("at start-up: %v, want 0", got)
	}
	m.Refused("main", ups.Test)
	m.Refused("main", ups.Test)
	m.Refused("bad carrier\xff", ups.Environment("nope"))
	if got := value(t, m.Registry(), "upsproxy_token_refused_total", labels{"carrier": "main", "environment": "test"}); got != 2 {
		t.Errorf("after two refusals: %v, want 2", got)
	}
	if got := value(t, m.Registry(), "upsproxy_token_refused_total", labels{"carrier": "none", "environment": "none"}); got != 1 {
		t.Errorf("an unknown carrier's refusal: %v, want 1 under none/none", got)
	}
}
