package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/upssim"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// scaleBench measures what many clients and many carriers cost: RSS with
// idle keep-alive client connections; start-up, RSS, Vault traffic and
// the spread of proactive refreshes with 1,000 carriers x 2 environments;
// and a refresh storm.
func scaleBench(args []string) error {
	fs := flag.NewFlagSet("scale", flag.ExitOnError)
	root := fs.String("root", ".", "repository root (bin/upsproxy, bin/vaultdev)")
	idle := fs.Int("idle", 10000, "idle keep-alive client connections")
	settle := fs.Duration("idle-settle", 130*time.Second, "how long the connections stay idle before RSS is read again (the Go runtime forces a GC every 2 minutes, which shrinks idle goroutines' stacks)")
	carriers := fs.Int("carriers", 1000, "carriers (each in test and production)")
	steady := fs.Duration("steady", 30*time.Second, "steady-state window for Vault traffic")
	accessTTL := fs.Duration("access-ttl", 100*time.Second, "access-token lifetime of the many-carrier run (proactive refreshes come at ~80% of it)")
	storm := fs.Int("storm", 1000, "concurrent requests of the refresh storm")
	refreshDelay := fs.Duration("refresh-delay", 200*time.Millisecond, "how long UPS takes to answer a refresh in the storm")
	stormRounds := fs.Int("storm-rounds", 5, "storms (each with its own valid-token baseline); figures are medians")
	stormGap := fs.Duration("storm-gap", 15*time.Second, "time between storms (a warm-up, the storm, a warm-up and the baseline must fit)")
	stormVaultTimer := fs.Bool("storm-vault-timer", false, "send the storm's Vault calls through the bench's timing proxy, for per-call timings; that proxy shares the bench process's CPU with the storm's clients and delays the very calls it times")
	out := fs.String("out", "", "append result lines (JSON) to this file")
	_ = fs.Parse(args)

	raiseNoFile()
	e, err := newEnv(*root)
	if err != nil {
		return err
	}
	defer e.close()
	if err := e.startVault(); err != nil {
		return err
	}
	var results []result
	add := func(id, name string, v float64, unit, note string) {
		r := result{Section: "scale", ID: id, Name: name, Value: v, Unit: unit, Load: loadavg(), Note: note}
		results = append(results, r)
		fmt.Printf("  %-58s %10.4g %-12s %s\n", name, v, unit, note)
	}
	fmt.Printf("scale bench: load %s\n", loadavg())

	if *idle > 0 {
		if err := idleConns(e, *idle, *settle, add); err != nil {
			return fmt.Errorf("idle connections: %w", err)
		}
	}
	if *carriers > 0 {
		if err := manyCarriers(e, *carriers, *steady, *accessTTL, add); err != nil {
			return fmt.Errorf("many carriers: %w", err)
		}
	}
	if *storm > 0 {
		if err := refreshStorm(e, *storm, *stormRounds, *stormGap, *refreshDelay, *stormVaultTimer, add); err != nil {
			return fmt.Errorf("refresh storm: %w", err)
		}
	}
	return appendResults(*out, results)
}

// raiseNoFile lifts the soft open-files limit to the hard one; upsproxy,
// started from here, inherits it.
func raiseNoFile() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

