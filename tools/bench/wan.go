package main

import (
	"bytes"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"sync"
	"time"
)

// wanBench compares, with latency injected between the clients/proxy and
// UPS, how long a 1 KB Rate call takes direct and through upsproxy.
func wanBench(args []string) error {
	fs := flag.NewFlagSet("wan", flag.ExitOnError)
	root := fs.String("root", ".", "repository root (bin/upsproxy, bin/vaultdev)")
	oneWay := fs.Duration("latency", 20*time.Millisecond, "latency injected in each direction")
	n := fs.Int("requests", 100, "timed requests per worker and target")
	workers := fs.Int("workers", 4, "concurrent clients per target")
	warm := fs.Int("warm", 2, "ups.warm_connections of the proxy")
	h2 := fs.Bool("http2", false, "ups.http2 of the proxy")
	out := fs.String("out", "", "append result lines (JSON) to this file")
	bin := fs.String("bin", "", "upsproxy binary (default bin/upsproxy); with -warm -1 one that predates ups.warm_connections")
	_ = fs.Parse(args)

	e, err := newEnv(*root)
	if err != nil {
		return err
	}
	defer e.close()
	if err := e.startVault(); err != nil {
		return err
	}
	u, err := e.startFakeUPS()
	if err != nil {
		return err
	}
	defer u.close()
	w, err := startWAN(u.addr, *oneWay)
	if err != nil {
		return err
	}
	defer w.close()
	upsURL := "https://" + w.addr
	upsExtra := ""
	if *h2 {
		upsExtra = "  http2 = true"
	}
	p, err := e.startProxy(u, proxyOpts{name: "wan", upstream: upsURL, upsCAFile: u.caFile, warm: *warm,
		extraUPS: upsExtra, bin: *bin})
	if err != nil {
		return err
	}
	upsRoots, err := rootsFrom(u.caFile)
	if err != nil {
		return err
	}
	mitmRoots, err := rootsFrom(p.caCert)
	if err != nil {
		return err
	}
	proxyURL, _ := url.Parse("http://" + p.addr)
	rate := "/api/rating/v2409/Rate"

	type target struct {
		name, anchor, url string
		client            func() *http.Client // one per worker
		auth              bool                // the client sends its own bearer token (direct)
	}
	perConn := func(tr *http.Transport) func() *http.Client {
		tr.DisableKeepAlives = true
		return func() *http.Client { return &http.Client{Transport: tr, Timeout: time.Minute} }
	}
	keepAlive := func(mk func() *http.Transport) func() *http.Client {
		return func() *http.Client { return &http.Client{Transport: mk(), Timeout: time.Minute} }
	}
	targets := []target{
		{"direct, new TLS connection per call", "direct-newconn", upsURL + rate,
			perConn(&http.Transport{TLSClientConfig: &tls.Config{RootCAs: upsRoots}}), true},
		{"upsproxy base-URL, new connection per call", "direct-newconn", "http://" + p.addr + rate,
			perConn(&http.Transport{}), false},
		{"upsproxy HTTPS proxy, new CONNECT+TLS per call", "direct-newconn", "https://wwwcie.ups.com" + rate,
			perConn(&http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: mitmRoots}}), false},
		{"direct, keep-alive", "direct-keepalive", upsURL + rate,
			keepAlive(func() *http.Transport { return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: upsRoots}} }), true},
		{"upsproxy base-URL, keep-alive", "direct-keepalive", "http://" + p.addr + rate,
			keepAlive(func() *http.Transport { return &http.Transport{} }), false},
	}
	ids := []string{"direct-newconn", "proxy-base-newconn", "proxy-mitm-newconn", "direct-keepalive", "proxy-base-keepalive"}
	load := loadavg()
	fmt.Printf("WAN bench: %v each way, %d workers x %d requests per target, 1 KB Rate, load %s\n", *oneWay, *workers, *n, load)
	var results []result
	// The first call after start-up: whether the proxy dialled UPS before
	// it was needed (ups.warm_connections) or dials it now.
	time.Sleep(2 * time.Second)
	first, err := measure("http://"+p.addr+rate, 1, 1, perConn(&http.Transport{}), false, 0)
	if err != nil {
		return fmt.Errorf("first call: %w", err)
	}
	results = append(results, result{Section: "wan", ID: "proxy-first-call", Name: "upsproxy base-URL, first call after start-up",
		Anchor: "direct-newconn", P50ms: ms(first[0]), P99ms: ms(first[0]), N: 1, Load: load,
		Note: fmt.Sprintf("%v each way; warm_connections=%d http2=%v", *oneWay, *warm, *h2)})
	for i, t := range targets {
		lat, err := measure(t.url, *workers, *n, t.client, t.auth, 3)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		r := result{Section: "wan", ID: ids[i], Name: t.name, Anchor: t.anchor,
			P50ms: ms(percentile(lat, 50)), P99ms: ms(percentile(lat, 99)), N: len(lat), Load: load,
			Note: fmt.Sprintf("%v each way; warm_connections=%d http2=%v", *oneWay, *warm, *h2)}
		results = append(results, r)
		fmt.Printf("  %-50s p50 %7.1f ms   p99 %7.1f ms\n", t.name, r.P50ms, r.P99ms)
	}
	fmt.Printf("  %-50s       %7.1f ms\n", results[0].Name, results[0].P50ms)
	return appendResults(*out, results)
}

// measure runs workers clients, each sending n timed requests (after
// untimed ones) one at a time, and returns every latency.
func measure(u string, workers, n int, client func() *http.Client, auth bool, untimed int) ([]time.Duration, error) {
	var (
		mu   sync.Mutex
		all  []time.Duration
		ferr error
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client()
			for i := range n + untimed {
				req, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader(rateRequest))
				req.Header.Set("Content-Type", "application/json")
				if auth {
					req.Header.Set("Authorization", "Bearer direct-client-token")
				}
				start := time.Now()
				resp, err := c.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				d := time.Since(start)
				mu.Lock()
				if err != nil && ferr == nil {
					ferr = err
				}
				if i >= untimed {
					all = append(all, d)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return all, ferr
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	var a, b5, c float64
	fmt.Sscan(string(b), &a, &b5, &c)
	return fmt.Sprintf("%.2f %.2f %.2f", a, b5, c)
}
