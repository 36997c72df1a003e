package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/upssim"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// The refresh storm of issue 13: n concurrent requests reach upsproxy the
// moment their carrier's access token is due, and must cost exactly one
// UPS refresh and a p99 within the refresh latency plus 10 ms.
//
// What the figure compares, and why:
//
//   - "At expiry" is the instant the request path renews a token: refreshAt,
//     RefreshMargin (2 min) before ExpiresAt. upsproxy's background
//     refresher (every second) renews earlier, at ~80% of the lifetime, so a
//     seeded already-expired token is renewed within a second of start-up
//     and a storm fired "some time after start" races it (or finds a fresh
//     token). Each storm carrier is therefore seeded with no IssuedAt, which
//     puts the background refresher's due time at refreshAt too, and
//     ExpiresAt = the storm's instant + 2 min; the bench fires the storm a
//     few ms after that instant. Whoever starts the refresh (a request or a
//     refresher tick in the same millisecond), every request waits for the
//     one shared renewal; the bench prints when the refresh started
//     relative to the storm so a head start would show.
//   - The baseline is the same burst with a valid token under the same
//     conditions: every storm and every baseline burst follows an identical
//     warm-up burst with a valid token (the upstream pool then holds its
//     idle maximum, not just the 2 warm spares of a fresh start) and the
//     same idle pause. Comparing a cold storm with a warm baseline made the
//     figure swing by a second between runs.
//   - Each pair runs `rounds` times, each storm on its own carrier (a
//     carrier's token is renewed once); the figures are medians with their
//     range.
//
// The bench's Vault traffic goes through a timing reverse proxy, so the
// broker's own steps (Vault read, lease write, new pair written back) are
// printed for each storm.

// vaultOp is one timed Vault call.
type vaultOp struct {
	method, path string
	start, end   time.Time
}

// vaultTimer is a reverse proxy in front of Vault recording every call:
// the storm times the broker's steps with it, the scale part counts KV
// reads and writes.
type vaultTimer struct {
	addr string
	srv  *http.Server
	mu   sync.Mutex
	ops  []vaultOp
}

func startVaultTimer(vaultAddr string) (*vaultTimer, error) {
	target, err := url.Parse(vaultAddr)
	if err != nil {
		return nil, err
	}
	vt := &vaultTimer{}
	rp := httputil.NewSingleHostReverseProxy(target)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	vt.addr = "http://" + ln.Addr().String()
	vt.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rp.ServeHTTP(w, r)
		vt.mu.Lock()
		vt.ops = append(vt.ops, vaultOp{r.Method, r.URL.Path, start, time.Now()})
		vt.mu.Unlock()
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = vt.srv.Serve(ln) }()
	return vt, nil
}

// snapshot counts the KV reads and writes so far, and the other calls
// (auth, sys).
func (vt *vaultTimer) snapshot() (reads, writes, other int64) {
	vt.mu.Lock()
	defer vt.mu.Unlock()
	for _, op := range vt.ops {
		switch {
		case !strings.HasPrefix(op.path, "/v1/secret/"):
			other++
		case op.method == http.MethodGet || op.method == "LIST":
			reads++
		default:
			writes++
		}
	}
	return reads, writes, other
}

// between returns the calls on a path ending in suffix that started in
// [from, to).
func (vt *vaultTimer) between(suffix string, from, to time.Time) []vaultOp {
	vt.mu.Lock()
	defer vt.mu.Unlock()
	var out []vaultOp
	for _, op := range vt.ops {
		if strings.HasSuffix(op.path, suffix) && !op.start.Before(from) && op.start.Before(to) {
			out = append(out, op)
		}
	}
	return out
}

