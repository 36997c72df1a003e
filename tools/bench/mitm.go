package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"
)

// mitmBench measures HTTPS forward-proxy connections per second (a new
// CONNECT, TLS handshake and one Rate call per connection) of a bare
// goproxy MITM and of upsproxy, for clients that keep a TLS session cache
// and clients that do not. No latency is injected: this is CPU.
func mitmBench(args []string) error {
	fs := flag.NewFlagSet("mitm", flag.ExitOnError)
	root := fs.String("root", ".", "repository root (bin/upsproxy, bin/vaultdev)")
	dur := fs.Duration("duration", 5*time.Second, "length of each run")
	workers := fs.Int("workers", 16, "concurrent clients")
	rounds := fs.Int("rounds", 1, "runs per target (round-robin; medians reported)")
	out := fs.String("out", "", "append result lines (JSON) to this file")
	bin := fs.String("bin", "", "upsproxy binary (default bin/upsproxy): an A/B against another build")
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
	warm := 2
	if *bin != "" {
		warm = -1 // another build may predate ups.warm_connections
	}
	p, err := e.startProxy(u, proxyOpts{name: "mitm", upstream: "https://" + u.addr, upsCAFile: u.caFile, warm: warm,
		prefix: "bench-mitm", bin: *bin})
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	caDir := filepath.Dir(p.caCert)
	bare := exec.Command(self, "bare-goproxy", "-ca", p.caCert, "-key", filepath.Join(caDir, "ca-key.pem"),
		"-upstream", u.addr, "-upsca", u.caFile)
	if _, err := e.start("bare", bare); err != nil {
		return err
	}
	bareAddr, err := waitLine(filepath.Join(e.dir, "bare.out"), "listening on ", 30*time.Second)
	if err != nil {
		return err
	}
	roots, err := rootsFrom(p.caCert)
	if err != nil {
		return err
	}
	type target struct {
		id, name string
		addr     string
		pid      int
		resume   bool
	}
	targets := []target{
		{"goproxy-bare", "bare goproxy MITM, no session cache", bareAddr, bare.Process.Pid, false},
		{"goproxy-bare-resume", "bare goproxy MITM, client keeps a session cache", bareAddr, bare.Process.Pid, true},
		{"upsproxy-mitm", "upsproxy MITM, no session cache", p.addr, p.cmd.Process.Pid, false},
		{"upsproxy-mitm-resume", "upsproxy MITM, client keeps a session cache", p.addr, p.cmd.Process.Pid, true},
	}
	load := loadavg()
	fmt.Printf("MITM bench: new CONNECT+TLS+Rate per connection, %d workers, %v per run, %d round(s), load %s\n", *workers, *dur, *rounds, load)
	rates := map[string][]float64{}
	cpus := map[string][]float64{}
	resumed := map[string]float64{}
	for r := 0; r < *rounds; r++ {
		for _, t := range targets {
			c0 := cpuTime(t.pid)
			n, res, err := hammerMITM(t.addr, roots, *workers, *dur, t.resume)
			if err != nil {
				return fmt.Errorf("%s: %w", t.id, err)
			}
			c1 := cpuTime(t.pid)
			rates[t.id] = append(rates[t.id], float64(n)/dur.Seconds())
			cpus[t.id] = append(cpus[t.id], float64((c1-c0).Microseconds())/float64(max(n, 1)))
			resumed[t.id] = float64(res) / float64(max(n, 1))
		}
	}
	var results []result
	for _, t := range targets {
		r := result{Section: "mitm", ID: t.id, Name: t.name, Anchor: "goproxy-bare", PerSec: median(rates[t.id]),
			CPUus: median(cpus[t.id]), Load: load, Unit: "conn/s",
			Note: fmt.Sprintf("%d workers, %.0f%% of handshakes resumed", *workers, 100*resumed[t.id])}
		results = append(results, r)
		fmt.Printf("  %-48s %8.0f conn/s   %7.0f µs CPU/conn   %3.0f%% resumed\n", t.name, r.PerSec, r.CPUus, 100*resumed[t.id])
	}
	return appendResults(*out, results)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j-1] > s[j]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// hammerMITM runs workers clients for d, each doing CONNECT, TLS and one
