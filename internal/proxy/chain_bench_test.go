package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/upsproxy/upsproxy/internal/ups"
)

type staticTokens struct{}

func (staticTokens) Token(context.Context, string, ups.Environment) (string, error) {
	return "static-access-token", nil
}

// oneCarrierProxy is a Proxy with one default Production carrier whose
// UPS is upstream, reached through transport, and a static token.
func oneCarrierProxy(tb testing.TB, logger *zap.Logger, upstream *url.URL, transport http.RoundTripper) *Proxy {
	tb.Helper()
	p, err := New(Options{
		Logger: logger,
		Tokens: staticTokens{},
		Config: Config{
			Carriers:  []Carrier{{Name: "main", Environment: ups.Production, Default: true}},
			Upstreams: map[ups.Environment]*url.URL{ups.Production: upstream},
		},
		Transport: transport,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// cannedUPS answers every request at once, without a network.
type cannedUPS struct{}

const cannedBody = `{"RateResponse":{"Response":{"ResponseStatus":{"Code":"1"}}}}`

var cannedContentType = []string{"application/json"}

func (cannedUPS) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": cannedContentType},
		Body:          io.NopCloser(strings.NewReader(cannedBody)),
		ContentLength: int64(len(cannedBody)),
		Request:       r,
	}, nil
}

// loopConn is a client connection that sends the same request forever
// and discards what it is sent.
type loopConn struct {
	net.Conn // nil: only what the loop calls is implemented
	req      []byte
	off      int
}

func (c *loopConn) Read(b []byte) (int, error) {
	n := copy(b, c.req[c.off:])
	c.off = (c.off + n) % len(c.req)
	return n, nil
}
func (c *loopConn) Write(b []byte) (int, error)      { return len(b), nil }
func (c *loopConn) SetReadDeadline(time.Time) error  { return nil }
func (c *loopConn) SetWriteDeadline(time.Time) error { return nil }
func (c *loopConn) SetDeadline(time.Time) error      { return nil }
func (c *loopConn) Close() error                     { return nil }

// BenchmarkChainInProcess measures the proxy's own request path in base-URL
// mode (the connection loop's parse, forward, the answer's write, the
// access log line to a JSON encoder) without the network: the allocations
// reported are the proxy's and net/http's parser's, plus 4 for cannedUPS's
// response.
func BenchmarkChainInProcess(b *testing.B) {
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.InfoLevel))
	p := oneCarrierProxy(b, logger, &url.URL{Scheme: "https", Host: ups.ProductionHost}, cannedUPS{})
	conn := &loopConn{req: []byte("POST /api/rating/v2409/Rate HTTP/1.1\r\nHost: proxy\r\n" +
		"Content-Type: application/json\r\nAccessLicenseNumber: legacy\r\nContent-Length: 0\r\n\r\n")}
	c := &clientConn{p: p, raw: conn, conn: conn, remote: "127.0.0.1:1"}
	c.lr.r = conn
	c.br = bufio.NewReader(&c.lr)
	b.ReportAllocs()
	for b.Loop() {
		req, ok := c.readRequest(false)
		if !ok || !c.handle(req) {
			b.Fatal("the request was refused")
		}
	}
}

// cannedRawUPS is a loopback upstream that answers every request with the same
// canned response, parsing no more than it must (the request's head up to
// its blank line, then Content-Length bytes), so that the benchmark's CPU
// is mostly the proxy's.
func cannedRawUPS(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ln.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 30 Nov 2026 07:00:00 GMT\r\n" +
		"Content-Length: " + strconv.Itoa(len(cannedBody)) + "\r\n\r\n" + cannedBody)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					n := 0
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
						if k, v, ok := strings.Cut(string(line), ":"); ok && strings.EqualFold(k, "Content-Length") {
							n, _ = strconv.Atoi(strings.TrimSpace(v))
						}
					}
					if _, err := br.Discard(n); err != nil {
						return
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkChainUpstream is BenchmarkChainInProcess with the real upstream
// client (upstream.go) sending each request over loopback to cannedRawUPS, and
// a small JSON body: the user-space CPU of the whole request path but the
// client's socket.
func BenchmarkChainUpstream(b *testing.B) {
	addr := cannedRawUPS(b)
	tr, err := NewTransport(TransportOptions{})
	if err != nil {
		b.Fatal(err)
	}
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.WarnLevel))
	p := oneCarrierProxy(b, logger, &url.URL{Scheme: "http", Host: addr}, tr)
	const body = `{"RateRequest":{"Shipment":{"Shipper":{"ShipperNumber":"W599Y7"}}}}`
	conn := &loopConn{req: []byte("POST /api/rating/v2409/Rate HTTP/1.1\r\nHost: proxy\r\n" +
		"Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)}
	c := &clientConn{p: p, raw: conn, conn: conn, remote: "127.0.0.1:1"}
	c.lr.r = conn
	c.lr.limit(-1)
	c.br = bufio.NewReader(&c.lr)
	b.ReportAllocs()
	for b.Loop() {
		if !c.await(false) {
			b.Fatal("await")
		}
		req, ok := c.readRequest(false)
		if !ok || !c.handle(req) {
			b.Fatal("the request was refused")
		}
	}
}
