package main

// Hostile and broken clients (issue 8, items 2, 6 and 8's framing half),
// each through a real `upsproxy serve` whose UPS is a recording upstream
// in front of the simulator: what the client got, what UPS saw, and that
// the connection slot is given back within the configured deadlines.
//
// Deadlines are short (300ms) so the tests are quick; the tests never
// measure them. They assert the effect: the connection is closed, another
// client is served. Where an answer must come "at once", the deadline
// that a waiting proxy would hit is set to an hour, so only an immediate
// answer lets the test pass (each client read has a 10s guard).

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// guard bounds every client read: a proxy that never answers (or never
// closes) fails the test instead of hanging it.
const guard = 10 * time.Second

// shortLimits is a limits block with deadlines short enough for tests,
// and the given keys changed or added.
func shortLimits(change map[string]string) string {
	keys := map[string]string{
		"read_header_timeout":   `"300ms"`,
		"idle_timeout":          `"300ms"`,
		"tls_handshake_timeout": `"300ms"`,
		"request_body_timeout":  `"300ms"`,
		"request_body_min_rate": `"1KiB"`,
		"max_header_bytes":      `"8KiB"`,
	}
	maps.Copy(keys, change)
	var b strings.Builder
	b.WriteString("limits {\n")
	for k, v := range keys {
		fmt.Fprintf(&b, "  %s = %s\n", k, v)
	}
	b.WriteString("}\n")
	return b.String()
}

// connHostileEnv is an installation with short deadlines (limits changes
// some), logged in, with a recording UPS, serving.
func connHostileEnv(t *testing.T, limits map[string]string, extra string) (*env, *server, *recordingUPS) {
	t.Helper()
	e := newEnv(t, envOptions{extra: shortLimits(limits) + extra})
	e.login("main")
	rec := e.recordUPS(t)
	return e, e.serve(), rec
}

// dial opens a raw connection to the proxy.
func dial(t *testing.T, s *server) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.addr, guard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// connectRaw sends a CONNECT for the UPS Test host and checks the 200.
func connectRaw(t *testing.T, s *server, header string) net.Conn {
	t.Helper()
	c := dial(t, s)
	_ = c.SetDeadline(time.Now().Add(guard))
	fmt.Fprintf(c, "CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n%s\r\n", ups.TestHost, ups.TestHost, header)
	// Byte by byte up to the blank line: nothing of the tunnel may be
	// buffered away from the TLS client.
	var head []byte
	one := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if _, err := c.Read(one); err != nil {
			t.Fatalf("CONNECT answer: %v (got %q)", err, head)
		}
		head = append(head, one[0])
	}
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 200")) {
		t.Fatalf("CONNECT answered %q", head)
	}
	_ = c.SetDeadline(time.Time{})
	return c
}

// tunnel is a CONNECT tunnel with the client's TLS done.
func tunnel(t *testing.T, e *env, s *server, header string) *tls.Conn {
	t.Helper()
	tc := tls.Client(connectRaw(t, s, header), &tls.Config{RootCAs: e.caPool, ServerName: ups.TestHost, MinVersion: tls.VersionTLS12})
	_ = tc.SetDeadline(time.Now().Add(guard))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS through the tunnel: %v", err)
	}
	_ = tc.SetDeadline(time.Time{})
	return tc
}

// requestConn is a connection that carries requests to the proxy: plain,
// or inside a CONNECT tunnel (decrypted: the client's side of the TLS).
func requestConn(t *testing.T, e *env, s *server, inTunnel bool) net.Conn {
	t.Helper()
	if inTunnel {
		return tunnel(t, e, s, "")
	}
	return dial(t, s)
}

// readAnswer reads one response from c (within the guard).
func readAnswer(t *testing.T, c net.Conn, br *bufio.Reader, method string) pxResult {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(guard))
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read answer body: %v", err)
	}
	return pxResult{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// wantClosed checks that the proxy closes c (after whatever it still
// sends) before the guard: the slot is free again.
func wantClosed(t *testing.T, c net.Conn, r io.Reader) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(guard))
	_, err := io.Copy(io.Discard, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the proxy kept the connection open for %s", guard)
	}
}

