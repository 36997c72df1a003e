package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// handshakeCountingUPS is a TLS upstream in front of the simulator that
// records the client address of every completed TLS handshake and of every
// API request, so a test can tell which connection served a request.
type handshakeCountingUPS struct {
	url string
	mu  sync.Mutex
	tls []string // remote addresses, in handshake order
	api []string // remote address of each API request
}

// countHandshakes starts a handshakeCountingUPS in front of the simulator
// and points both UPS environments of the config at it. The env must have
// been made with tlsUpstream (its ca_file then trusts this server too:
// every httptest TLS server has the same certificate, which the test
// re-checks by writing it again).
func (e *env) countHandshakes(t *testing.T) *handshakeCountingUPS {
	t.Helper()
	u := &handshakeCountingUPS{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			u.mu.Lock()
			u.api = append(u.api, r.RemoteAddr)
			u.mu.Unlock()
		}
		e.sim.ServeHTTP(w, r)
	}))
	var base *tls.Config // set by StartTLS before the first connection
	srv.TLS = &tls.Config{GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		c := base.Clone()
		c.GetConfigForClient = nil
		addr := hello.Conn.RemoteAddr().String()
		c.VerifyConnection = func(tls.ConnectionState) error {
			u.mu.Lock()
			u.tls = append(u.tls, addr)
			u.mu.Unlock()
			return nil
		}
		return c, nil
	}}
	srv.StartTLS()
	base = srv.TLS
	t.Cleanup(srv.Close)
	u.url = srv.URL
	writeFile(t, filepath.Join(e.dir, "sim-ca.pem"), string(pemCert(srv.Certificate().Raw)))
	b, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, e.cfgPath, strings.ReplaceAll(string(b), fmt.Sprintf("%q", e.simURL), fmt.Sprintf("%q", u.url)))
	return u
}

func (u *handshakeCountingUPS) seen() (handshakes, api []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.tls), slices.Clone(u.api)
}

func TestWarmConnections_UPSSeesTheSparesBeforeTheFirstRequestWhichTakesOne(t *testing.T) {
	e := newEnv(t, envOptions{tlsUpstream: true, ups: "warm_connections = 2"})
	e.login("main") // against the simulator itself: the counting upstream sees serve alone
	u := e.countHandshakes(t)
	s := e.serve()

	waitFor(t, func() bool { hs, _ := u.seen(); return len(hs) >= 2 }, "two warm TLS connections at UPS")
	before, api := u.seen()
	if len(before) != 2 || len(api) != 0 {
		t.Fatalf("before any client request UPS saw %d TLS handshakes and %d API requests, want 2 spares and none", len(before), len(api))
	}
	if before[0] == before[1] {
		t.Fatalf("both spares came from %s: one connection, not two", before[0])
	}

	resp := rateVia(t, directClient(), "http://"+s.addr+"/api/rating/v2409/Rate")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: %d %s", resp.StatusCode, body)
	}
	after, api := u.seen()
	if len(api) != 1 {
		t.Fatalf("UPS saw %d API requests, want 1", len(api))
	}
	if !slices.Contains(before, api[0]) {
		t.Fatalf("the first request came on %s, not on a spare dialled before it (%v); handshakes now %v", api[0], before, after)
	}
	// The spare taken is replaced: UPS sees a third handshake, from a new
	// connection, and no request has paid for it.
	waitFor(t, func() bool { hs, _ := u.seen(); return len(hs) >= 3 }, "the taken spare to be replaced")
	if st := e.sim.Stats(); st.Refreshes != 0 {
		t.Errorf("%d token refreshes, want none (a fresh access token)", st.Refreshes)
	}
}

