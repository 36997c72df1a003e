package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/upsproxy/upsproxy/internal/tokens"
	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// get sends one request to h through a real loopback server, so status
// codes, HEAD handling and headers are what a client sees.
func get(t *testing.T, srv *httptest.Server, method, path string) (int, http.Header, string) {
	t.Helper()
	// A hung handler fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

func serve(t *testing.T, opts Options) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(NewHandler(opts))
	t.Cleanup(srv.Close)
	return srv
}

func TestRoutes(t *testing.T) {
	m := NewMetrics("1.0.0", "deadbeef")
	srv := serve(t, Options{
		Metrics: m,
		Ready:   func(context.Context) error { return nil },
		Status:  func() any { return []tokens.Status{} },
		Version: "1.0.0", Commit: "deadbeef",
	})
	tests := []struct {
		name, method, path string
		wantCode           int
		wantBody           string // substring
	}{
		{"healthz answers ok while the process runs", "GET", "/healthz", 200, "ok"},
		{"readyz answers ready when the readiness check passes", "GET", "/readyz", 200, "ready"},
		{"status answers JSON", "GET", "/status", 200, `"carriers": []`},
		{"metrics answers the Prometheus exposition", "GET", "/metrics", 200, "upsproxy_build_info"},
		{"HEAD is allowed on healthz for probes that only want the status", "HEAD", "/healthz", 200, ""},
		{"HEAD is allowed on metrics", "HEAD", "/metrics", 200, ""},
		{"the root is not found", "GET", "/", 404, ""},
		{"an unknown path is not found", "GET", "/debug/pprof/", 404, ""},
		{"a trailing slash is a different path", "GET", "/healthz/", 404, ""},
		{"POST is not allowed", "POST", "/healthz", 405, ""},
		{"DELETE on status is not allowed", "DELETE", "/status", 405, ""},
		{"PUT on metrics is not allowed", "PUT", "/metrics", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, hdr, body := get(t, srv, tt.method, tt.path)
			if code != tt.wantCode {
				t.Fatalf("%s %s = %d, want %d (body %q)", tt.method, tt.path, code, tt.wantCode, body)
			}
			if !strings.Contains(body, tt.wantBody) {
				t.Errorf("body %q lacks %q", body, tt.wantBody)
			}
			if tt.method == "HEAD" && body != "" {
				t.Errorf("HEAD answered a body: %q", body)
			}
			if code == 405 && !strings.Contains(hdr.Get("Allow"), "GET") {
				t.Errorf("405 without Allow: GET (Allow %q)", hdr.Get("Allow"))
			}
		})
	}
}

func TestHealthzAndReadyzBodiesAreExactForScriptsComparingThem(t *testing.T) {
	srv := serve(t, Options{})
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
		if _, hdr, body := get(t, srv, "GET", path); body != want || hdr.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s = %q (Cache-Control %q), want %q, no-store", path, body, hdr.Get("Cache-Control"), want)
		}
	}
}

func TestReadyzFlipsWithTheReadinessCheck(t *testing.T) {
	var mu sync.Mutex
	var readyErr error
	set := func(err error) { mu.Lock(); readyErr = err; mu.Unlock() }
	core, logs := observer.New(zapcore.InfoLevel)
	srv := serve(t, Options{
		Logger: zap.New(core),
		Ready: func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			return readyErr
		},
	})
	sealed := fmt.Errorf("ping vault: %w: vault answered 503: Vault is sealed", vaultstore.ErrUnavailable)
	steps := []struct {
		name     string
		err      error
		wantCode int
		wantBody string
	}{
		{"ready at start", nil, 200, "ready"},
		{"vault sealed makes the proxy not ready, with the reason", sealed, 503, "not ready: ping vault: vault unavailable: vault answered 503: Vault is sealed"},
		{"still sealed on the next probe", sealed, 503, "Vault is sealed"},
		{"unsealed: ready again", nil, 200, "ready"},
		{"config not loaded", errors.New("config not loaded"), 503, "not ready: config not loaded"},
	}
	for _, st := range steps {
		set(st.err)
		code, _, body := get(t, srv, "GET", "/readyz")
		if code != st.wantCode || !strings.Contains(body, st.wantBody) {
			t.Errorf("%s: /readyz = %d %q, want %d containing %q", st.name, code, body, st.wantCode, st.wantBody)
		}
	}

	// Probes come every few seconds: only changes are worth a log line.
	var got []string
	for _, e := range logs.All() {
		got = append(got, e.Level.String()+" "+e.Message)
	}
	want := []string{"info ready", "warn not ready", "info ready", "warn not ready"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("logs = %q, want one line per change: %q", got, want)
	}
}