func idleConns(e *env, n int, settle time.Duration, add func(string, string, float64, string, string)) error {
	u, err := e.startFakeUPS()
	if err != nil {
		return err
	}
	defer u.close()
	p, err := e.startProxy(u, proxyOpts{name: "idle", upstream: "https://" + u.addr, upsCAFile: u.caFile, warm: 2,
		prefix: "bench-idle", maxConns: n + 100, idleTimeout: settle + time.Minute})
	if err != nil {
		return err
	}
	defer e.stop(p)
	pid := p.cmd.Process.Pid
	time.Sleep(time.Second)
	before := rss(pid)
	conns := make([]net.Conn, n)
	var next atomic.Int64
	var ferr atomic.Pointer[error]
	var wg sync.WaitGroup
	req := fmt.Sprintf("POST /api/rating/v2409/Rate HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		p.addr, len(rateRequest), rateRequest)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ferr.Load() != nil {
					return
				}
				c, err := net.Dial("tcp", p.addr)
				if err == nil {
					_, err = io.WriteString(c, req)
				}
				if err == nil {
					var resp *http.Response
					if resp, err = http.ReadResponse(bufio.NewReader(c), nil); err == nil {
						_, err = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if err == nil && resp.StatusCode != http.StatusOK {
							err = fmt.Errorf("status %d", resp.StatusCode)
						}
					}
				}
				if err != nil {
					ferr.CompareAndSwap(nil, &err)
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	if e := ferr.Load(); e != nil {
		return *e
	}
	report := func(id, when string) {
		after := rss(pid)
		m := goMetrics("http://" + p.admin + "/metrics")
		add(id, fmt.Sprintf("upsproxy RSS, %d idle keep-alive clients, %s", n, when), float64(after)/(1<<20), "MB",
			fmt.Sprintf("goal < 200 MB; %.1f MB before, %.1f KB per connection; Go: stacks %.0f MB, heap in use %.0f MB, %0.f goroutines",
				float64(before)/(1<<20), float64(after-before)/1024/float64(n),
				m["go_memstats_stack_inuse_bytes"]/(1<<20), m["go_memstats_heap_inuse_bytes"]/(1<<20), m["go_goroutines"]))
	}
	time.Sleep(2 * time.Second)
	report("rss-idle-2s", "2 s after their request")
	if settle > 0 {
		time.Sleep(settle)
		report("rss-idle", fmt.Sprintf("idle for %v", settle))
	}
	return nil
}

// goMetrics reads the unlabelled samples of a Prometheus text page.
func goMetrics(u string) map[string]float64 {
	out := map[string]float64{}
	resp, err := http.Get(u)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && !strings.HasPrefix(f[0], "#") {
			var v float64
			if _, err := fmt.Sscan(f[1], &v); err == nil {
				out[f[0]] = v
			}
		}
	}
	return out
}

// seed logs in every carrier at the simulator and stores its tokens in
// Vault as `upsproxy login` would; edit may change a record first.
func seed(e *env, u *fakeUPS, prefix string, names []string, envs []ups.Environment, edit func(*vaultstore.Record)) error {
	vc, err := vaultClient(e)
	if err != nil {
		return err
	}
	store, err := vaultstore.New(vaultstore.Options{Client: vc, Prefix: prefix})
	if err != nil {
		return err
	}
	roots, err := rootsFrom(u.caFile)
	if err != nil {
		return err
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfigRoots(roots), MaxIdleConnsPerHost: 16}, Timeout: 30 * time.Second}
	base, _ := url.Parse("https://" + u.addr)
	oc, err := ups.NewClient(ups.Config{BaseURL: base, ClientID: benchClientID, ClientSecret: benchClientSecret,
		RedirectURI: benchRedirect, HTTPClient: hc})
	if err != nil {
		return err
	}
	type job struct {
		name string
		env  ups.Environment
	}
	jobs := make(chan job)
	var ferr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				tok, err := oc.Exchange(ctx, u.sim.IssueCode(benchClientID, benchRedirect, ""), "")
				if err == nil {
					rec := vaultstore.Record{Carrier: j.name, Environment: j.env, Grant: "authorization_code", Token: tok,
						UpdatedAt: time.Now(), UpdatedBy: "bench"}
					if edit != nil {
						edit(&rec)
					}
					_, err = store.Put(ctx, rec)
				}
				cancel()
				if err != nil {
					ferr.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	for _, n := range names {
		for _, en := range envs {
			jobs <- job{n, en}
		}
	}
	close(jobs)
	wg.Wait()
	if e := ferr.Load(); e != nil {
		return *e
	}
	return nil
}

