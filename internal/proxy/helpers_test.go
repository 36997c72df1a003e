package proxy_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/upsproxy/upsproxy/internal/proxy"
	"github.com/upsproxy/upsproxy/internal/tokens"
	"github.com/upsproxy/upsproxy/internal/ups"
)

// fakeTokens is a TokenSource answering from fixed tables.
type fakeTokens struct {
	mu     sync.Mutex
	tokens map[string]string // "carrier/env" -> access token
	errs   map[string]error
	calls  int
}

func (f *fakeTokens) Token(_ context.Context, carrier string, env ups.Environment) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	k := carrier + "/" + string(env)
	if err, ok := f.errs[k]; ok {
		return "", err
	}
	if tok, ok := f.tokens[k]; ok {
		return tok, nil
	}
	return "", tokens.ErrNotLoggedIn
}

// refreshExpired is the broker's error for carrier "expired".
var refreshExpired = &tokens.RefreshExpiredError{
	Carrier:     "expired",
	Environment: ups.Production,
	ExpiredAt:   time.Date(2026, 2, 2, 10, 32, 51, 0, time.UTC),
}

func newFakeTokens() *fakeTokens {
	return &fakeTokens{
		tokens: map[string]string{
			"main/production": "tok-main-production-SECRET",
			"cie/test":        "tok-cie-test-SECRET",
			"old/production":  "tok-old-production-SECRET",
		},
		errs: map[string]error{
			"expired/production":     refreshExpired,
			"vaultdown/production":   fmt.Errorf("load main/production: %w", tokens.ErrStoreUnavailable),
			"weird/production":       fmt.Errorf("something nobody planned for"),
			"refreshfail/production": fmt.Errorf("refresh: UPS answered 503: %w", tokens.ErrRefreshFailed),
		},
	}
}

func testCarriers() []proxy.Carrier {
	return []proxy.Carrier{
		{Name: "main", Environment: ups.Production, Default: true},
		{Name: "cie", Environment: ups.Test},
		{Name: "old", Environment: ups.Production, Inactive: true},
		{Name: "nologin", Environment: ups.Production},
		{Name: "expired", Environment: ups.Production},
		{Name: "vaultdown", Environment: ups.Production},
		{Name: "weird", Environment: ups.Production},
		{Name: "refreshfail", Environment: ups.Production},
	}
}

// recorded is what an upstream saw of one request.
type recorded struct {
	Method, Path, RawQuery, Host, RemoteAddr string
	Header                                   http.Header
	Body                                     string
}

// upstream is an httptest UPS that records requests.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

const upsReplyBody = `{"RateResponse":{"Response":{"ResponseStatus":{"Code":"1","Description":"Success"}}}}`

// defaultUPSHandler answers like UPS, plus a forged proxy error header that
// must never reach the client.
func defaultUPSHandler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Ups-Reply", "kept")
	w.Header().Set(proxy.ErrorHeader, "FORGED_BY_UPSTREAM")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, upsReplyBody)
}

func newUpstream(t testing.TB, h http.HandlerFunc) *upstream {
	t.Helper()
	if h == nil {
		h = defaultUPSHandler
	}
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, recorded{
			Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.Host,
			RemoteAddr: r.RemoteAddr, Header: r.Header.Clone(), Body: string(body),
		})
		u.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) requests() []recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]recorded(nil), u.reqs...)
}

func (u *upstream) hostURL(t testing.TB) *url.URL {
	t.Helper()
	parsed, err := url.Parse(u.URL)
	if err != nil {
		t.Fatal(err)
	}
	return parsed
}

// testEnv is a running proxy with a test and a production upstream.
type testEnv struct {
	proxy    *proxy.Proxy
	server   *proxyServer
	proxyURL *url.URL
	prod     *upstream
	test     *upstream
	tokens   *fakeTokens
	caPool   *x509.CertPool
	logs     *observer.ObservedLogs
}