// Rate call per connection; it returns the calls completed and how many
// of their handshakes resumed a session.
func hammerMITM(proxyAddr string, roots *x509.CertPool, workers int, d time.Duration, resume bool) (int, int, error) {
	var cache tls.ClientSessionCache
	if resume {
		cache = tls.NewLRUClientSessionCache(64)
	}
	var (
		done, resumed atomic.Int64
		ferr          atomic.Pointer[error]
		wg            sync.WaitGroup
	)
	stop := time.Now().Add(d)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				res, err := oneMITMCall(proxyAddr, roots, cache)
				if err != nil {
					ferr.CompareAndSwap(nil, &err)
					return
				}
				done.Add(1)
				if res {
					resumed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if e := ferr.Load(); e != nil {
		return 0, 0, *e
	}
	return int(done.Load()), int(resumed.Load()), nil
}

func oneMITMCall(proxyAddr string, roots *x509.CertPool, cache tls.ClientSessionCache) (bool, error) {
	conn, err := net.DialTimeout("tcp", proxyAddr, 10*time.Second)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	const host = "wwwcie.ups.com"
	if _, err := fmt.Fprintf(conn, "CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n", host, host); err != nil {
		return false, err
	}
	br := bufio.NewReader(conn)
	cr, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return false, err
	}
	if cr.StatusCode != http.StatusOK {
		return false, fmt.Errorf("CONNECT: %s", cr.Status)
	}
	tc := tls.Client(conn, &tls.Config{ServerName: host, RootCAs: roots, ClientSessionCache: cache})
	if err := tc.Handshake(); err != nil {
		return false, err
	}
	req := fmt.Sprintf("POST /api/rating/v2409/Rate HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		host, len(rateRequest))
	if _, err := io.WriteString(tc, req); err != nil {
		return false, err
	}
	if _, err := tc.Write(rateRequest); err != nil {
		return false, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		return false, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return tc.ConnectionState().DidResume, err
}

// bareGoproxy is the baseline: goproxy's MITM with the same CA, setting a
// static Authorization header, sending to the same UPS. What a 20-line
// goproxy header injector costs (goproxy's defaults: a certificate signed
// per connection, no session resumption).
func bareGoproxy(args []string) error {
	fs := flag.NewFlagSet("bare-goproxy", flag.ExitOnError)
	caCert := fs.String("ca", "", "CA certificate")
	caKey := fs.String("key", "", "CA key")
	upstream := fs.String("upstream", "", "host:port of UPS")
	upsCA := fs.String("upsca", "", "UPS CA file")
	plain := fs.Bool("plain", false, "no MITM: HTTP forward proxy and origin-form requests to an http:// upstream (scripts/bench-vs-nginx.sh)")
	_ = fs.Parse(args)
	if *plain {
		return barePlain(*upstream)
	}
	ca, err := tls.LoadX509KeyPair(*caCert, *caKey)
	if err != nil {
		return err
	}
	if ca.Leaf, err = x509.ParseCertificate(ca.Certificate[0]); err != nil {
		return err
	}
	roots, err := rootsFrom(*upsCA)
	if err != nil {
		return err
	}
	gp := goproxy.NewProxyHttpServer()
	gp.Logger = nopLogger{}
	gp.Tr = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, MaxIdleConnsPerHost: 64, DisableCompression: true}
	mitm := &goproxy.ConnectAction{Action: goproxy.ConnectMitm, TLSConfig: goproxy.TLSConfigFromCA(&ca)}
	gp.OnRequest().HandleConnectFunc(func(host string, _ *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
		return mitm, host
	})
	gp.OnRequest().DoFunc(func(r *http.Request, _ *goproxy.ProxyCtx) (*http.Request, *http.Response) {
		r.URL.Scheme, r.URL.Host = "https", *upstream
		r.Header.Set("Authorization", "Bearer static-benchmark-token")
		return r, nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println("listening on", ln.Addr())
	return http.Serve(ln, gp)
}

// barePlain is the 20-line goproxy header injector of the throughput
// comparison: origin-form requests go to upstream over plain HTTP.
func barePlain(upstream string) error {
	gp := goproxy.NewProxyHttpServer()
	gp.Logger = nopLogger{}
	gp.Tr = &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	gp.NonproxyHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Scheme, r.URL.Host = "http", upstream
		gp.ServeHTTP(w, r)
	})
	gp.OnRequest().DoFunc(func(r *http.Request, _ *goproxy.ProxyCtx) (*http.Request, *http.Response) {
		r.Header.Set("Authorization", "Bearer static-benchmark-token")
		return r, nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println("listening on", ln.Addr())
	return http.Serve(ln, gp)
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}

var _ = strings.TrimSpace
