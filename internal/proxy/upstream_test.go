package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// connServer is an httptest server that records its connections.
type connServer struct {
	*httptest.Server
	opened, closed atomic.Int32
}

func newConnServer(t *testing.T, h http.HandlerFunc) *connServer {
	t.Helper()
	s := &connServer{}
	s.Server = httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			s.closed.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func newTestUpstreamClient(t *testing.T, mod func(*http.Transport)) *upstreamClient {
	t.Helper()
	tr, err := NewTransport(TransportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(tr)
	}
	c := newUpstreamClient(tr)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// post sends body as forward does (a memBody) and returns the response.
func post(ctx context.Context, c *upstreamClient, url, body string) (*http.Response, error) {
	mb := &memBody{}
	mb.Reset([]byte(body))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return nil, err
	}
	req.Body, req.ContentLength = mb, int64(len(body))
	return c.RoundTrip(req)
}

func (c *upstreamClient) idleCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nidle
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("never happened: %s", what)
}

func TestUpstreamClientKeepsOneConnectionForSequentialRequestsAndSendsTheBody(t *testing.T) {
	var got []string
	var mu sync.Mutex
	s := newConnServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
		_, _ = io.WriteString(w, `{"ok":true}`)
	})
	c := newTestUpstreamClient(t, nil)
	for i := 0; i < 5; i++ {
		resp, err := post(context.Background(), c, s.URL+"/api/x", `{"n":1}`)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if string(b) != `{"ok":true}` {
			t.Fatalf("body %q", b)
		}
	}
	if n := s.opened.Load(); n != 1 {
		t.Fatalf("UPS saw %d connections for 5 sequential requests, want 1", n)
	}
	if n := c.idleCount(); n != 1 {
		t.Fatalf("%d idle connections in the client's own pool, want 1", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 5 || got[4] != `{"n":1}` {
		t.Fatalf("UPS got %q", got)
	}
}

func TestUpstreamClientNeverPoolsAConnectionCloseAnswerOrABodyClosedEarly(t *testing.T) {
	s := newConnServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		_, _ = io.WriteString(w, strings.Repeat("x", 64<<10))
	})
	c := newTestUpstreamClient(t, nil)

	resp, err := post(context.Background(), c, s.URL+"/close", "{}")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if n := c.idleCount(); n != 0 {
		t.Fatalf("a Connection: close answer left %d pooled connections", n)
	}
	waitUntil(t, "UPS sees the Connection: close connection closed", func() bool { return s.closed.Load() == 1 })

	resp, err = post(context.Background(), c, s.URL+"/big", "{}")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if n := c.idleCount(); n != 0 {
		t.Fatalf("a body closed before its end left %d pooled connections", n)
	}
	waitUntil(t, "UPS sees the half-read connection closed", func() bool { return s.closed.Load() == 2 })
	if _, err := resp.Body.Read(buf); err == nil {
		t.Fatal("read after Close succeeded")
	}

	resp, err = post(context.Background(), c, s.URL+"/big", "{}")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if n := s.opened.Load(); n != 3 {
		t.Fatalf("UPS saw %d connections, want 3 (none reused)", n)
	}
	if n := c.idleCount(); n != 1 {
		t.Fatalf("a body read to its end left %d pooled connections, want 1", n)
	}
}

// rawUPS is a TCP server whose every connection is handled by serve.
func rawUPS(t *testing.T, serve func(n int, c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for n := 1; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(n int) {
				defer c.Close()
				serve(n, c)
			}(n)
		}
	}()
	return "http://" + ln.Addr().String()
}

const okAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// dyingUPS serves connection n (1-based) with okAnswer, counting in posts
// the POSTs read as a connection's second request; when dies(n), the
// connection closes on reading its second request, before any answer.
func dyingUPS(posts *atomic.Int32, dies func(n int) bool) func(n int, c net.Conn) {
	return func(n int, c net.Conn) {
		br := bufio.NewReader(c)
		for i := 0; ; i++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			if req.Method == http.MethodPost && i == 1 {
				posts.Add(1)
			}
			if i == 1 && dies(n) {
				return
			}
			if _, err := io.WriteString(c, okAnswer); err != nil {
				return
			}
		}
	}
}

func TestUpstreamClientRetriesAGetOnAFreshConnectionWhenAReusedOneDiesButNeverAPost(t *testing.T) {
	var posts atomic.Int32
	// The first kept-alive connection dies with the second request read,
	// before any answer.
	url := rawUPS(t, dyingUPS(&posts, func(n int) bool { return n == 1 }))
	c := newTestUpstreamClient(t, nil)
	get := func() (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodGet, url+"/api/track", nil)
		return c.RoundTrip(req)
	}
	resp, err := get()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	resp, err = get()
	if err != nil {
		t.Fatalf("GET on a connection that died was not retried: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("body %q", b)
	}

	// The same with a POST on a new server: it reached UPS, it is not sent twice.
	c2 := newTestUpstreamClient(t, nil)
	url2 := rawUPS(t, dyingUPS(&posts, func(int) bool { return true }))
	for i := 0; i < 2; i++ {
		resp, err := post(context.Background(), c2, url2+"/api/ship", `{"Ship":1}`)
		if i == 0 {
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			continue
		}
		if err == nil {
			_ = resp.Body.Close()
			t.Fatal("a POST on a connection that died after reading it succeeded: it was sent twice")
		}
	}
	if n := posts.Load(); n != 1 {
		t.Fatalf("UPS read the second POST %d times, want 1", n)
	}
}