func newTestEnv(t testing.TB, mod func(*proxy.Options)) *testEnv {
	t.Helper()
	e := &testEnv{
		prod:   newUpstream(t, nil),
		test:   newUpstream(t, nil),
		tokens: newFakeTokens(),
	}
	ca, pool := newCA(t)
	e.caPool = pool
	core, logs := observer.New(zapcore.DebugLevel)
	e.logs = logs
	opts := proxy.Options{
		Logger: zap.New(core),
		Clock:  time.Now,
		Tokens: e.tokens,
		CA:     ca,
		Config: proxy.Config{
			Carriers: testCarriers(),
			Upstreams: map[ups.Environment]*url.URL{
				ups.Production: e.prod.hostURL(t),
				ups.Test:       e.test.hostURL(t),
			},
		},
	}
	if mod != nil {
		mod(&opts)
	}
	p, err := proxy.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.proxy = p
	e.server = serveProxy(t, p)
	e.proxyURL, _ = url.Parse(e.server.URL)
	return e
}

// proxyServer is a proxy serving a loopback listener, as `serve` runs it.
type proxyServer struct{ URL string }

// serveProxy serves p on a loopback listener until the test ends; the
// end is Shutdown with a short grace, as `serve` stops.
func serveProxy(t testing.TB, p *proxy.Proxy) *proxyServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != proxy.ErrServerClosed {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return &proxyServer{URL: "http://" + ln.Addr().String()}
}

func newCA(t testing.TB) (*proxy.CA, *x509.CertPool) {
	t.Helper()
	certPath, keyPath, err := proxy.InitCA(t.TempDir(), time.Now())
	if err != nil {
		t.Fatalf("InitCA: %v", err)
	}
	ca, err := proxy.LoadCA(certPath, keyPath, 8)
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())
	return ca, pool
}

// The three ways clients reach the proxy.

// originClient talks to the proxy as its UPS base URL.
func (e *testEnv) originClient(t testing.TB) (*http.Client, string) {
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, e.server.URL
}

// forwardClient uses the proxy as HTTP forward proxy (absolute-form).
func (e *testEnv) forwardClient(t testing.TB) (*http.Client, string) {
	tr := &http.Transport{Proxy: http.ProxyURL(e.proxyURL)}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, "http://" + ups.ProductionHost
}

// mitmClient uses the proxy as HTTPS forward proxy (CONNECT), trusting its CA.
func (e *testEnv) mitmClient(t testing.TB, host string) (*http.Client, string) {
	tr := &http.Transport{
		Proxy:           http.ProxyURL(e.proxyURL),
		TLSClientConfig: tlsConfigTrusting(e.caPool),
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, "https://" + host
}

// rawConnect sends a CONNECT and returns the proxy's answer.
func rawConnect(t testing.TB, proxyAddr, authority string) *http.Response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", proxyAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", authority, authority)
	req := &http.Request{Method: http.MethodConnect}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("read CONNECT response: %v", err)
	}
	return resp
}

// rawConnectKeep sends a CONNECT and, when it is accepted, runs use on the
// tunnel.
func rawConnectKeep(t testing.TB, proxyAddr, authority string, use func(net.Conn)) *http.Response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", proxyAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", authority, authority)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("read CONNECT response: %v", err)
	}
	if resp.StatusCode == http.StatusOK {
		use(conn)
	}
	return resp
}

// strippedHeaders are sent by legacy clients and must never reach UPS.
var strippedHeaders = map[string]string{
	"Authorization":       "Basic bGVnYWN5OmxlZ2FjeQ==",
	"AccessLicenseNumber": "ALN-SECRET-1234",
	"Username":            "legacy-user",
	"Password":            "legacy-password-SECRET",
	"Proxy-Authorization": "Basic cHJveHk6cHJveHktcGFzc3dvcmQ=",
	"Proxy-Connection":    "keep-alive",
	"X-Upsproxy-Carrier":  "main",
	"X-Upsproxy-Debug":    "1",
}

// countingTransport counts upstream round trips.
type countingTransport struct {
	next  http.RoundTripper
	calls atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.calls.Add(1)
	return c.next.RoundTrip(r)
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	accepts atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepts.Add(1)
	}
	return c, err
}

func readBody(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

func hasHeaderFold(h http.Header, name string) bool {
	for k := range h {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

func tlsConfigTrusting(pool *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }

func writeCertPEM(t testing.TB, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "upstream-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
