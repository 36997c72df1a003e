package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/upssim"
)

// env is what every bench shares: a work directory, the processes it
// started (stopped by close), the dev Vault and the upsproxy binary.
type env struct {
	dir      string
	bin      string // bin/upsproxy
	vaultBin string // bin/vaultdev
	mu       sync.Mutex
	procs    []*exec.Cmd
	vault    struct{ addr, token string }
}

const (
	benchClientID     = "bench"
	benchClientSecret = "bench-secret"
	benchRedirect     = "https://127.0.0.1/upscallback"
)

func newEnv(root string) (*env, error) {
	dir, err := os.MkdirTemp("", "upsproxy-bench.")
	if err != nil {
		return nil, err
	}
	return &env{dir: dir, bin: filepath.Join(root, "bin/upsproxy"), vaultBin: filepath.Join(root, "bin/vaultdev")}, nil
}

func (e *env) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.procs) - 1; i >= 0; i-- {
		p := e.procs[i]
		if p.Process != nil {
			_ = p.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { _ = p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = p.Process.Kill()
			}
		}
	}
	_ = os.RemoveAll(e.dir)
}

// start runs a process with stdout and stderr to files in the work dir.
func (e *env) start(name string, cmd *exec.Cmd) (*exec.Cmd, error) {
	out, err := os.Create(filepath.Join(e.dir, name+".out"))
	if err != nil {
		return nil, err
	}
	errf, err := os.Create(filepath.Join(e.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = out, errf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	e.mu.Lock()
	e.procs = append(e.procs, cmd)
	e.mu.Unlock()
	return cmd, nil
}

// waitLine waits for a line starting with prefix in the file and returns
// the rest of it.
func waitLine(path, prefix string, d time.Duration) (string, error) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if f, err := os.Open(path); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
					f.Close()
					return rest, nil
				}
			}
			f.Close()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "", fmt.Errorf("timed out waiting for %q in %s", prefix, path)
}

func (e *env) startVault() error {
	if _, err := e.start("vault", exec.Command(e.vaultBin)); err != nil {
		return err
	}
	addr, err := waitLine(filepath.Join(e.dir, "vault.out"), "VAULT_ADDR=", 60*time.Second)
	if err != nil {
		return err
	}
	tok, err := waitLine(filepath.Join(e.dir, "vault.out"), "VAULT_TOKEN=", 5*time.Second)
	if err != nil {
		return err
	}
	e.vault.addr, e.vault.token = addr, tok
	return nil
}

