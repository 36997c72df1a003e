package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/upsproxy/upsproxy/internal/proxy"
	"github.com/upsproxy/upsproxy/internal/testutil/vaultdevtest"
	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/upssim"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// Everything any command printed during the test run, for the log scan in
// TestMain, and every secret the run used.
var (
	captured   syncBuffer
	secretsMu  sync.Mutex
	secretsSet = map[string]bool{}
)

func rememberSecret(s string) {
	if len(s) < 6 {
		return
	}
	secretsMu.Lock()
	secretsSet[s] = true
	secretsMu.Unlock()
}

// TestMain runs the tests, then scans every line any command printed for
// any token, secret or password the tests used: none may appear.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		out := captured.String()
		secretsMu.Lock()
		for s := range secretsSet {
			if strings.Contains(out, s) {
				// Never echo any part of the secret itself.
				fmt.Fprintf(os.Stderr, "FAIL: a secret of %d chars appears in the captured output of upsproxy commands\n", len(s))
				code = 1
			}
		}
		n := len(secretsSet)
		secretsMu.Unlock()
		if code == 0 {
			fmt.Fprintf(os.Stderr, "log scan: %d secrets checked against %d bytes of command output, none found\n", n, len(out))
		}
	}
	os.Exit(code)
}

// syncBuffer is a goroutine-safe buffer that also appends to captured.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	tee *syncBuffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	if b.tee != nil {
		_, _ = b.tee.Write(p)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newBuf() *syncBuffer { return &syncBuffer{tee: &captured} }

// env is one test installation: a real Vault, the UPS simulator, a MITM
// CA and a config file naming them.
type env struct {
	t        *testing.T
	dir      string
	vault    *vaultdevtest.Server
	sim      *upssim.Server
	simURL   string
	cfgPath  string
	caPool   *x509.CertPool
	clientID string
	secret   string
	redirect string
	store    *vaultstore.Store
}

type envOptions struct {
	accessTTL, refreshTTL time.Duration
	carriers              string // HCL carrier blocks; default one test carrier "main"
	extra                 string // more top-level HCL
	prefix                string // Vault prefix; default "upsproxy-test"
	vaultAuth             string // HCL auth block; default token auth from the root token's file
	tlsUpstream           bool   // the simulator speaks TLS (trusted through ups.ca_file "sim-ca.pem")
	ups                   string // more lines in the ups block
}

