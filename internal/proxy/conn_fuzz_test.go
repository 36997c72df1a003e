package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// scriptedConn is a client connection that sends in and records what the
// proxy answers; after in, the client has closed its side.
type scriptedConn struct {
	net.Conn // nil: only what the loop calls is implemented
	in       *bytes.Reader
	out      bytes.Buffer
}

func (c *scriptedConn) Read(b []byte) (int, error)       { return c.in.Read(b) }
func (c *scriptedConn) Write(b []byte) (int, error)      { return c.out.Write(b) }
func (c *scriptedConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptedConn) SetWriteDeadline(time.Time) error { return nil }
func (c *scriptedConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptedConn) Close() error                     { return nil }

// FuzzClientConn feeds arbitrary bytes to the connection loop, as a client
// that lies about framing would. Whatever it sends, the loop must end,
// never panic (it would recover and log an ERROR, which fails here), and
// what it wrote back must be a sequence of well-formed HTTP/1.1 answers,
// the proxy's own ones in UPS's JSON envelope.
func FuzzClientConn(f *testing.F) {
	for _, s := range []string{
		"POST /api/rating/v2409/Rate HTTP/1.1\r\nHost: p\r\nContent-Length: 2\r\n\r\n{}",
		"POST /api/rating/v2409/Rate HTTP/1.1\r\nHost: p\r\nContent-Length: 2\r\n\r\n{}\r\nGET /api/track/v1/details/1Z HTTP/1.1\r\nHost: p\r\n\r\n",
		"POST /api/rating/v2409/Rate HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		"POST /api/rating/v2409/Rate HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nzz\r\n",
		"POST http://wwwcie.ups.com/api/rating/v2409/Rate HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}",
		"CONNECT onlinetools.ups.com:443 HTTP/1.1\r\nHost: onlinetools.ups.com:443\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: p\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n{}}",
		"\r\n\r\nGET /api/track/v1/details/1Z HTTP/1.1\r\nHost: p\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	core, logs := observer.New(zapcore.ErrorLevel)
	p := oneCarrierProxy(f, zap.New(core), &url.URL{Scheme: "https", Host: ups.ProductionHost}, cannedUPS{})
	f.Fuzz(func(t *testing.T, in []byte) {
		conn := &scriptedConn{in: bytes.NewReader(in)}
		c := &clientConn{p: p, raw: conn, conn: conn, remote: "192.0.2.1:4000"}
		c.serve()
		if l := logs.TakeAll(); len(l) > 0 {
			t.Fatalf("the loop logged %q: %v", l[0].Message, l[0].ContextMap())
		}
		br := bufio.NewReader(&conn.out)
		for {
			if _, err := br.Peek(1); err == io.EOF {
				return
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("the answer is not HTTP: %v\n%q", err, conn.out.Bytes())
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("answer body: %v", err)
			}
			if code := resp.Header.Get(ErrorHeader); code != "" && !json.Valid(body) {
				t.Fatalf("%s answered without the envelope: %q", code, body)
			}
			if resp.StatusCode == http.StatusContinue {
				continue
			}
		}
	})
}