func TestHostile_ARefusalThatNeedsNoBodyIsAnsweredAtOnceAndCloses(t *testing.T) {
	// An hour to send a body: only an answer that does not wait for it passes.
	e, s, rec := connHostileEnv(t, map[string]string{"request_body_timeout": `"1h"`}, `client "wh1" {
  password_hash = "`+pxHash(t, "wh1-proxy-password")+`"
  carrier       = "main"
}`)

	t.Run("missing proxy credentials and Content-Length 1000 with no body: 407", func(t *testing.T) {
		c := dial(t, s)
		fmt.Fprintf(c, "POST http://%s/api/rating/v2409/Rate HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", ups.TestHost, ups.TestHost)
		br := bufio.NewReader(c)
		r := readAnswer(t, c, br, http.MethodPost)
		pxWantError(t, r, http.StatusProxyAuthRequired, "UPSPROXY_PROXY_AUTH_REQUIRED")
		if r.header.Get("Proxy-Authenticate") == "" {
			t.Error("407 without Proxy-Authenticate")
		}
		wantClosed(t, c, br)
	})

	t.Run("base-URL mode, no credentials at all, Content-Length 1000 with no body: 401", func(t *testing.T) {
		c := dial(t, s)
		fmt.Fprintf(c, "POST /api/rating/v2409/Rate HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", s.addr)
		br := bufio.NewReader(c)
		r := readAnswer(t, c, br, http.MethodPost)
		pxWantError(t, r, http.StatusUnauthorized, "UPSPROXY_PROXY_AUTH_REQUIRED")
		if r.header.Get("WWW-Authenticate") != `Bearer realm="upsproxy"` {
			t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
		}
		wantClosed(t, c, br)
	})

	t.Run("inside a tunnel, a forbidden inner host with Content-Length 1000 and no body: 403", func(t *testing.T) {
		tc := tunnel(t, e, s, "Proxy-Authorization: "+pxBasic("wh1", "wh1-proxy-password")+"\r\n")
		fmt.Fprintf(tc, "POST /api/rating/v2409/Rate HTTP/1.1\r\nHost: example.com\r\nContent-Length: 1000\r\n\r\n")
		br := bufio.NewReader(tc)
		pxWantError(t, readAnswer(t, tc, br, http.MethodPost), http.StatusForbidden, "UPSPROXY_HOST_NOT_ALLOWED")
		wantClosed(t, tc, br)
	})
	if n := len(rec.requests()); n != 0 {
		t.Errorf("UPS saw %d requests", n)
	}
}

func TestHostile_ABodyThatNeverComesIsCutOffWith408AndUPSGetsNoCompleteRequest(t *testing.T) {
	// body_scan_limit 1KiB: a body with more than that sent is streamed
	// to UPS before the proxy has all of it.
	e, s, rec := connHostileEnv(t, map[string]string{"body_scan_limit": `"1KiB"`}, "")
	for _, tc := range []struct {
		name, path string
		length     int
		sent       string
	}{
		{"a Rate request whose start is read before forwarding", "/api/rating/v2409/Rate", 1000, `{"RateRequest":`},
		{"a Ship request already streaming to UPS", "/api/shipments/v2409/ship", 8000, `{"ShipmentRequest":{"Pad":"` + strings.Repeat("x", 2000)},
	} {
		for _, inTunnel := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, tunnel=%v", tc.name, inTunnel), func(t *testing.T) {
				before := len(rec.requests())
				c := requestConn(t, e, s, inTunnel)
				// Part of the body, then nothing.
				fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
					tc.path, ups.TestHost, tc.length, tc.sent)
				br := bufio.NewReader(c)
				pxWantError(t, readAnswer(t, c, br, http.MethodPost), http.StatusRequestTimeout, "UPSPROXY_REQUEST_TIMEOUT")
				wantClosed(t, c, br)
				if tc.length > 1024 {
					waitFor(t, func() bool { return len(rec.requests()) > before }, "UPS to see the aborted request")
				}
			})
		}
	}
	if n := rec.completed(); n != 0 {
		t.Errorf("UPS got %d complete requests from clients that never sent their body", n)
	}
	// A body that trickles in faster than request_body_min_rate is slow
	// but legitimate: it is forwarded whole.
	c := dial(t, s)
	body := rateBody(t)
	fmt.Fprintf(c, "POST /api/rating/v2409/Rate HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", s.addr, len(body))
	for part := range slicesChunk([]byte(body), 512) {
		time.Sleep(100 * time.Millisecond) // 5 KiB/s: above the 1 KiB/s minimum, but longer than request_body_timeout in all
		if _, err := c.Write(part); err != nil {
			t.Fatal(err)
		}
	}
	if r := readAnswer(t, c, bufio.NewReader(c), http.MethodPost); r.status != http.StatusOK {
		t.Fatalf("slow legitimate body: %d %s", r.status, r.body)
	}
	if n := rec.completed(); n != 1 {
		t.Errorf("UPS got %d complete requests, want the slow one", n)
	}
}