func TestUpstreamClientDialsAFreshConnectionWhenThePooledOneWasClosedWhileIdle(t *testing.T) {
	var conns atomic.Int32
	url := rawUPS(t, func(n int, c net.Conn) {
		conns.Add(1)
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		// Answer as keep-alive, then close at once (an idle timeout on
		// UPS's side).
		_, _ = io.WriteString(c, okAnswer)
	})
	c := newTestUpstreamClient(t, nil)
	for i := 0; i < 2; i++ {
		// A POST: it must go through without a retry, on a new connection.
		resp, err := post(context.Background(), c, url+"/api/ship", "{}")
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if i == 0 {
			waitUntil(t, "the pooled connection is closed by UPS", func() bool {
				c.mu.Lock()
				defer c.mu.Unlock()
				for _, hp := range c.hosts {
					for _, pc := range hp.idle {
						return peekIdle(pc.conn) == peekClosed
					}
				}
				return false
			})
		}
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("UPS saw %d connections, want 2", n)
	}
}

func TestUpstreamClientCancellationClosesTheConnection(t *testing.T) {
	closed, got := make(chan struct{}), make(chan struct{})
	url := rawUPS(t, func(n int, c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		close(got)
		// Never answer; wait for the client to hang up.
		_, _ = io.Copy(io.Discard, br)
		close(closed)
	})
	c := newTestUpstreamClient(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := post(ctx, c, url+"/api/ship", "{}")
		errc <- err
	}()
	<-got
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("UPS never saw the connection closed")
	}
}

func TestUpstreamClientBoundsIdleConnectionsPerHostAndClosesThemWhenIdleTooLong(t *testing.T) {
	release := make(chan struct{})
	var arrived sync.WaitGroup
	arrived.Add(4)
	s := newConnServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			arrived.Done()
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	})
	c := newTestUpstreamClient(t, func(tr *http.Transport) {
		tr.MaxIdleConnsPerHost = 2
		tr.IdleConnTimeout = time.Hour
	})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := post(context.Background(), c, s.URL+"/hold", "{}")
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}()
	}
	arrived.Wait()
	close(release)
	wg.Wait()
	if n := c.idleCount(); n != 2 {
		t.Fatalf("%d idle connections, want the per-host bound 2", n)
	}
	waitUntil(t, "UPS sees the 2 connections over the bound closed", func() bool { return s.closed.Load() == 2 })

	// An idle timeout closes what stays unused.
	c2 := newTestUpstreamClient(t, func(tr *http.Transport) { tr.IdleConnTimeout = 20 * time.Millisecond })
	resp, err := post(context.Background(), c2, s.URL+"/", "{}")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	waitUntil(t, "the idle connection is closed after the idle timeout", func() bool { return s.closed.Load() == 3 })
	if n := c2.idleCount(); n != 0 {
		t.Fatalf("%d idle connections after the idle timeout", n)
	}
}

func TestUpstreamClientResponseHeaderTimeoutIsATimeout(t *testing.T) {
	url := rawUPS(t, func(n int, c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, c)
	})
	c := newTestUpstreamClient(t, func(tr *http.Transport) { tr.ResponseHeaderTimeout = 20 * time.Millisecond })
	c.headerTimeout = 20 * time.Millisecond
	_, err := post(context.Background(), c, url+"/api/ship", "{}")
	if err == nil || !isTimeout(err) {
		t.Fatalf("err %v, want a timeout (504)", err)
	}
}

func TestUpstreamClientSkipsInformationalAnswersAndLeavesStreamedBodiesToTheTransport(t *testing.T) {
	url := rawUPS(t, func(n int, c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			if _, err := io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"+okAnswer); err != nil {
				return
			}
		}
	})
	c := newTestUpstreamClient(t, nil)
	resp, err := post(context.Background(), c, url+"/api/x", "{}")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("status %d body %q", resp.StatusCode, b)
	}
	if c.idleCount() != 1 {
		t.Fatal("the in-memory request did not go through the client's own pool")
	}
	// A streamed body (unknown to be in memory) goes to the transport.
	req, _ := http.NewRequest(http.MethodPost, url+"/api/x", io.NopCloser(strings.NewReader("{}")))
	req.Body = struct{ io.ReadCloser }{req.Body}
	req.ContentLength = 2
	if _, ok := c.handles(req); ok {
		t.Fatal("a streamed body was taken by the client")
	}
	resp, err = c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
}

// slowDials makes tr's dials take d (and fail with err, when set),
// counting them.
func slowDials(tr *http.Transport, d time.Duration, err error, n *atomic.Int32) {
	var dialer net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		n.Add(1)
		time.Sleep(d)
		if err != nil {
			return nil, err
		}
		return dialer.DialContext(ctx, network, addr)
	}
}

