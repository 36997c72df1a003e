package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
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
	p, err := New(Options{
		Logger: logger,
		Tokens: staticTokens{},
		Config: Config{
			Carriers:  []Carrier{{Name: "main", Environment: ups.Production, Default: true}},
			Upstreams: map[ups.Environment]*url.URL{ups.Production: {Scheme: "https", Host: ups.ProductionHost}},
		},
		Transport: cannedUPS{},
	})
	if err != nil {
		b.Fatal(err)
	}
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