// slicesChunk yields b in parts of n bytes.
func slicesChunk(b []byte, n int) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			m := min(n, len(b))
			if !yield(b[:m]) {
				return
			}
			b = b[m:]
		}
	}
}

func TestHostile_SlowHeadersAreCutOffOutsideAndInsideATunnel(t *testing.T) {
	e, s, rec := connHostileEnv(t, nil, "")
	t.Run("outside: half a request line, then nothing: 408", func(t *testing.T) {
		c := dial(t, s)
		io.WriteString(c, "POST /api/rat")
		br := bufio.NewReader(c)
		pxWantError(t, readAnswer(t, c, br, http.MethodPost), http.StatusRequestTimeout, "UPSPROXY_REQUEST_TIMEOUT")
		wantClosed(t, c, br)
	})
	t.Run("outside: connected, nothing sent: closed without an answer", func(t *testing.T) {
		c := dial(t, s)
		_ = c.SetReadDeadline(time.Now().Add(guard))
		if n, _ := io.Copy(io.Discard, c); n != 0 {
			t.Errorf("%d bytes sent to a client that asked nothing", n)
		}
		wantClosed(t, c, c)
	})
	t.Run("inside a tunnel: half the headers, then nothing: 408", func(t *testing.T) {
		tc := tunnel(t, e, s, "")
		io.WriteString(tc, "POST /api/rating/v2409/Rate HTTP/1.1\r\nHost: "+ups.TestHost+"\r\nContent-Ty")
		br := bufio.NewReader(tc)
		pxWantError(t, readAnswer(t, tc, br, http.MethodPost), http.StatusRequestTimeout, "UPSPROXY_REQUEST_TIMEOUT")
		wantClosed(t, tc, br)
	})
	if n := len(rec.requests()); n != 0 {
		t.Errorf("UPS saw %d requests", n)
	}
}

func TestHostile_ATunnelThatNeverStartsTLSIsClosed(t *testing.T) {
	_, s, _ := connHostileEnv(t, nil, "")
	c := connectRaw(t, s, "")
	wantClosed(t, c, c)
}

func TestHostile_AnIdleTunnelIsClosedAfterTheHandshakeAndBetweenRequests(t *testing.T) {
	e, s, rec := connHostileEnv(t, nil, "")
	t.Run("no request after the handshake", func(t *testing.T) {
		tc := tunnel(t, e, s, "")
		wantClosed(t, tc, tc)
	})
	t.Run("keep-alive: no next request", func(t *testing.T) {
		tc := tunnel(t, e, s, "")
		body := rateBody(t)
		fmt.Fprintf(tc, "POST /api/rating/v2409/Rate HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", ups.TestHost, len(body), body)
		br := bufio.NewReader(tc)
		if r := readAnswer(t, tc, br, http.MethodPost); r.status != http.StatusOK {
			t.Fatalf("request in the tunnel: %d %s", r.status, r.body)
		}
		wantClosed(t, tc, br)
	})
	if n := rec.completed(); n != 1 {
		t.Errorf("UPS got %d complete requests, want 1", n)
	}
}

