package proxy_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/proxy"
	"github.com/upsproxy/upsproxy/internal/testutil/egresstest"
	"github.com/upsproxy/upsproxy/internal/ups"
)

// tlsUPS is an HTTPS upstream that records each TLS connection it accepts
// (and whether the handshake resumed a session) and the protocol of each
// request.
type tlsUPS struct {
	srv    *httptest.Server
	mu     sync.Mutex
	conns  int
	closed int
	resume []bool
	protos []string
}

func newTLSUPS(t *testing.T, h2 bool) *tlsUPS {
	t.Helper()
	u := &tlsUPS{}
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.protos = append(u.protos, r.Proto)
		u.mu.Unlock()
		defaultUPSHandler(w, r)
	}))
	u.srv.EnableHTTP2 = h2
	u.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		u.mu.Lock()
		switch s {
		case http.StateNew:
			u.conns++
		case http.StateClosed:
			u.closed++
		}
		u.mu.Unlock()
	}
	u.srv.TLS = &tls.Config{VerifyConnection: func(cs tls.ConnectionState) error {
		u.mu.Lock()
		u.resume = append(u.resume, cs.DidResume)
		u.mu.Unlock()
		return nil
	}}
	u.srv.StartTLS()
	t.Cleanup(u.srv.Close)
	return u
}

func (u *tlsUPS) snapshot() (conns int, resume []bool, protos []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.conns, append([]bool(nil), u.resume...), append([]string(nil), u.protos...)
}

