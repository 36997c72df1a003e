package proxy_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/proxy"
	"github.com/upsproxy/upsproxy/internal/ups"
)

// BenchmarkStreaming50MBResponse pushes a 50 MB response (a batch of
// labels) from UPS through the proxy to a client in base-URL mode and
// reports, besides ns/op and allocs, how much memory that costs:
//
//	total-alloc-B/op   bytes allocated per 50 MB response (proxy, client and
//	                   upstream together, all in this process)
//	peak-heap-growth-B the most the live heap grew above its level before
//	                   the loop, sampled every millisecond while streaming
//
// A proxy that buffered responses would show about 50 MB in both.
func BenchmarkStreaming50MBResponse(b *testing.B) {
	const size = 50 << 20
	// ZPL labels, as a label batch would carry them.
	chunk := bytes.Repeat([]byte("^XA^FO50,50^ADN,36,20^FDUPS 1Z999AA10123456784^FS^XZ\n"), 640)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/octet-stream")
		for sent := 0; sent < size; {
			n := min(len(chunk), size-sent)
			if _, err := w.Write(chunk[:n]); err != nil {
				return
			}
			sent += n
		}
	}))
	b.Cleanup(up.Close)
	upURL, _ := url.Parse(up.URL)
	e := newTestEnv(b, func(o *proxy.Options) {
		o.Logger = zap.NewNop()
		o.Config.Upstreams = map[ups.Environment]*url.URL{ups.Production: upURL, ups.Test: upURL}
	})
	client, base := e.originClient(b)
	client.Timeout = time.Minute

	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	heapNow := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	runtime.GC()
	baseline := heapNow()
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if h := heapNow(); h > peak.Load() {
					peak.Store(h)
				}
			}
		}
	}()

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Post(base+"/api/shipments/v2409/ship", "application/json", strings.NewReader(`{"ShipmentRequest":{}}`))
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != size {
			b.Fatalf("client got %d bytes (%v), want %d", n, err, size)
		}
	}
	runtime.ReadMemStats(&after)
	close(stop)
	<-sampled
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N), "total-alloc-B/op")
	growth := uint64(0)
	if p := peak.Load(); p > baseline {
		growth = p - baseline
	}
	b.ReportMetric(float64(growth), "peak-heap-growth-B")
}