func TestHostile_OversizedHeadersOutsideAndInsideATunnelAre431AndNeverForwarded(t *testing.T) {
	e, s, rec := connHostileEnv(t, nil, "")
	for _, inside := range []bool{false, true} {
		name := "outside"
		if inside {
			name = "inside a tunnel"
		}
		t.Run(name, func(t *testing.T) {
			var c net.Conn
			if inside {
				c = tunnel(t, e, s, "")
			} else {
				c = dial(t, s)
			}
			// 1 MiB of headers against max_header_bytes = 8KiB; written
			// while the answer is read, since the proxy stops reading.
			go func() {
				fmt.Fprintf(c, "GET /api/track/v1/details/1Z HTTP/1.1\r\nHost: %s\r\n", ups.TestHost)
				pad := "X-Pad: " + strings.Repeat("p", 1000) + "\r\n"
				for range 1024 {
					if _, err := io.WriteString(c, pad); err != nil {
						return
					}
				}
				io.WriteString(c, "\r\n")
			}()
			br := bufio.NewReader(c)
			msg := pxWantError(t, readAnswer(t, c, br, http.MethodGet), http.StatusRequestHeaderFieldsTooLarge, "UPSPROXY_BAD_REQUEST")
			if !strings.Contains(msg, "max_header_bytes") {
				t.Errorf("message %q does not name the limit", msg)
			}
			wantClosed(t, c, br)
		})
	}
	if n := len(rec.requests()); n != 0 {
		t.Errorf("UPS saw %d requests", n)
	}
}

func TestHostile_WithMaxConnectionsFilledByStallersALegitimateClientIsServedAfterTheirDeadlines(t *testing.T) {
	// Every staller needs a deadline to give its slot back: with none, the
	// legitimate request below never gets a connection and times out.
	e, s, rec := connHostileEnv(t, map[string]string{"max_connections": "4"}, "")
	var stallers []net.Conn
	// A body that never comes.
	c := dial(t, s)
	fmt.Fprintf(c, "POST /api/rating/v2409/Rate HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000\r\n\r\n", s.addr)
	stallers = append(stallers, c)
	// A tunnel that never starts TLS (its 200 proves it holds a slot).
	stallers = append(stallers, connectRaw(t, s, ""))
	// A tunnel that idles after its handshake.
	stallers = append(stallers, tunnel(t, e, s, ""))
	// Half a request line.
	c = dial(t, s)
	io.WriteString(c, "GET /api/tr")
	stallers = append(stallers, c)

	r := pxDo(t, directClient(), pxRequest(t, http.MethodPost, "http://"+s.addr+"/api/rating/v2409/Rate", rateBody(t), nil))
	if r.status != http.StatusOK {
		t.Fatalf("legitimate request: %d %s", r.status, r.body)
	}
	for _, c := range stallers {
		wantClosed(t, c, c)
	}
	if n := rec.completed(); n != 1 {
		t.Errorf("UPS got %d complete requests, want the legitimate one", n)
	}
}