// freePort reserves a loopback port long enough to hand it to a process.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// rateResponse is a 1 KB Rate answer in UPS's shape.
var rateResponse = func() []byte {
	head := `{"RateResponse":{"Response":{"ResponseStatus":{"Code":"1","Description":"Success"},"Alert":[`
	var b strings.Builder
	b.WriteString(head)
	for i := 0; b.Len() < 900; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"Code":"1105%02d","Description":"Your invoice may vary from the displayed reference rates"}`, i)
	}
	b.WriteString(`]},"RatedShipment":{"TotalCharges":{"CurrencyCode":"USD","MonetaryValue":"15.08"}}}}`)
	return []byte(b.String())
}()

// rateRequest is a 1 KB Rate request.
var rateRequest = func() []byte {
	var b strings.Builder
	b.WriteString(`{"RateRequest":{"Request":{"TransactionReference":{"CustomerContext":"`)
	for b.Len() < 800 {
		b.WriteString("bench ")
	}
	b.WriteString(`"}},"Shipment":{"Shipper":{"Name":"Bench","ShipperNumber":"W599Y7","Address":{"PostalCode":"49525","CountryCode":"US"}},` +
		`"ShipTo":{"Address":{"PostalCode":"10001","CountryCode":"US"}},"Package":{"PackagingType":{"Code":"02"},` +
		`"PackageWeight":{"UnitOfMeasurement":{"Code":"LBS"},"Weight":"5"}}}}}`)
	return []byte(b.String())
}()

// fakeUPS is the "UPS" of the benches: HTTPS with its own certificate,
// OAuth by the simulator (login and refreshes work), and a static 1 KB
// Rate answer for any /api/ call that carries a bearer token, so the
// upstream's own CPU stays out of the figures.
type fakeUPS struct {
	addr   string
	caFile string
	sim    *upssim.Server
	srv    *http.Server
	// refreshes counts refresh calls; refreshTimes are when each ended
	// and refreshDur how long each took.
	mu           sync.Mutex
	refreshTimes []time.Time
	refreshDur   []time.Duration
	// firstUse: when each Authorization value first reached /api/ (the
	// storm's "token ready": a broker may hand the new token out before
	// Vault has the pair).
	firstUse map[string]time.Time
}

// firstUseAfter is the earliest first use of a token first seen at or
// after t (zero if none).
func (u *fakeUPS) firstUseAfter(t time.Time) time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	var first time.Time
	for _, at := range u.firstUse {
		if !at.Before(t) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first
}

func (u *fakeUPS) refreshes() ([]time.Time, []time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]time.Time(nil), u.refreshTimes...), append([]time.Duration(nil), u.refreshDur...)
}

func (e *env) startFakeUPS(simOpts ...func(*upssim.Options)) (*fakeUPS, error) {
	cert, pemBytes, err := selfSigned("127.0.0.1")
	if err != nil {
		return nil, err
	}
	u := &fakeUPS{caFile: filepath.Join(e.dir, "ups-ca.pem"), firstUse: map[string]time.Time{}}
	if err := os.WriteFile(u.caFile, pemBytes, 0o600); err != nil {
		return nil, err
	}
	so := upssim.Options{Clients: map[string]string{benchClientID: benchClientSecret}}
	for _, f := range simOpts {
		f(&so)
	}
	u.sim = upssim.New(so)
	mux := http.NewServeMux()
	mux.Handle("/security/", u.sim)
	mux.HandleFunc(ups.RefreshPath, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		u.sim.ServeHTTP(w, r)
		end := time.Now()
		u.mu.Lock()
		u.refreshTimes = append(u.refreshTimes, end)
		u.refreshDur = append(u.refreshDur, end.Sub(start))
		u.mu.Unlock()
	})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		at, auth := time.Now(), r.Header.Get("Authorization")
		u.mu.Lock()
		if _, seen := u.firstUse[auth]; !seen {
			u.firstUse[auth] = at
		}
		u.mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			http.Error(w, `{"response":{"errors":[{"code":"250002","message":"Invalid Authentication Information."}]}}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(rateResponse)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u.addr = ln.Addr().String()
	u.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	go func() { _ = u.srv.ServeTLS(ln, "", "") }()
	return u, nil
}

func (u *fakeUPS) close() { _ = u.srv.Close() }

// rootsFrom reads a PEM file into a pool.
func rootsFrom(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no certificate", path)
	}
	return p, nil
}

func selfSigned(ip string) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "bench UPS"},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP(ip)},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:        true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// upsproxy is a running `upsproxy serve`.
type upsproxy struct {
	name   string
	addr   string // proxy listener
	admin  string
	caCert string // MITM CA
	cmd    *exec.Cmd
}

// proxyOpts are the parts of the config the benches vary.
type proxyOpts struct {
	name      string
	upstream  string // https://host:port of UPS (or the latency injector)
	upsCAFile string
	warm      int
	extraUPS  string // more lines for the ups block
	extraTop  string // more top-level config
	prefix    string // Vault prefix (default "bench")
	maxConns  int
	logLevel  string
	carriers  string // carrier blocks; default one "bench" carrier in test
	skipLogin bool
	bin       string // upsproxy binary; default bin/upsproxy
	// idleTimeout is limits.idle_timeout; default 120s (upsproxy's).
	idleTimeout time.Duration
}

// startProxy writes a config, logs the bench carrier in through the
// simulator, starts `serve` and waits until /readyz answers and a Rate
// call goes through.
func (e *env) startProxy(u *fakeUPS, o proxyOpts) (*upsproxy, error) {
	if o.prefix == "" {
		o.prefix = "bench"
	}
	if o.logLevel == "" {
		o.logLevel = "warn"
	}
	if o.maxConns == 0 {
		o.maxConns = 4096
	}
	if o.idleTimeout == 0 {
		o.idleTimeout = 120 * time.Second
	}
	if o.bin == "" {
		o.bin = e.bin
	}
	caDir := filepath.Join(e.dir, "mitm-ca")
	if _, err := os.Stat(filepath.Join(caDir, "ca.pem")); err != nil {
		if out, err := exec.Command(e.bin, "ca", "init", "--out", caDir).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("upsproxy ca init: %v: %s", err, out)
		}
	}
	listen, err := freePort()
	if err != nil {
		return nil, err
	}
	admin, err := freePort()
	if err != nil {
		return nil, err
	}
	carriers := o.carriers
	if carriers == "" {
		carriers = fmt.Sprintf(`carrier "bench" {
  environment   = "test"
  default       = true
  client_id     = %q
  client_secret = env("UPS_CLIENT_SECRET")
  redirect_uri  = %q
}
`, benchClientID, benchRedirect)
	}
	// warm < 0: leave ups.warm_connections out (a binary that predates it).
	upsExtra := o.extraUPS
	if o.warm >= 0 {
		upsExtra = fmt.Sprintf("  warm_connections = %d\n%s", o.warm, o.extraUPS)
	}
	cfg := fmt.Sprintf(`listen       = %q
admin_listen = %q
log {
  level = %q
}
vault {
  address = %q
  prefix  = %q
}
mitm {
  ca_cert = %q
  ca_key  = %q
}
limits {
  max_connections = %d
  idle_timeout    = %q
}
ups {
  test_url         = %q
  production_url   = %q
  ca_file          = %q
%s
}
%s
%s`, listen, admin, o.logLevel, e.vault.addr, o.prefix, filepath.Join(caDir, "ca.pem"), filepath.Join(caDir, "ca-key.pem"),
		o.maxConns, o.idleTimeout.String(), o.upstream, o.upstream, o.upsCAFile, upsExtra, o.extraTop, carriers)
	cfgPath := filepath.Join(e.dir, o.name+".hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	procEnv := append(os.Environ(), "UPSPROXY_CONFIG="+cfgPath, "VAULT_ADDR="+e.vault.addr,
		"VAULT_TOKEN="+e.vault.token, "UPS_CLIENT_SECRET="+benchClientSecret)
	if !o.skipLogin {
		code := u.sim.IssueCode(benchClientID, benchRedirect, "")
		login := exec.Command(e.bin, "login", "--carrier", "bench", "--url", benchRedirect+"?code="+url.QueryEscape(code))
		login.Env = procEnv
		if out, err := login.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("upsproxy login: %v: %s", err, out)
		}
	}
	cmd := exec.Command(o.bin, "serve")
	cmd.Env = procEnv
	if _, err := e.start(o.name, cmd); err != nil {
		return nil, err
	}
	p := &upsproxy{name: o.name, addr: listen, admin: admin, caCert: filepath.Join(caDir, "ca.pem"), cmd: cmd}
	if err := waitReady("http://"+admin+"/readyz", 60*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(e.dir, o.name+".log"))
		return nil, fmt.Errorf("%s: %w\n%s", o.name, err, tail(string(log), 2000))
	}
	return p, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func waitReady(u string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready at %s: %v", u, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// rss returns a process's resident set size in bytes (Linux).
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb << 10
		}
	}
	return 0
}

// cpuTime is a process's user+system CPU so far (Linux, clock ticks of
// 10 ms on every kernel the bench runs on).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var ut, st int64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// vaultClient is a root client of the dev Vault.
func vaultClient(e *env) (*vaultapi.Client, error) {
	cfg := vaultapi.DefaultConfig()
	cfg.Address = e.vault.addr
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.SetToken(e.vault.token)
	return c, nil
}

func tlsConfigRoots(roots *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}