// mitmResumingCall makes one call through the HTTPS forward proxy s on a
// new CONNECT and TLS connection, offering the sessions in cache, and
// says whether the TLS handshake with the proxy resumed a session.
func (e *env) mitmResumingCall(t *testing.T, s *server, cache tls.ClientSessionCache) bool {
	t.Helper()
	pu, _ := url.Parse("http://" + s.addr)
	tr := &http.Transport{
		Proxy:             http.ProxyURL(pu),
		TLSClientConfig:   &tls.Config{RootCAs: e.caPool, ClientSessionCache: cache},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(
		legacyRequest(t, http.MethodPost, "https://wwwcie.ups.com/api/rating/v2409/Rate", rateBody(t)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body) // also takes in TLS 1.3 session tickets
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Fatalf("status %d (TLS %v): %s", resp.StatusCode, resp.TLS != nil, body)
	}
	return resp.TLS.DidResume
}

func TestSessionTickets_ClientResumesOnAnotherReplicaThroughVault(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.login("main")
	a := e.serve()
	// Each replica logs once it seals tickets with the keys in Vault (it
	// uses a key of its own until then).
	waitTicketKeysShared(t, a)
	b := e.serve()
	waitTicketKeysShared(t, b)
	keys, err := e.store.GetTicketKeys(context.Background())
	if err != nil || keys.Version != 1 || len(keys.Keys) != 1 {
		t.Fatalf("ticket keys in Vault: %v, %v; want one key written once, by one of the two replicas", keys, err)
	}

	cache := tls.NewLRUClientSessionCache(8)
	if e.mitmResumingCall(t, a, cache) {
		t.Fatal("the first connection resumed: there was no session yet")
	}
	if !e.mitmResumingCall(t, b, cache) {
		t.Fatal("the session replica A issued did not resume on replica B")
	}
	if e.mitmResumingCall(t, a, nil) {
		t.Error("a client without a session cache resumed")
	}
	if n := len(e.sim.Requests()); n != 3 {
		t.Errorf("UPS saw %d API requests, want 3", n)
	}
}

// waitTicketKeysShared waits until s seals MITM session tickets with the
// keys kept in Vault: it wrote them or loaded them.
func waitTicketKeysShared(t *testing.T, s *server) {
	t.Helper()
	waitFor(t, func() bool {
		return s.findLog("info", "MITM session ticket key rotated") != nil || s.findLog("debug", "MITM session ticket keys loaded") != nil
	}, "the replica to take the ticket keys from Vault")
}

// TestWarmConnections_AReloadThatMovesUPSMovesTheSpares: a reload (the
// service's ParamChange, as SIGHUP) that points the UPS URLs at another
// host makes serve keep its spares there, before any client request.
func TestWarmConnections_AReloadThatMovesUPSMovesTheSpares(t *testing.T) {
	e := newEnv(t, envOptions{tlsUpstream: true, ups: "warm_connections = 2"})
	logs := newBuf()
	controls := make(chan control)
	c := &cli{stdin: strings.NewReader(""), out: newBuf(), errOut: logs, configPath: e.cfgPath, getenv: os.Getenv, controls: controls}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	s := &server{logs: logs}
	waitFor(t, func() bool { return s.findLog("info", "proxy listening") != nil }, "serve to listen")

	u := e.countHandshakes(t) // rewrites both UPS URLs to a new host
	controls <- controlReload
	s.waitLog(t, "info", "configuration reloaded")
	waitFor(t, func() bool { hs, _ := u.seen(); return len(hs) >= 2 }, "two warm TLS connections at the new UPS host")
	if hs, api := u.seen(); len(hs) != 2 || len(api) != 0 {
		t.Fatalf("after the reload the new host saw %d TLS handshakes and %d API requests, want the 2 spares and none", len(hs), len(api))
	}
	if strings.Contains(logs.String(), "after a restart") {
		t.Fatalf("the UPS URLs apply on reload, yet a restart is asked for:\n%s", logs.String())
	}
}

// TestUpstreamPool_ABurstLargerThanThePoolReusesConnectionsInsteadOfAHandshakeEach:
// 400 legacy clients call at once through serve, well past the 64
// connections its pool keeps to UPS. Every call reaches UPS with the
// bearer, and UPS sees far fewer TLS handshakes than calls: past the
// pool, requests take the connections coming back (at most 8 dials in
// flight). Before, each call past the pool paid for a handshake of its own.
func TestUpstreamPool_ABurstLargerThanThePoolReusesConnectionsInsteadOfAHandshakeEach(t *testing.T) {
	e := newEnv(t, envOptions{tlsUpstream: true, ups: "warm_connections = 2"})
	e.login("main")
	u := e.countHandshakes(t)
	s := e.serve()
	e.sim.ResetRequests()

	const n = 400
	body := rateBody(t)
	target := "http://" + s.addr + "/api/rating/v2409/Rate"
	tr := &http.Transport{MaxIdleConnsPerHost: n}
	defer tr.CloseIdleConnections()
	client := &http.Client{Timeout: 60 * time.Second, Transport: tr}
	if failed := callsAtOnce(t, client, n, target, body); len(failed) > 0 {
		t.Fatalf("%d of %d calls of the burst failed; the first: %v", len(failed), n, failed[0])
	}
	got := e.sim.Requests()
	if len(got) != n {
		t.Fatalf("UPS saw %d API requests, want %d", len(got), n)
	}
	for _, r := range got {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") || r.Header.Get("AccessLicenseNumber") != "" {
			t.Fatalf("UPS got Authorization %q, AccessLicenseNumber %q", r.Header.Get("Authorization"), r.Header.Get("AccessLicenseNumber"))
		}
	}
	hs, api := u.seen()
	if len(api) != n {
		t.Fatalf("the counting upstream saw %d API requests, want %d", len(api), n)
	}
	// 64 pooled connections, the spares, and a few waves of 8 dials; a
	// handshake per call would be about 400.
	if len(hs) > n/2 {
		t.Fatalf("UPS saw %d TLS handshakes for a burst of %d calls, want at most %d", len(hs), n, n/2)
	}
	t.Logf("%d calls, %d TLS handshakes at UPS", n, len(hs))
}