func TestHostile_TRACEAndMethodsUPSDoesNotUseAre405AndNothingReachesUPS(t *testing.T) {
	e, s, rec := connHostileEnv(t, nil, "")
	methods := []string{"TRACE", "PROPFIND", "FOO", "CONNECT"}
	for _, m := range methods {
		if m != "CONNECT" { // outside a tunnel, CONNECT opens one
			t.Run(m+" in base-URL mode and absolute form", func(t *testing.T) {
				for _, target := range []string{"/api/rating/v2409/Rate", "http://" + ups.TestHost + "/api/rating/v2409/Rate"} {
					c := dial(t, s)
					fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\n\r\n", m, target, s.addr)
					r := readAnswer(t, c, bufio.NewReader(c), m)
					pxWantError(t, r, http.StatusMethodNotAllowed, "UPSPROXY_METHOD_NOT_ALLOWED")
					if allow := r.header.Get("Allow"); !strings.Contains(allow, "POST") || strings.Contains(allow, "TRACE") {
						t.Errorf("Allow: %q", allow)
					}
				}
			})
		}
		t.Run(m+" inside a tunnel", func(t *testing.T) {
			tc := tunnel(t, e, s, "")
			target := "/api/rating/v2409/Rate"
			if m == "CONNECT" {
				target = "example.com:443"
			}
			fmt.Fprintf(tc, "%s %s HTTP/1.1\r\nHost: %s\r\n\r\n", m, target, ups.TestHost)
			pxWantError(t, readAnswer(t, tc, bufio.NewReader(tc), m), http.StatusMethodNotAllowed, "UPSPROXY_METHOD_NOT_ALLOWED")
		})
	}
	if n := len(rec.requests()); n != 0 {
		t.Errorf("UPS saw %d requests, e.g. %s %s", n, rec.requests()[0].method, rec.requests()[0].path)
	}
}

func TestHostile_AMalformedChunkedBodyIs400AndUPSGetsNoCompleteRequest(t *testing.T) {
	e, s, rec := connHostileEnv(t, map[string]string{"body_scan_limit": `"1KiB"`}, "")
	for _, tc := range []struct {
		name, path string
		chunk      int
	}{
		{"Rate, read before forwarding", "/api/rating/v2409/Rate", 100},
		{"Ship, already streaming to UPS", "/api/shipments/v2409/ship", 4000},
	} {
		for _, inTunnel := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, tunnel=%v", tc.name, inTunnel), func(t *testing.T) {
				before := len(rec.requests())
				c := requestConn(t, e, s, inTunnel)
				// A good chunk (past body_scan_limit, the request is
				// already streaming to UPS), then a chunk size that is not
				// hexadecimal.
				chunk := `{"ShipmentRequest":{"Pad":"` + strings.Repeat("x", tc.chunk) + `"`
				fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\nzz\r\n}}\r\n0\r\n\r\n",
					tc.path, ups.TestHost, len(chunk), chunk)
				br := bufio.NewReader(c)
				pxWantError(t, readAnswer(t, c, br, http.MethodPost), http.StatusBadRequest, "UPSPROXY_BAD_REQUEST")
				wantClosed(t, c, br)
				if tc.chunk > 1024 {
					// The streamed request was begun upstream: wait until
					// UPS has seen how it ended.
					waitFor(t, func() bool { return len(rec.requests()) > before }, "UPS to see the aborted request")
				}
			})
		}
	}
	if n := rec.completed(); n != 0 {
		t.Errorf("UPS got %d complete requests with malformed chunked bodies", n)
	}
}

func TestHostile_FramingErrorsInsideATunnelGetTheEnvelope(t *testing.T) {
	e, s, rec := connHostileEnv(t, nil, "")
	for _, tc := range []struct{ name, send string }{
		{"a request line that is not HTTP", "GARBAGE\r\n\r\n"},
		{"a header line without a colon", "GET /api/track/v1/details/1Z HTTP/1.1\r\nHost: " + ups.TestHost + "\r\nProxy-Authorization Basic TEST-LEAK-MARKER\r\n\r\n"},
		{"a Content-Length that is not a number", "POST /api/rating/v2409/Rate HTTP/1.1\r\nHost: " + ups.TestHost + "\r\nContent-Length: ten\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tlsConn := tunnel(t, e, s, "")
			io.WriteString(tlsConn, tc.send)
			br := bufio.NewReader(tlsConn)
			pxWantError(t, readAnswer(t, tlsConn, br, http.MethodGet), http.StatusBadRequest, "UPSPROXY_BAD_REQUEST")
			wantClosed(t, tlsConn, br)
		})
	}
	if n := len(rec.requests()); n != 0 {
		t.Errorf("UPS saw %d requests", n)
	}
	if strings.Contains(s.logs.String(), "TEST-LEAK-MARKER") {
		t.Error("the log quotes a malformed request line")
	}
}