func manyCarriers(e *env, n int, steady, accessTTL time.Duration, add func(string, string, float64, string, string)) error {
	u, err := e.startFakeUPS(func(o *upssim.Options) { o.AccessTTL = accessTTL })
	if err != nil {
		return err
	}
	defer u.close()
	vcount, err := startVaultTimer(e.vault.addr)
	if err != nil {
		return err
	}
	defer vcount.srv.Close()
	names := make([]string, n)
	var blocks strings.Builder
	for i := range names {
		names[i] = fmt.Sprintf("c%04d", i+1)
		for _, en := range []string{"test", "production"} {
			def := ""
			if i == 0 && en == "test" {
				def = "\n  default       = true"
			}
			fmt.Fprintf(&blocks, `carrier "%s-%s" {
  environment   = %q%s
  client_id     = %q
  client_secret = env("UPS_CLIENT_SECRET")
  redirect_uri  = %q
}
`, names[i], en[:4], en, def, benchClientID, benchRedirect)
		}
	}
	var seedNames []string
	for _, nm := range names {
		seedNames = append(seedNames, nm+"-test")
	}
	var prodNames []string
	for _, nm := range names {
		prodNames = append(prodNames, nm+"-prod")
	}
	seeded := time.Now()
	if err := seed(e, u, "bench-many", seedNames, []ups.Environment{ups.Test}, nil); err != nil {
		return err
	}
	if err := seed(e, u, "bench-many", prodNames, []ups.Environment{ups.Production}, nil); err != nil {
		return err
	}
	seedDur := time.Since(seeded)
	// upsproxy talks to Vault through the counter.
	saved := e.vault.addr
	e.vault.addr = vcount.addr
	start := time.Now()
	p, err := e.startProxy(u, proxyOpts{name: "many", upstream: "https://" + u.addr, upsCAFile: u.caFile, warm: 2,
		prefix: "bench-many", carriers: blocks.String(), skipLogin: true, logLevel: "warn"})
	e.vault.addr = saved
	if err != nil {
		return err
	}
	defer e.stop(p)
	ready := time.Since(start)
	add("startup-many", fmt.Sprintf("start-up to ready, %d carriers x 2 environments", n), ready.Seconds(), "s",
		fmt.Sprintf("goal < 5 s; tokens seeded in %.1f s", seedDur.Seconds()))
	add("rss-many", fmt.Sprintf("upsproxy RSS, %d carriers x 2 environments", n), float64(rss(p.cmd.Process.Pid))/(1<<20), "MB", "after start-up")

	r0, w0, _ := vcount.snapshot()
	time.Sleep(steady)
	r1, w1, _ := vcount.snapshot()
	perMin := func(d int64) float64 { return float64(d) / steady.Minutes() }
	add("vault-steady", "Vault KV reads+writes per minute, steady state", perMin(r1-r0+w1-w0), "ops/min",
		fmt.Sprintf("%.0f reads, %.0f writes per minute over %v with no token due", perMin(r1-r0), perMin(w1-w0), steady))

	// Proactive refreshes: all tokens were issued within seedDur; they come
	// due around 80% of accessTTL (±5% per replica and token).
	deadline := seeded.Add(accessTTL + 15*time.Second)
	for time.Now().Before(deadline) {
		if ts, _ := u.refreshes(); len(ts) >= 2*n {
			break
		}
		time.Sleep(time.Second)
	}
	r2, w2, _ := vcount.snapshot()
	ts, _ := u.refreshes()
	if len(ts) == 0 {
		add("refresh-spread", "proactive refreshes", 0, "", "none happened within the access-token lifetime")
		return nil
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	perSec := map[int64]int{}
	peak := 0
	for _, t := range ts {
		s := t.Unix()
		perSec[s]++
		peak = max(peak, perSec[s])
	}
	span := ts[len(ts)-1].Sub(ts[0])
	add("refresh-spread", fmt.Sprintf("proactive refreshes of %d tokens issued together", 2*n), span.Seconds(), "s spread",
		fmt.Sprintf("%d refreshes over %.1f s (±5%% of a %v lifetime), peak %d in one second; Vault %.1f reads + %.1f writes per refresh",
			len(ts), span.Seconds(), accessTTL, peak, float64(r2-r1)/float64(len(ts)), float64(w2-w1)/float64(len(ts))))
	return nil
}

// stop ends one upsproxy before the next part starts.
func (e *env) stop(p *upsproxy) {
	_ = p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
	}
}

var _ = filepath.Join
