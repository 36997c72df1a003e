package proxy_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/proxy"
)

// dialProxy opens a raw client connection to the proxy.
func dialProxy(t *testing.T, e *testEnv) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", e.proxyURL.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	return conn
}

const rateRequest = "POST /api/rating/v2409/Rate HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

func readResponse(t *testing.T, br *bufio.Reader) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("read response body: %v", err)
	}
	return resp, string(body)
}

// assertClosed checks that the proxy ends the connection (EOF or reset)
// with nothing more on it.
func assertClosed(t *testing.T, conn net.Conn, br *bufio.Reader) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := io.Copy(io.Discard, br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the proxy kept the connection open")
	}
	if n > 0 {
		t.Errorf("%d more bytes after the answer", n)
	}
}

func TestAKeepAliveClientThatIdlesPastTheHotWaitIsServedOnTheSameConnection(t *testing.T) {
	// After hotIdle (500 ms) an idle connection gives its read buffer
	// back and waits with a one-byte read; that byte must start the next
	// request, pipelined requests behind it included.
	e := newTestEnv(t, nil)
	conn := dialProxy(t, e)
	br := bufio.NewReader(conn)
	for i, wait := range []time.Duration{0, 800 * time.Millisecond, 1200 * time.Millisecond} {
		time.Sleep(wait)
		if _, err := io.WriteString(conn, rateRequest); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if resp, body := readResponse(t, br); resp.StatusCode != http.StatusCreated || body != upsReplyBody {
			t.Fatalf("request %d after %v idle: %d %q", i, wait, resp.StatusCode, body)
		}
	}
	time.Sleep(800 * time.Millisecond)
	if _, err := io.WriteString(conn, rateRequest+rateRequest); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if resp, _ := readResponse(t, br); resp.StatusCode != http.StatusCreated {
			t.Fatalf("pipelined request %d: %d", i, resp.StatusCode)
		}
	}
	if got := len(e.prod.requests()); got != 5 {
		t.Errorf("UPS got %d requests, want 5", got)
	}
}

func TestAClientThatSendsOneByteAfterIdlingGetsTheHeaderDeadline(t *testing.T) {
	e := newTestEnv(t, func(o *proxy.Options) { o.Limits.ReadHeaderTimeout = 300 * time.Millisecond })
	conn := dialProxy(t, e)
	br := bufio.NewReader(conn)
	_, _ = io.WriteString(conn, rateRequest)
	readResponse(t, br)
	time.Sleep(700 * time.Millisecond) // past the hot wait: the buffer-less one
	_, _ = io.WriteString(conn, "P")
	resp, body := readResponse(t, br)
	if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get(proxy.ErrorHeader) != proxy.CodeRequestTimeout {
		t.Fatalf("got %d %q, want 408 %s", resp.StatusCode, body, proxy.CodeRequestTimeout)
	}
	assertClosed(t, conn, br)
	if got := len(e.prod.requests()); got != 1 {
		t.Errorf("UPS got %d requests, want 1", got)
	}
}

func TestMalformedRequestsOnPlainConnectionsGetTheEnvelopeAndReachNothing(t *testing.T) {
	e := newTestEnv(t, nil)
	cases := []struct {
		name, request string
		status        int
	}{
		{"no Host in HTTP/1.1", "GET /api/track/v1/details/1Z HTTP/1.1\r\n\r\n", 400},
		{"two Host headers", "GET /api/track/v1/details/1Z HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"malformed Host", "GET /api/track/v1/details/1Z HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"space in a header name", "GET /api/track/v1/details/1Z HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", 400},
		{"control byte in a value", "GET /api/track/v1/details/1Z HTTP/1.1\r\nHost: a\r\nX-A: \x01\r\n\r\n", 400},
		{"HTTP/2 request line", "GET /api/track/v1/details/1Z HTTP/2.0\r\nHost: a\r\n\r\n", 400},
		{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400},
		{"conflicting lengths", "POST /api/rating/v2409/Rate HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400},
		{"headers over the limit", "GET /api/track/v1/details/1Z HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("a", proxy.DefaultMaxHeaderBytes+8192) + "\r\n\r\n", 431},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := dialProxy(t, e)
			go func() { _, _ = io.WriteString(conn, c.request) }()
			br := bufio.NewReader(conn)
			resp, body := readResponse(t, br)
			if resp.StatusCode != c.status || resp.Header.Get(proxy.ErrorHeader) != proxy.CodeBadRequest {
				t.Fatalf("got %d %s %q, want %d %s", resp.StatusCode, resp.Header.Get(proxy.ErrorHeader), body, c.status, proxy.CodeBadRequest)
			}
			if !strings.Contains(body, `"code":"UPSPROXY_BAD_REQUEST"`) {
				t.Errorf("body %q is not UPS's envelope", body)
			}
			assertClosed(t, conn, br)
		})
	}
	if got := len(e.prod.requests()) + len(e.test.requests()); got != 0 {
		t.Errorf("UPS got %d requests, want none", got)
	}
}

func TestHTTP10ClientsKeepTheConnectionOnlyWhenTheyAskForIt(t *testing.T) {
	e := newTestEnv(t, nil)
	const req10 = "POST /api/rating/v2409/Rate HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"

	conn := dialProxy(t, e)
	br := bufio.NewReader(conn)
	for i := range 2 {
		_, _ = io.WriteString(conn, req10+"Connection: keep-alive\r\n\r\n{}")
		resp, _ := readResponse(t, br)
		if resp.StatusCode != http.StatusCreated || !strings.EqualFold(resp.Header.Get("Connection"), "keep-alive") {
			t.Fatalf("keep-alive request %d: %d, Connection %q", i, resp.StatusCode, resp.Header.Get("Connection"))
		}
	}

	conn = dialProxy(t, e)
	br = bufio.NewReader(conn)
	_, _ = io.WriteString(conn, req10+"\r\n{}")
	if resp, _ := readResponse(t, br); resp.StatusCode != http.StatusCreated || !resp.Close {
		t.Fatalf("plain HTTP/1.0 request: %d, close %v", resp.StatusCode, resp.Close)
	}
	assertClosed(t, conn, br)
}

func TestShutdownClosesIdleConnectionsAtOnceAndLetsBusyOnesFinish(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	arrived := make(chan struct{}, 1)
	e := newTestEnv(t, nil)
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before UPS's Close
	e.prod.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/rating/v2409/Shop" {
			arrived <- struct{}{}
			<-release
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, upsReplyBody)
	})

	idle := dialProxy(t, e)
	idleR := bufio.NewReader(idle)
	_, _ = io.WriteString(idle, rateRequest)
	readResponse(t, idleR)

	busy := dialProxy(t, e)
	busyR := bufio.NewReader(busy)
	_, _ = io.WriteString(busy, strings.Replace(rateRequest, "Rate", "Shop", 1))
	<-arrived

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- e.proxy.Shutdown(ctx)
	}()
	assertClosed(t, idle, idleR)
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	once.Do(func() { close(release) })
	resp, body := readResponse(t, busyR)
	if resp.StatusCode != http.StatusCreated || body != upsReplyBody || !resp.Close {
		t.Fatalf("busy connection: %d %q close=%v, want UPS's 201 and Connection: close", resp.StatusCode, body, resp.Close)
	}
	assertClosed(t, busy, busyR)
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", e.proxyURL.Host, time.Second); err == nil {
		t.Error("the listener still accepts after Shutdown")
	}
}