// burstOf sends n concurrent requests and returns their errors.
func burstOf(c *upstreamClient, url string, n int) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := post(context.Background(), c, url, "{}")
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	return errs
}

func TestUpstreamClientServesABurstLargerThanThePoolWithTheConnectionsComingBackNotADialEach(t *testing.T) {
	var got atomic.Int32
	s := newConnServer(t, func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		_, _ = io.WriteString(w, "ok")
	})
	var dials atomic.Int32
	c := newTestUpstreamClient(t, func(tr *http.Transport) {
		tr.MaxIdleConnsPerHost = 2
		// A dial (with its TLS handshake) takes much longer than an
		// answer, as it does against UPS's quick calls.
		slowDials(tr, 100*time.Millisecond, nil, &dials)
	})
	for _, err := range burstOf(c, s.URL+"/warm", 2) {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Both dials land in the pool, even when one request was served by
	// the other's connection coming back.
	waitUntil(t, "2 idle connections after the warm-up", func() bool { return c.idleCount() == 2 })
	before := dials.Load()
	const n = 200
	for i, err := range burstOf(c, s.URL+"/rate", n) {
		if err != nil {
			t.Fatalf("request %d of the burst: %v", i+1, err)
		}
	}
	if g := got.Load(); g != n+2 {
		t.Fatalf("UPS answered %d requests, want %d", g, n+2)
	}
	// The 2 pooled connections serve most of the burst; past the pool,
	// at most extraDials dials are in flight (a second wave at most on a
	// slow machine). Before, every request past the pool dialled.
	if d := dials.Load() - before; d > 2*extraDials {
		t.Fatalf("a burst of %d over a pool of 2 dialled %d connections to UPS, want at most %d", n, d, 2*extraDials)
	}
}

func TestUpstreamClientDialsForEveryWaiterUpToThePoolSizeAndBeyondItForCallsThatHold(t *testing.T) {
	// 4 pooled connections at most, and 4+extraDials calls that UPS holds
	// until all of them have arrived: a cold pool must not make any of
	// them queue behind another, even past the pool's size.
	const n = 4 + extraDials
	var arrived sync.WaitGroup
	arrived.Add(n)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	s := newConnServer(t, func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		select {
		case <-all:
			_, _ = io.WriteString(w, "ok")
		case <-time.After(10 * time.Second):
			http.Error(w, "not all calls arrived together", http.StatusGatewayTimeout)
		}
	})
	c := newTestUpstreamClient(t, func(tr *http.Transport) { tr.MaxIdleConnsPerHost = 4 })
	for i, err := range burstOf(c, s.URL+"/ship", n) {
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	if o := s.opened.Load(); o != n {
		t.Fatalf("UPS saw %d connections, want %d", o, n)
	}
}

func TestUpstreamClientFailsEveryWaiterOfABurstWhenUPSCannotBeReached(t *testing.T) {
	var dials atomic.Int32
	refused := errors.New("dial tcp: connection refused")
	c := newTestUpstreamClient(t, func(tr *http.Transport) {
		tr.MaxIdleConnsPerHost = 4
		slowDials(tr, 50*time.Millisecond, refused, &dials)
	})
	const n = 100
	for i, err := range burstOf(c, "http://ups.invalid/rate", n) {
		if !errors.Is(err, refused) {
			t.Fatalf("request %d: %v, want the dial's error", i+1, err)
		}
	}
	// One wave of dials (the pool's size and extraDials) answers the
	// whole burst, instead of one dial per request.
	if d := dials.Load(); d > 4+extraDials {
		t.Fatalf("%d dials for a burst of %d against an unreachable UPS, want at most %d", d, n, 4+extraDials)
	}
}

func TestUpstreamClientAWaiterThatGivesUpLeavesTheConnectionItWasDialledToThePool(t *testing.T) {
	release := make(chan struct{})
	s := newConnServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	})
	dialGate := make(chan struct{})
	var dials atomic.Int32
	c := newTestUpstreamClient(t, func(tr *http.Transport) {
		tr.MaxIdleConnsPerHost = 1
		var d net.Dialer
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if dials.Add(1) == 2 {
				<-dialGate
			}
			return d.DialContext(ctx, network, addr)
		}
	})
	held := make(chan error, 1)
	go func() { held <- burstOf(c, s.URL+"/hold", 1)[0] }()
	waitUntil(t, "the first call is at UPS", func() bool { return s.opened.Load() == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		_, err := post(ctx, c, s.URL+"/rate", "{}")
		gaveUp <- err
	}()
	waitUntil(t, "the second call waits for its dial", func() bool { return dials.Load() == 2 })
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("the call that gave up returned %v", err)
	}
	close(dialGate)
	waitUntil(t, "the late dial's connection is pooled", func() bool { return c.idleCount() == 1 })
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	for _, err := range burstOf(c, s.URL+"/rate", 1) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if o := s.opened.Load(); o != 2 {
		t.Fatalf("UPS saw %d connections, want 2", o)
	}
}