const testSecret = "s3cr+t %25 with space"

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), clientID: "test-client-id", secret: testSecret, redirect: "https://127.0.0.1/upscallback"}
	rememberSecret(e.secret)
	e.vault = vaultdevtest.Start(t)
	rememberSecret(e.vault.Token)
	e.sim = upssim.New(upssim.Options{
		Clients:    map[string]string{e.clientID: e.secret, "pkce-client": ""},
		AccessTTL:  o.accessTTL,
		RefreshTTL: o.refreshTTL,
	})
	srv := httptest.NewUnstartedServer(e.sim)
	if o.tlsUpstream {
		srv.StartTLS()
		writeFile(t, filepath.Join(e.dir, "sim-ca.pem"), string(pemCert(srv.Certificate().Raw)))
		o.ups += "\n  ca_file = \"sim-ca.pem\""
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	e.simURL = srv.URL

	if _, _, err := proxy.InitCA(filepath.Join(e.dir, "ca"), time.Now()); err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(filepath.Join(e.dir, "ca", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	e.caPool = x509.NewCertPool()
	e.caPool.AppendCertsFromPEM(pem)

	writeFile(t, filepath.Join(e.dir, "vault-token"), e.vault.Token)
	writeFile(t, filepath.Join(e.dir, "ups-secret"), e.secret)
	carriers := o.carriers
	if carriers == "" {
		carriers = `
carrier "main" {
  environment   = "test"
  default       = true
  client_id     = "test-client-id"
  client_secret = file("ups-secret")
  redirect_uri  = "https://127.0.0.1/upscallback"
}
`
	}
	if o.prefix == "" {
		o.prefix = "upsproxy-test"
	}
	if o.vaultAuth == "" {
		o.vaultAuth = `auth "token" {
    token_file = "vault-token"
  }`
	}
	cfg := fmt.Sprintf(`
listen       = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
log {
  level  = "debug"
  format = "json"
}
vault {
  address = %q
  mount   = "secret"
  prefix  = %q
  %s
}
mitm {
  ca_cert = "ca/ca.pem"
  ca_key  = "ca/ca-key.pem"
}
ups {
  test_url       = %q
  production_url = %q
  %s
}
%s
%s
`, e.vault.Addr, o.prefix, o.vaultAuth, e.simURL, e.simURL, o.ups, o.extra, carriers)
	e.cfgPath = filepath.Join(e.dir, "upsproxy.hcl")
	writeFile(t, e.cfgPath, cfg)

	st, err := vaultstore.New(vaultstore.Options{Client: e.vault.Client(t), Mount: "secret", Prefix: o.prefix})
	if err != nil {
		t.Fatal(err)
	}
	e.store = st
	return e
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// result of one command.
type result struct {
	code           int
	stdout, stderr string
}

// run runs an upsproxy command against this installation's config.
func (e *env) run(stdin string, args ...string) result {
	e.t.Helper()
	out, errb := newBuf(), newBuf()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := run(ctx, append(args, "--config", e.cfgPath), strings.NewReader(stdin), out, errb)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// login mints tokens for a carrier through the simulator's authorize step.
func (e *env) login(carrier string) {
	e.t.Helper()
	code := e.sim.IssueCode(e.clientID, e.redirect, "")
	r := e.run("", "login", "--carrier", carrier, "--code", code)
	if r.code != 0 {
		e.t.Fatalf("login failed (exit %d): %s", r.code, r.stderr)
	}
	e.rememberStoredTokens(carrier, ups.Test)
}

// rememberStoredTokens adds the stored token values to the secrets the log
// scan looks for.
func (e *env) rememberStoredTokens(carrier string, env ups.Environment) {
	rec, err := e.store.Get(context.Background(), carrier, env)
	if err == nil {
		rememberSecret(rec.Token.AccessToken)
		rememberSecret(rec.Token.RefreshToken)
	}
}

// editRecord changes the stored record of a carrier.
func (e *env) editRecord(carrier string, env ups.Environment, edit func(*vaultstore.Record)) {
	e.t.Helper()
	ctx := context.Background()
	rec, err := e.store.Get(ctx, carrier, env)
	if err != nil {
		e.t.Fatal(err)
	}
	edit(&rec)
	if _, err := e.store.Put(ctx, rec); err != nil {
		e.t.Fatal(err)
	}
}

// expireAccessToken makes the stored access token of a carrier one that
// expired a minute ago, after a normal four-hour life, so the next request
// must refresh it.
func (e *env) expireAccessToken(carrier string) {
	e.t.Helper()
	e.editRecord(carrier, ups.Test, func(r *vaultstore.Record) {
		r.Token.IssuedAt = time.Now().Add(-4 * time.Hour)
		r.Token.ExpiresAt = time.Now().Add(-time.Minute)
	})
}

// server is a running `upsproxy serve`.
type server struct {
	addr   string
	admin  string
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan int
}

func (e *env) serve() *server {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{logs: newBuf(), cancel: cancel, done: make(chan int, 1)}
	go func() {
		s.done <- run(ctx, []string{"serve", "--config", e.cfgPath}, strings.NewReader(""), newBuf(), s.logs)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for s.addr == "" {
		if time.Now().After(deadline) {
			cancel()
			e.t.Fatalf("serve did not start:\n%s", s.logs.String())
		}
		select {
		case code := <-s.done:
			e.t.Fatalf("serve exited with %d:\n%s", code, s.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		for _, l := range s.lines() {
			switch l["msg"] {
			case "proxy listening":
				s.addr, _ = l["addr"].(string)
			case "admin listening":
				s.admin, _ = l["addr"].(string)
			}
		}
		if s.admin == "" {
			s.addr = ""
		}
	}
	e.t.Cleanup(func() { s.stop(e.t) })
	// Registered before the stop above, so it runs after it (cleanups run
	// last-in first-out): the keys serve made in Vault join the log scan.
	e.t.Cleanup(e.rememberServeKeys)
	return s
}

// rememberServeKeys adds the keys `serve` keeps in Vault (the client token
// signing key, the console's key, the MITM session ticket keys) to the
// secrets the log scan looks for, in every encoding a log could show.
func (e *env) rememberServeKeys() {
	ctx := context.Background()
	for _, name := range []string{clientTokenKeyName, consoleKeyName} {
		if k, err := e.store.SharedKey(ctx, name); err == nil {
			rememberKey(k)
		}
	}
	if tk, err := e.store.GetTicketKeys(ctx); err == nil {
		for _, k := range tk.Keys {
			rememberKey(k[:])
		}
	}
}

func rememberKey(k []byte) {
	rememberSecret(string(k))
	rememberSecret(base64.StdEncoding.EncodeToString(k))
	rememberSecret(base64.RawURLEncoding.EncodeToString(k))
	rememberSecret(hex.EncodeToString(k))
}

// stop ends the server like SIGTERM would and checks it exits 0.
func (s *server) stop(t *testing.T) {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case code := <-s.done:
		if code != 0 {
			t.Errorf("serve exited %d:\n%s", code, s.logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Error("serve did not stop within 30s")
	}
}

// lines parses the JSON log lines.
func (s *server) lines() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s.logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// findLog returns the first log line with the given level and message
// substring.
func (s *server) findLog(level, msgPart string) map[string]any {
	for _, l := range s.lines() {
		if l["level"] == level && strings.Contains(fmt.Sprint(l["msg"]), msgPart) {
			return l
		}
	}
	return nil
}

// waitLog waits for a log line.
func (s *server) waitLog(t *testing.T, level, msgPart string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if l := s.findLog(level, msgPart); l != nil {
			return l
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s log line containing %q:\n%s", level, msgPart, s.logs.String())
	return nil
}

// proxyClient is an HTTP client using the server as its HTTP(S) proxy and
// trusting the MITM CA, as a configured legacy client would.
func (e *env) proxyClient(s *server) *http.Client {
	pu, _ := url.Parse("http://" + s.addr)
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               http.ProxyURL(pu),
			TLSClientConfig:     &tls.Config{RootCAs: e.caPool},
			MaxIdleConnsPerHost: 64,
		},
	}
}

// directClient talks to the proxy as a base URL (origin-form).
func directClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
}

// pipe is an io.Reader fed by the test, standing in for a terminal.
type pipe struct {
	mu   sync.Mutex
	cond *sync.Cond
	buf  bytes.Buffer
}

func newPipe() (*pipe, *pipe) {
	p := &pipe{}
	p.cond = sync.NewCond(&p.mu)
	return p, p
}

func (p *pipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.buf.Len() == 0 {
		p.cond.Wait()
	}
	return p.buf.Read(b)
}

func (p *pipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, err := p.buf.Write(b)
	p.cond.Broadcast()
	return n, err
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// upstreamSeen is one API request as UPS received it.
type upstreamSeen struct {
	method, path string
	query        string // the raw query
	header       http.Header
	trailer      http.Header
	body         []byte
	complete     bool // the body arrived whole (not an aborted request)
}

// recordingUPS stands in front of the simulator (next) and records every
// API request it receives, with whether its body arrived whole; only
// complete ones are passed on, as a real server would only act on those.
// An aborted one gets no answer. OAuth calls pass through unrecorded.
type recordingUPS struct {
	next http.Handler
	url  string // where it listens
	mu   sync.Mutex
	seen []upstreamSeen
}

// newRecordingUPS starts a recording upstream in front of next.
func newRecordingUPS(t *testing.T, next http.Handler) *recordingUPS {
	t.Helper()
	u := &recordingUPS{next: next}
	srv := httptest.NewServer(u)
	t.Cleanup(srv.Close)
	u.url = srv.URL
	return u
}

// recordUPS points both UPS environments of the installation's config at
// one recording upstream in front of the simulator.
func (e *env) recordUPS(t *testing.T) *recordingUPS {
	t.Helper()
	u := newRecordingUPS(t, e.sim)
	b, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, e.cfgPath, strings.ReplaceAll(string(b), fmt.Sprintf("%q", e.simURL), fmt.Sprintf("%q", u.url)))
	return u
}

func (u *recordingUPS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/api/") {
		u.next.ServeHTTP(w, r) // OAuth
		return
	}
	body, err := io.ReadAll(r.Body)
	u.mu.Lock()
	u.seen = append(u.seen, upstreamSeen{
		method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, header: r.Header.Clone(), trailer: r.Trailer.Clone(),
		body: body, complete: err == nil,
	})
	u.mu.Unlock()
	if err != nil {
		return
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	u.next.ServeHTTP(w, r)
}

// requests is every API request received so far.
func (u *recordingUPS) requests() []upstreamSeen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upstreamSeen(nil), u.seen...)
}

// completed counts the API requests received whole.
func (u *recordingUPS) completed() int {
	n := 0
	for _, r := range u.requests() {
		if r.complete {
			n++
		}
	}
	return n
}

// reset forgets what was recorded.
func (u *recordingUPS) reset() {
	u.mu.Lock()
	u.seen = nil
	u.mu.Unlock()
}

// appRoleAuth is the vault auth block of a config whose commands log in
// with the AppRole useAppRole sets up.
const appRoleAuth = `auth "approle" {
    role_id        = file("approle-role-id")
    secret_id_file = "approle-secret-id"
  }`

// appRole is the AppRole role "upsproxy" of the test's Vault.
type appRole struct {
	e    *env
	root *vaultapi.Client
	id   string
}

// useAppRole writes policy as "upsproxy" and creates the AppRole role
// "upsproxy" with only that policy (not Vault's default one, so a test
// cannot pass thanks to it); its role id goes to the approle-role-id file.
func (e *env) useAppRole(policy string) *appRole {
	t := e.t
	t.Helper()
	root := e.vault.Client(t)
	if err := root.Sys().PutPolicy("upsproxy", policy); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("auth/approle/role/upsproxy", map[string]any{
		"token_policies": "upsproxy", "token_no_default_policy": true, "token_ttl": "1h",
	}); err != nil {
		t.Fatal(err)
	}
	roleID, err := root.Logical().Read("auth/approle/role/upsproxy/role-id")
	if err != nil {
		t.Fatal(err)
	}
	a := &appRole{e: e, root: root, id: fmt.Sprint(roleID.Data["role_id"])}
	writeFile(t, e.dir+"/approle-role-id", a.id)
	return a
}

// newSecretID issues a secret id of the role into the approle-secret-id
// file (and the log scan's list).
func (a *appRole) newSecretID() string {
	t := a.e.t
	t.Helper()
	sid, err := a.root.Logical().Write("auth/approle/role/upsproxy/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	s := fmt.Sprint(sid.Data["secret_id"])
	rememberSecret(s)
	writeFile(t, a.e.dir+"/approle-secret-id", s)
	return s
}

// login logs in as the role, as the proxy does, and returns a Vault client
// with that token: what the policy lets the proxy do.
func (a *appRole) login(secretID string) *vaultapi.Client {
	t := a.e.t
	t.Helper()
	login, err := a.root.Logical().Write("auth/approle/login", map[string]any{"role_id": a.id, "secret_id": secretID})
	if err != nil {
		t.Fatal(err)
	}
	rememberSecret(login.Auth.ClientToken)
	c, err := a.root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(login.Auth.ClientToken)
	return c
}

// inFlight is a request sent in the background, for the tests of what a
// stop does to a request in flight.
type inFlight struct {
	done   chan struct{}
	status int
	err    error
}

// sendInBackground sends req with client on its own goroutine and reads
// the answer's body whole.
func sendInBackground(client *http.Client, req *http.Request) *inFlight {
	f := &inFlight{done: make(chan struct{})}
	go func() {
		defer close(f.done)
		resp, err := client.Do(req)
		if err != nil {
			f.err = err
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		f.status = resp.StatusCode
	}()
	return f
}

// finished reports, without waiting, whether the answer is in.
func (f *inFlight) finished() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// wait waits for the answer and returns its status.
func (f *inFlight) wait() (status int, err error) {
	<-f.done
	return f.status, f.err
}

// callsAtOnce sends n legacy POSTs of body to target through client, all
// released together, and returns what failed: a transport error or an
// answer other than 200.
func callsAtOnce(t *testing.T, client *http.Client, n int, target, body string) []error {
	t.Helper()
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = legacyRequest(t, http.MethodPost, target, body)
	}
	gate := make(chan struct{})
	errs := make(chan error, n)
	for _, req := range reqs {
		go func() {
			<-gate
			resp, err := client.Do(req)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d: %s", resp.StatusCode, b)
				}
			}
			errs <- err
		}()
	}
	close(gate)
	var failed []error
	for range reqs {
		if err := <-errs; err != nil {
			failed = append(failed, err)
		}
	}
	return failed
}

// storedWhen waits until Vault holds a record of carrier/env that ok
// accepts and returns it: a refreshed pair is written to Vault behind the
// requests that already use it.
func (e *env) storedWhen(t *testing.T, carrier string, env ups.Environment, ok func(vaultstore.Record) bool) vaultstore.Record {
	t.Helper()
	var rec vaultstore.Record
	waitFor(t, func() bool {
		r, err := e.store.Get(context.Background(), carrier, env)
		rec = r
		return err == nil && ok(r)
	}, "Vault to hold the pair in use")
	return rec
}