func TestReadyzReasonIsOneShortLine(t *testing.T) {
	long := "vault answered 502: <html>\n<body>\n" + strings.Repeat("Bad Gateway ", 100) + "</body></html>"
	srv := serve(t, Options{Ready: func(context.Context) error { return errors.New(long) }})
	code, _, body := get(t, srv, "GET", "/readyz")
	if code != 503 {
		t.Fatalf("code %d, want 503", code)
	}
	if strings.ContainsAny(body, "\r\n") {
		t.Errorf("reason spans lines: %q", body)
	}
	if len(body) > maxReasonLen+len("...") {
		t.Errorf("reason is %d bytes, want at most %d", len(body), maxReasonLen+3)
	}
	if !strings.HasPrefix(body, "not ready: vault answered 502: <html> <body> Bad Gateway") {
		t.Errorf("reason %q lost its beginning", body)
	}
}

func TestReadyzAnswersWithinItsTimeoutWhenTheCheckHangs(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	tests := []struct {
		name  string
		ready func(ctx context.Context) error
	}{
		{"a check honouring its context", func(ctx context.Context) error {
			<-ctx.Done()
			return fmt.Errorf("ping vault: %w: %w", vaultstore.ErrUnavailable, ctx.Err())
		}},
		{"a check ignoring its context", func(context.Context) error {
			<-release
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serve(t, Options{Ready: tt.ready, ReadyTimeout: 50 * time.Millisecond})
			start := time.Now()
			code, _, body := get(t, srv, "GET", "/readyz")
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("/readyz took %s with a 50ms timeout", took)
			}
			if code != 503 || !strings.Contains(body, "timed out after 50ms") {
				t.Errorf("/readyz = %d %q, want 503 saying it timed out after 50ms", code, body)
			}
		})
	}
}

func TestReadyzBoundsTheCheckToTwoSecondsByDefault(t *testing.T) {
	var deadline time.Time
	srv := serve(t, Options{Ready: func(ctx context.Context) error {
		deadline, _ = ctx.Deadline()
		return nil
	}})
	start := time.Now()
	get(t, srv, "GET", "/readyz")
	if left := deadline.Sub(start); left <= 0 || left > DefaultReadyTimeout+time.Second {
		t.Errorf("Ready's context deadline is %s away, want about %s", left, DefaultReadyTimeout)
	}
}