// stormRound is what one storm and its baseline measured.
type stormRound struct {
	stormP50, stormP99, baseP99 time.Duration
	refresh                     time.Duration // UPS's answer time
	refreshStart                time.Duration // relative to the storm's start
	refreshes                   int
	broker                      string // the broker's steps, for the log
	// reach: when the first request reached the broker (its first Vault
	// call); ready: when the waiters got the new token, i.e. when it first
	// reached UPS in a request (the broker may release them before the new
	// pair is written to Vault, so that write's end is only the fallback);
	// pairStored: when Vault had the new pair; vault: the time spent in
	// Vault calls. All relative to the storm's start.
	reach, ready, pairStored, vault time.Duration
	// What upsproxy logged with the refresh: from the start of its renewal
	// to calling UPS (Vault, waiting for CPU), and UPS's answer time.
	ownBefore, ownUPS time.Duration
	ownOK             bool
	// ownStart: when the renewal started by upsproxy's log (ms precision).
	ownStart time.Time
	gate     time.Time // when the storm was sent
}

// brokerLogged reads the timings upsproxy logged with carrier's refresh
// ("access token refreshed": before_ups, ups_took), if it did.
func brokerLogged(path, carrier string) (before, upsTook time.Duration, started time.Time, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, time.Time{}, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		var l struct {
			TS        string `json:"ts"`
			Msg       string `json:"msg"`
			Carrier   string `json:"carrier"`
			BeforeUPS string `json:"before_ups"`
			UPSTook   string `json:"ups_took"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Msg != "access token refreshed" || l.Carrier != carrier {
			continue
		}
		b, err1 := time.ParseDuration(l.BeforeUPS)
		u, err2 := time.ParseDuration(l.UPSTook)
		ts, err3 := time.Parse("2006-01-02T15:04:05.000Z0700", l.TS)
		if err1 == nil && err2 == nil && err3 == nil {
			before, upsTook, started, ok = b, u, ts.Add(-u-b), true
		}
	}
	return before, upsTook, started, ok
}

// overhead is what the broker added to the wait on top of UPS's refresh.
func (r stormRound) overhead() time.Duration { return r.ready - r.refresh }

func refreshStorm(e *env, n, rounds int, gap, delay time.Duration, timed bool, add func(string, string, float64, string, string)) error {
	u, err := e.startFakeUPS()
	if err != nil {
		return err
	}
	defer u.close()
	f, err := upssim.ParseFault(fmt.Sprintf("refresh:delay=%s", delay))
	if err != nil {
		return err
	}
	u.sim.SetFault(f)
	// By default upsproxy talks to Vault directly: the timing proxy runs
	// in this process, next to the storm's 1,000 clients and the fake UPS,
	// and measured ~10 ms of its own scheduling delay into the broker's
	// lease claim. upsproxy's log line of the renewal gives its own timing.
	var vt *vaultTimer
	if timed {
		var err error
		if vt, err = startVaultTimer(e.vault.addr); err != nil {
			return err
		}
		defer vt.srv.Close()
	}

	const prefix = "bench-storm"
	if err := seed(e, u, prefix, []string{"warm"}, []ups.Environment{ups.Test}, nil); err != nil {
		return err
	}
	// Storm i fires at first+i*gap; start-up must be over by then.
	first := time.Now().Add(15 * time.Second).Truncate(time.Second)
	at := make([]time.Time, rounds)
	var blocks strings.Builder
	for i := range at {
		at[i] = first.Add(time.Duration(i) * gap)
		name := fmt.Sprintf("storm%d", i+1)
		if err := seed(e, u, prefix, []string{name}, []ups.Environment{ups.Test}, func(r *vaultstore.Record) {
			r.Token.IssuedAt = time.Time{}
			r.Token.ExpiresAt = at[i].Add(2 * time.Minute) // refreshAt = at[i]
		}); err != nil {
			return err
		}
	}
	for _, name := range append([]string{"warm"}, stormNames(rounds)...) {
		def := ""
		if name == "warm" {
			def = "\n  default       = true"
		}
		fmt.Fprintf(&blocks, "carrier %q {\n  environment   = \"test\"%s\n  client_id     = %q\n  client_secret = env(\"UPS_CLIENT_SECRET\")\n  redirect_uri  = %q\n}\n",
			name, def, benchClientID, benchRedirect)
	}
	saved := e.vault.addr
	if vt != nil {
		e.vault.addr = vt.addr
	}
	p, err := e.startProxy(u, proxyOpts{name: "storm", upstream: "https://" + u.addr, upsCAFile: u.caFile, warm: 2,
		prefix: prefix, carriers: blocks.String(), skipLogin: true, maxConns: n + 100,
		logLevel: "info"}) // the refresh's own timings (brokerLogged); no line per request at info
	e.vault.addr = saved
	if err != nil {
		return err
	}
	defer e.stop(p)
	if left := time.Until(first); left < 3*time.Second {
		return fmt.Errorf("upsproxy took too long to start: the first storm was due %v after it was ready", left)
	}

	fmt.Printf("  refresh storm: %d concurrent requests, UPS answers refreshes in %v, %d rounds\n", n, delay, rounds)
	var rs []stormRound
	for i := range rounds {
		r, err := stormOnce(p, u, vt, n, fmt.Sprintf("storm%d", i+1), at[i])
		if err != nil {
			log, _ := os.ReadFile(filepath.Join(e.dir, "storm.log"))
			return fmt.Errorf("round %d: %w\nupsproxy log:\n%s", i+1, err, tail(string(log), 3000))
		}
		r.ownBefore, r.ownUPS, r.ownStart, r.ownOK = brokerLogged(filepath.Join(e.dir, "storm.log"), fmt.Sprintf("storm%d", i+1))
		rs = append(rs, r)
		if r.ownOK {
			fmt.Printf("    round %d: upsproxy's log: renewal started @%.0f (±1 ms), %.1f ms from its start to calling UPS, UPS %.1f ms\n",
				i+1, ms(r.ownStart.Sub(r.gate)), ms(r.ownBefore), ms(r.ownUPS))
		}
		fmt.Printf("    round %d: storm p50 %.1f ms p99 %.1f ms; refresh %.1f ms, started %+.1f ms after the storm; baseline p99 %.1f ms; extra %.1f ms; token first used @%.1f (broker +%.1f ms), pair in Vault @%.1f; %s\n",
			i+1, ms(r.stormP50), ms(r.stormP99), ms(r.refresh), ms(r.refreshStart), ms(r.baseP99), ms(r.extra()), ms(r.ready), ms(r.overhead()), ms(r.pairStored), r.broker)
	}

	med := func(f func(stormRound) float64) (m, lo, hi float64) {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		sort.Float64s(v)
		return median(v), v[0], v[len(v)-1]
	}
	var perStorm []string
	maxRefreshes := 0
	for _, r := range rs {
		perStorm = append(perStorm, fmt.Sprint(r.refreshes))
		maxRefreshes = max(maxRefreshes, r.refreshes)
	}
	add("storm-refreshes", fmt.Sprintf("UPS refreshes per storm of %d concurrent requests at expiry", n), float64(maxRefreshes), "refreshes",
		fmt.Sprintf("goal: exactly 1; per storm: %s", strings.Join(perStorm, ", ")))
	sp, spLo, spHi := med(func(r stormRound) float64 { return ms(r.stormP99) })
	bp, bpLo, bpHi := med(func(r stormRound) float64 { return ms(r.baseP99) })
	rf, _, _ := med(func(r stormRound) float64 { return ms(r.refresh) })
	add("storm-p99", "refresh storm p99", sp, "ms",
		fmt.Sprintf("median of %d storms (%.1f–%.1f); refresh took %.1f ms; the same burst with a valid token, same pool state: p99 %.1f ms (%.1f–%.1f)",
			len(rs), spLo, spHi, rf, bp, bpLo, bpHi))
	x, xLo, xHi := med(func(r stormRound) float64 { return ms(r.extra()) })
	add("storm-extra", "refresh storm p99 minus refresh minus valid-token p99", x, "ms",
		fmt.Sprintf("goal ≤ 10 ms; median of %d rounds, range %.1f to %.1f ms", len(rs), xLo, xHi))
	o, oLo, oHi := med(func(r stormRound) float64 { return ms(r.overhead()) })
	rc, _, _ := med(func(r stormRound) float64 { return ms(r.reach) })
	va, _, _ := med(func(r stormRound) float64 { return ms(r.vault) })
	us, _, _ := med(func(r stormRound) float64 { return ms(r.refreshStart) })
	rel, _, _ := med(func(r stormRound) float64 { return ms(r.ready - r.refreshStart - r.refresh) })
	steps := fmt.Sprintf("UPS called after %.1f ms, token first used at UPS %.1f ms after its answer", us, rel)
	if vt != nil {
		steps = fmt.Sprintf("first request reached the broker after %.1f ms, %s; Vault calls (read, lease, new pair) %.1f ms in all", rc, steps, va)
	}
	add("storm-token-wait", "refresh storm: new token first used after the storm began, minus the UPS refresh", o, "ms",
		fmt.Sprintf("what the broker adds to the longest token wait; median of %d rounds, range %.1f to %.1f ms: %s", len(rs), oLo, oHi, steps))
	var own []float64
	for _, r := range rs {
		if r.ownOK {
			own = append(own, ms(r.ownBefore))
		}
	}
	if len(own) > 0 {
		sort.Float64s(own)
		add("storm-broker", "refresh storm: upsproxy's renewal start to its UPS call, as it logged", median(own), "ms",
			fmt.Sprintf("the broker's own share (Vault lease claim, waiting for CPU among the storm's requests); median of %d rounds, range %.1f to %.1f ms; waiters get the token when UPS answers",
				len(own), own[0], own[len(own)-1]))
	}
	return nil
}

// stormLead is how long before a storm its warm-up burst starts.
const stormLead = 5 * time.Second

func (r stormRound) extra() time.Duration { return r.stormP99 - r.refresh - r.baseP99 }

func stormNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("storm%d", i+1)
	}
	return out
}

// stormOnce runs warm-up, storm (fired at at), warm-up, baseline.
func stormOnce(p *upsproxy, u *fakeUPS, vt *vaultTimer, n int, carrier string, at time.Time) (stormRound, error) {
	var r stormRound
	// The warm-up starts stormLead before the storm so that the pause
	// between them (which the baseline repeats) stays short.
	if time.Until(at) < stormLead {
		return r, fmt.Errorf("the storm was due at %s, too soon to warm up first (raise -storm-gap)", at.Format(time.TimeOnly))
	}
	time.Sleep(time.Until(at.Add(-stormLead)))
	if _, _, err := burst(p, n, "warm", time.Time{}); err != nil {
		return r, fmt.Errorf("warm-up: %w", err)
	}
	warmEnd := time.Now()
	_, before := u.refreshes()
	fire := at.Add(2 * time.Millisecond)
	if time.Until(fire) < 1100*time.Millisecond {
		return r, fmt.Errorf("the warm-up ended only %v before the storm was due (machine too busy?)", time.Until(at))
	}
	pause := fire.Sub(warmEnd)
	stormLat, gate, err := burst(p, n, carrier, fire)
	r.gate = gate
	if err != nil {
		return r, fmt.Errorf("storm: %w", err)
	}
	ends, durs := u.refreshes()
	r.refreshes = len(durs) - len(before)
	if r.refreshes > 0 {
		k := len(before)
		r.refresh = durs[k]
		r.refreshStart = ends[k].Add(-durs[k]).Sub(gate)
	}
	r.stormP50, r.stormP99 = percentile(stormLat, 50), percentile(stormLat, 99)
	brokerSteps(&r, vt, carrier, gate, stormLat, ends, durs, len(before))
	if r.refreshes > 0 {
		// The new token's first use at UPS: tokens first seen after the
		// refresh began are the storm carrier's new one (the warm
		// carrier's token is older).
		if used := u.firstUseAfter(ends[len(before)].Add(-durs[len(before)])); !used.IsZero() {
			r.ready = used.Sub(gate)
		}
	}

	if _, _, err := burst(p, n, "warm", time.Time{}); err != nil {
		return r, fmt.Errorf("warm-up: %w", err)
	}
	baseLat, _, err := burst(p, n, "warm", time.Now().Add(pause))
	if err != nil {
		return r, fmt.Errorf("baseline: %w", err)
	}
	r.baseP99 = percentile(baseLat, 99)
	return r, nil
}

// brokerSteps fills in the broker's steps for carrier around the storm's
// refresh, from the Vault calls the timer saw, relative to the storm's start.
func brokerSteps(r *stormRound, vt *vaultTimer, carrier string, gate time.Time, lat []time.Duration, ends []time.Time, durs []time.Duration, k int) {
	if len(durs) <= k {
		r.broker = "no refresh"
		return
	}
	last := gate
	first := gate.Add(time.Hour)
	for _, l := range lat {
		last = maxTime(last, gate.Add(l))
		if t := gate.Add(l); t.Before(first) {
			first = t
		}
	}
	var ops []vaultOp
	if vt != nil {
		ops = vt.between("/"+carrier+"/test", gate.Add(-time.Second), last.Add(time.Second))
	}
	rel := func(t time.Time) float64 { return ms(t.Sub(gate)) }
	start, end := ends[k].Add(-durs[k]), ends[k]
	r.reach, r.ready = start.Sub(gate), end.Sub(gate)
	var b strings.Builder
	b.WriteString("broker:")
	upsShown := false
	for i, op := range ops {
		if i == 0 {
			r.reach = op.start.Sub(gate)
		}
		if op.start.After(start) && !upsShown {
			fmt.Fprintf(&b, " UPS refresh @%.1f %.1f ms;", rel(start), ms(durs[k]))
			upsShown = true
		}
		if op.start.After(end) && op.method != http.MethodGet && r.pairStored == 0 {
			r.pairStored = op.end.Sub(gate)
			r.ready = r.pairStored // fallback; stormOnce reads the first use at UPS
		}
		r.vault += op.end.Sub(op.start)
		fmt.Fprintf(&b, " Vault %s @%.1f %.1f ms;", op.method, rel(op.start), ms(op.end.Sub(op.start)))
	}
	if !upsShown {
		fmt.Fprintf(&b, " UPS refresh @%.1f %.1f ms;", rel(start), ms(durs[k]))
	}
	fmt.Fprintf(&b, " first answer @%.1f, last @%.1f", rel(first), rel(last))
	r.broker = b.String()
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// burst dials n connections to the proxy, then sends one Rate call for
// carrier on each at once (at fire, when set) and returns each call's
// latency and when they were sent.
func burst(p *upsproxy, n int, carrier string, fire time.Time) ([]time.Duration, time.Time, error) {
	// Dial shortly before: upsproxy drops a connection that sends no
	// request header for a few seconds.
	if !fire.IsZero() {
		time.Sleep(time.Until(fire.Add(-time.Second)))
	}
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			return nil, time.Time{}, err
		}
		conns[i] = c
		defer c.Close()
	}
	req := fmt.Sprintf("POST /api/rating/v2409/Rate HTTP/1.1\r\nHost: %s\r\nX-Upsproxy-Carrier: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		p.addr, carrier, len(rateRequest), rateRequest)
	lat := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			start := time.Now()
			_, err := io.WriteString(c, req)
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
			lat[i], errs[i] = time.Since(start), err
		}()
	}
	if !fire.IsZero() {
		time.Sleep(time.Until(fire))
	}
	t0 := time.Now()
	close(gate)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, t0, err
		}
	}
	return lat, t0, nil
}