// warmEnv is a proxy whose production upstream is u, sending through a
// transport tuned with tun (WarmHosts filled in).
func warmEnv(t *testing.T, u *tlsUPS, tun proxy.UpstreamTuning) (*testEnv, *proxy.WarmPool, string) {
	t.Helper()
	tr, err := proxy.NewTransport(proxy.TransportOptions{CAFile: writeCertPEM(t, u.srv.Certificate().Raw)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	upURL, _ := url.Parse(u.srv.URL)
	tun.WarmHosts = []string{upURL.Host}
	pool := proxy.TuneTransport(tr, tun)
	t.Cleanup(pool.Close)
	e := newTestEnv(t, func(o *proxy.Options) {
		o.Transport = tr
		o.Config.Upstreams[ups.Production] = upURL
	})
	return e, pool, upURL.Host
}

// waitFor polls cond (up to 10 s: a wait for background dials, not a
// measure of speed).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func rateThrough(t *testing.T, e *testEnv) {
	t.Helper()
	client, base := e.originClient(t)
	resp, err := client.Post(base+"/api/rating/v2409/Rate", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d, want 201 from UPS", resp.StatusCode)
	}
}

func TestWarmPoolDialsUPSBeforeTheFirstRequestAndResumesTLS(t *testing.T) {
	u := newTLSUPS(t, false)
	e, pool, host := warmEnv(t, u, proxy.UpstreamTuning{WarmConns: 2})
	pool.Start(context.Background())
	waitFor(t, "2 spare connections", func() bool { return pool.Spares(host) == 2 })
	if conns, _, _ := u.snapshot(); conns != 2 {
		t.Fatalf("UPS accepted %d connections before any request, want the 2 spares", conns)
	}

	rateThrough(t, e)
	// The request took a spare: UPS saw no new connection for it. The
	// spare taken is then replaced, by a resumed TLS session.
	waitFor(t, "the spare to be replaced", func() bool { return pool.Spares(host) == 2 })
	conns, resume, protos := u.snapshot()
	if conns != 3 {
		t.Errorf("UPS accepted %d connections, want 3 (2 spares, then 1 replacement; none dialled by the request)", conns)
	}
	if len(resume) != 3 || resume[0] || !resume[2] {
		t.Errorf("handshakes resumed = %v, want [false _ true]: the replacement resumes the session of a spare", resume)
	}
	if len(protos) != 1 || protos[0] != "HTTP/1.1" {
		t.Errorf("UPS saw protocols %v, want one HTTP/1.1 request (http2 off by default)", protos)
	}
}

func (u *tlsUPS) counts() (conns, closed int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.conns, u.closed
}

// TestWarmPoolSetHostsFollowsAReload: a reload that points the carriers at
// another UPS host moves the spares there; the old host's spares are
// closed and not refilled, and a host added back is filled again.
func TestWarmPoolSetHostsFollowsAReload(t *testing.T) {
	a, b := newTLSUPS(t, false), newTLSUPS(t, false)
	_, pool, hostA := warmEnv(t, a, proxy.UpstreamTuning{WarmConns: 2})
	bURL, _ := url.Parse(b.srv.URL)
	hostB := bURL.Host
	pool.Start(context.Background())
	waitFor(t, "2 spares at the first host", func() bool { return pool.Spares(hostA) == 2 })

	pool.SetHosts([]string{hostB})
	waitFor(t, "2 spares at the new host", func() bool { return pool.Spares(hostB) == 2 })
	waitFor(t, "the old host's spares to be closed", func() bool { _, closed := a.counts(); return closed == 2 })
	if n := pool.Spares(hostA); n != 0 {
		t.Fatalf("%d spares kept for the dropped host", n)
	}
	if conns, _ := a.counts(); conns != 2 {
		t.Fatalf("the dropped host saw %d connections, want the first 2 only (no refill)", conns)
	}

	pool.SetHosts([]string{hostB, hostA})
	waitFor(t, "2 spares at the host added back", func() bool { return pool.Spares(hostA) == 2 })
	if conns, closed := b.counts(); conns != 2 || closed != 0 || pool.Spares(hostB) != 2 {
		t.Fatalf("the kept host: %d connections, %d closed, %d spares; want its 2 spares untouched", conns, closed, pool.Spares(hostB))
	}
	pool.Close()
	pool.SetHosts([]string{hostA}) // after Close: nothing, no panic
	if n := pool.Spares(hostA); n != 0 {
		t.Fatalf("%d spares after Close", n)
	}
}

func TestWarmPoolDropsSparesUPSClosedAndDialsAFreshOne(t *testing.T) {
	u := newTLSUPS(t, false)
	e, pool, host := warmEnv(t, u, proxy.UpstreamTuning{WarmConns: 2})
	pool.Start(context.Background())
	waitFor(t, "2 spare connections", func() bool { return pool.Spares(host) == 2 })
	// UPS drops the idle connections (as a load balancer does).
	u.srv.CloseClientConnections()
	rateThrough(t, e)
	if _, _, protos := u.snapshot(); len(protos) != 1 {
		t.Errorf("UPS saw %d requests, want exactly 1 (no error, no retry on a dead spare)", len(protos))
	}
}

// A cold pool must not make a request wait for the pool's own dials: here
// the spare's handshake never completes, and the request still goes
// through on a connection of its own.
func TestColdWarmPoolDoesNotStallARequest(t *testing.T) {
	u := newTLSUPS(t, false)
	upURL, _ := url.Parse(u.srv.URL)
	// A front that holds the first connection (the spare's) silent and
	// passes later ones to the real UPS.
	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { front.Close() })
	first := make(chan net.Conn, 1)
	go func() {
		for n := 0; ; n++ {
			c, err := front.Accept()
			if err != nil {
				return
			}
			if n == 0 {
				first <- c // held open, never answered
				continue
			}
			go pipe(c, upURL.Host)
		}
	}()
	t.Cleanup(func() {
		select {
		case c := <-first:
			c.Close()
		default:
		}
	})
	frontURL := &url.URL{Scheme: "https", Host: front.Addr().String()}

	tr, err := proxy.NewTransport(proxy.TransportOptions{CAFile: writeCertPEM(t, u.srv.Certificate().Raw)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	pool := proxy.TuneTransport(tr, proxy.UpstreamTuning{WarmHosts: []string{frontURL.Host}, WarmConns: 1})
	t.Cleanup(pool.Close)
	pool.Start(context.Background())
	// Wait until the pool's dial is stuck in its handshake.
	waitFor(t, "the pool's first dial", func() bool { return len(first) == 1 })
	e := newTestEnv(t, func(o *proxy.Options) {
		o.Transport = tr
		o.Config.Upstreams[ups.Production] = frontURL
	})
	// The client gives up well before the 10 s handshake timeout the
	// stuck dial would end with, so waiting behind it fails the test.
	client, base := e.originClient(t)
	client.Timeout = 5 * time.Second
	resp, err := client.Post(base+"/api/rating/v2409/Rate", "application/json", nil)
	if err != nil {
		t.Fatalf("request stalled behind the pool's stuck dial: %v", err)
	}
	readBody(t, resp)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d, want 201 from UPS", resp.StatusCode)
	}
}

// pipe joins c to a new connection to addr.
func pipe(c net.Conn, addr string) {
	up, err := net.Dial("tcp", addr)
	if err != nil {
		c.Close()
		return
	}
	go func() { _, _ = copyAndClose(up, c) }()
	_, _ = copyAndClose(c, up)
}

func copyAndClose(dst, src net.Conn) (int64, error) {
	defer dst.Close()
	defer src.Close()
	return io.Copy(dst, src)
}

func TestUpstreamHTTP2OnlyWhenConfiguredAndOfferedByUPS(t *testing.T) {
	cases := []struct {
		name      string
		h2Offered bool
		h2Config  bool
		want      string
	}{
		{"default: HTTP/1.1 even when UPS offers h2", true, false, "HTTP/1.1"},
		{"http2 on and offered", true, true, "HTTP/2.0"},
		{"http2 on, UPS speaks HTTP/1.1 only", false, true, "HTTP/1.1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := newTLSUPS(t, c.h2Offered)
			e, _, _ := warmEnv(t, u, proxy.UpstreamTuning{WarmConns: 1, HTTP2: c.h2Config})
			rateThrough(t, e)
			if _, _, protos := u.snapshot(); len(protos) != 1 || protos[0] != c.want {
				t.Errorf("UPS saw %v, want one %s request", protos, c.want)
			}
		})
	}
}

// With an egress proxy, the spares are tunnelled through it like every
// other connection to UPS: nothing reaches UPS around it.
func TestWarmSparesGoThroughTheEgressProxy(t *testing.T) {
	u := newTLSUPS(t, false)
	eg := egresstest.Start(t, egresstest.Options{})
	upURL, _ := url.Parse(u.srv.URL)
	tr, err := proxy.NewTransport(proxy.TransportOptions{CAFile: writeCertPEM(t, u.srv.Certificate().Raw),
		Egress: &proxy.EgressProxy{URL: eg.URL}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	pool := proxy.TuneTransport(tr, proxy.UpstreamTuning{WarmHosts: []string{upURL.Host}, WarmConns: 2})
	t.Cleanup(pool.Close)
	pool.Start(context.Background())
	waitFor(t, "2 spare connections", func() bool { return pool.Spares(upURL.Host) == 2 })
	e := newTestEnv(t, func(o *proxy.Options) {
		o.Transport = tr
		o.Config.Upstreams[ups.Production] = upURL
	})
	rateThrough(t, e)
	waitFor(t, "the spare to be replaced", func() bool { return pool.Spares(upURL.Host) == 2 })
	conns, _, _ := u.snapshot()
	if n := len(eg.ConnectsTo(upURL.Host)); n != conns || n < 2 {
		t.Errorf("UPS accepted %d connections, the egress proxy tunnelled %d: want every one through it", conns, n)
	}
}