func TestStatusShowsBuildTimeAndCarriersWithoutTokenValues(t *testing.T) {
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	const (
		accessToken  = "eyJhbGciOiJSUzI1NiJ9.access-secret-value"
		refreshToken = "refresh-secret-value-1234567890"
	)
	rec := vaultstore.Record{
		Carrier: "main", Environment: ups.Production, Grant: ups.GrantAuthorizationCode,
		Token: ups.Token{
			TokenType: "Bearer", AccessToken: accessToken, RefreshToken: refreshToken,
			Scope: "", ClientID: "client-id", Status: "approved", RefreshTokenStatus: "approved",
			IssuedAt: now.Add(-time.Hour), ExpiresAt: now.Add(3 * time.Hour),
			RefreshIssuedAt: now.Add(-time.Hour), RefreshExpiresAt: now.Add(59 * 24 * time.Hour),
			RefreshCount: 3,
		},
		LastRefresh: now.Add(-time.Hour), UpdatedBy: "host/42",
	}
	st := tokens.Status{Info: tokens.Describe(rec, now), Active: true, Loaded: true,
		LastRefreshAt: now.Add(-time.Hour), LastRefreshResult: "ok"}
	srv := serve(t, Options{
		Status:  func() any { return []tokens.Status{st} },
		Version: "1.4.0", Commit: "0123abc",
		Now: func() time.Time { return now.In(time.FixedZone("CET", 3600)) },
	})

	code, hdr, body := get(t, srv, "GET", "/status")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
		t.Fatalf("/status = %d %s", code, hdr.Get("Content-Type"))
	}
	for _, secret := range []string{accessToken, refreshToken, "access-secret", "refresh-secret"} {
		if strings.Contains(body, secret) {
			t.Errorf("/status shows token material %q:\n%s", secret, body)
		}
	}
	var doc struct {
		Version  string           `json:"version"`
		Commit   string           `json:"commit"`
		Time     time.Time        `json:"time"`
		Carriers []map[string]any `json:"carriers"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("/status is not JSON: %v\n%s", err, body)
	}
	if doc.Version != "1.4.0" || doc.Commit != "0123abc" || !doc.Time.Equal(now) {
		t.Errorf("header = %q %q %s, want 1.4.0 0123abc %s", doc.Version, doc.Commit, doc.Time, now)
	}
	if !strings.Contains(body, `"time": "2026-11-25T09:00:00Z"`) {
		t.Errorf("time is not shown in UTC:\n%s", body)
	}
	if len(doc.Carriers) != 1 {
		t.Fatalf("carriers = %v, want one", doc.Carriers)
	}
	c := doc.Carriers[0]
	for k, want := range map[string]any{
		"carrier": "main", "environment": "production", "refresh_token_days_left": float64(59),
		"refresh_token_expires": "2027-01-23T09:00:00Z", "last_refresh_result": "ok", "refresh_count": float64(3),
	} {
		if c[k] != want {
			t.Errorf("carriers[0].%s = %v, want %v", k, c[k], want)
		}
	}
}

func TestStatusListsNoCarriersAsAnEmptyArrayNotNull(t *testing.T) {
	tests := []struct {
		name   string
		status func() any
	}{
		{"no Status function", nil},
		{"Status returning nil", func() any { return nil }},
		{"Status returning a nil slice (a broker with no carriers)", func() any { return []tokens.Status(nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, body := get(t, serve(t, Options{Status: tt.status}), "GET", "/status")
			if !strings.Contains(body, `"carriers": []`) {
				t.Errorf("body lacks an empty carriers list:\n%s", body)
			}
		})
	}
}

func TestStatusThatCannotBeEncodedAnswers500(t *testing.T) {
	core, logs := observer.New(zapcore.ErrorLevel)
	srv := serve(t, Options{Logger: zap.New(core), Status: func() any { return []any{func() {}} }})
	if code, _, _ := get(t, srv, "GET", "/status"); code != 500 {
		t.Errorf("code %d, want 500", code)
	}
	if logs.Len() != 1 {
		t.Errorf("logged %d errors, want 1", logs.Len())
	}
}

func TestMetricsEndpointServesTheMetricsRegistry(t *testing.T) {
	m := NewMetrics("2.0.0", "feed")
	m.ObserveRequest("", "", 400, "UPSPROXY_NO_CARRIER", time.Millisecond)
	m.ObserveRequest("main", ups.Production, 200, "", 20*time.Millisecond)
	m.Expiries("main", ups.Production, time.Unix(1767225600, 0), time.Unix(1772323200, 0))
	srv := serve(t, Options{Metrics: m})
	_, hdr, body := get(t, srv, "GET", "/metrics")
	if !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Errorf("Content-Type %q, want the text exposition", hdr.Get("Content-Type"))
	}
	for _, line := range []string{
		`upsproxy_requests_total{carrier="none",code="400",environment="none"} 1`,
		`upsproxy_requests_total{carrier="main",code="200",environment="production"} 1`,
		`upsproxy_errors_total{carrier="none",environment="none",error_code="UPSPROXY_NO_CARRIER"} 1`,
		`upsproxy_request_duration_seconds_count{carrier="main",environment="production"} 1`,
		`upsproxy_refresh_token_expiry_timestamp_seconds{carrier="main",environment="production"} 1.7723232e+09`,
		`upsproxy_build_info{commit="feed",goversion="`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
		`promhttp_metric_handler_requests_total{code="200"} `,
	} {
		if !strings.Contains(body, line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}

func TestMetricsLeftOutWhenNoMetricsAreGiven(t *testing.T) {
	if code, _, _ := get(t, serve(t, Options{}), "GET", "/metrics"); code != 404 {
		t.Errorf("/metrics = %d without Metrics, want 404", code)
	}
}

func TestASecondHandlerOnTheSameMetricsDoesNotPanic(t *testing.T) {
	// serve reloads its config by building new handlers; the registry must
	// accept promhttp's own collectors twice.
	m := NewMetrics("", "")
	a, b := serve(t, Options{Metrics: m}), serve(t, Options{Metrics: m})
	get(t, a, "GET", "/metrics")
	if _, _, body := get(t, b, "GET", "/metrics"); !strings.Contains(body, `promhttp_metric_handler_requests_total{code="200"} 1`) {
		t.Errorf("the second handler does not share the scrape counter:\n%s", body)
	}
}
