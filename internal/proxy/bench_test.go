package proxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/upsproxy/upsproxy/internal/proxy"
	"github.com/upsproxy/upsproxy/internal/ups"
)

// benchProxy runs the proxy over loopback in front of a minimal UPS, with a
// JSON access log written to io.Discard (production's encoder, no I/O), so
// numbers compare with nginx injecting a static header and logging.
func benchProxy(b *testing.B) *testEnv {
	b.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, upsReplyBody)
	}))
	b.Cleanup(up.Close)
	upURL, _ := url.Parse(up.URL)
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.InfoLevel))
	e := newTestEnv(b, func(o *proxy.Options) {
		o.Logger = logger
		o.Config.Upstreams = map[ups.Environment]*url.URL{ups.Production: upURL, ups.Test: upURL}
	})
	return e
}

func runBench(b *testing.B, client *http.Client, target string) {
	b.Helper()
	const body = `{"RateRequest":{"Shipment":{"Shipper":{"ShipperNumber":"W599Y7"}}}}`
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("AccessLicenseNumber", "legacy")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkProxyOriginForm: base-URL mode, keep-alive client, whole round
// trip (client, proxy and upstream allocations all count).
func BenchmarkProxyOriginForm(b *testing.B) {
	e := benchProxy(b)
	client, base := e.originClient(b)
	runBench(b, client, base+"/api/rating/v2409/Rate")
}

// BenchmarkProxyAbsoluteForm: HTTP forward proxy mode.
func BenchmarkProxyAbsoluteForm(b *testing.B) {
	e := benchProxy(b)
	client, base := e.forwardClient(b)
	runBench(b, client, base+"/api/rating/v2409/Rate")
}

// BenchmarkProxyMITM: HTTPS forward proxy mode, requests over one
// established CONNECT tunnel (the handshake is amortized, as with a
// keep-alive client).
func BenchmarkProxyMITM(b *testing.B) {
	e := benchProxy(b)
	client, base := e.mitmClient(b, ups.ProductionHost)
	runBench(b, client, base+"/api/rating/v2409/Rate")
}
