package proxy

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

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

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// ReadFrom stands for net/http's response, which copies with pooled buffers.
func (w *discardWriter) ReadFrom(r io.Reader) (int64, error) {
	var buf [512]byte
	var n int64
	for {
		m, err := r.Read(buf[:])
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// BenchmarkChainInProcess measures the proxy's own request path in base-URL
// mode (forward, respond, the access log line to a JSON encoder) without
// the network or a client: the allocations reported are the proxy's, plus
// 4 for cannedUPS's response.
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
	req, _ := http.NewRequest(http.MethodPost, "/api/rating/v2409/Rate", http.NoBody)
	req.RequestURI = "/api/rating/v2409/Rate"
	h := req.Header
	contentType := []string{"application/json"}
	legacy := []string{"legacy"}
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		// Reset what forward changed, without allocating.
		req.URL.Scheme, req.URL.Host = "", ""
		clear(h)
		h["Content-Type"] = contentType
		h["Accesslicensenumber"] = legacy
		p.ServeHTTP(w, req)
	}
}
