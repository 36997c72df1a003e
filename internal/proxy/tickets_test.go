package proxy_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/proxy"
	"github.com/upsproxy/upsproxy/internal/ups"
)

// memTicketStore is a TicketKeyStore with Vault's check-and-set rule.
type memTicketStore struct {
	mu     sync.Mutex
	set    proxy.TicketKeySet
	writes int
}

func (m *memTicketStore) GetTicketKeys(context.Context) (proxy.TicketKeySet, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.set
	s.Keys = append([]proxy.TicketKey(nil), s.Keys...)
	return s, nil
}

func (m *memTicketStore) PutTicketKeys(_ context.Context, s proxy.TicketKeySet) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.Version != m.set.Version {
		return proxy.ErrTicketKeysConflict
	}
	m.writes++
	s.Version++
	s.Keys = append([]proxy.TicketKey(nil), s.Keys...)
	m.set = s
	return nil
}

// replicas starts n proxies sharing one MITM CA, with a settable clock.
func replicas(t *testing.T, n int, now func() time.Time) []*testEnv {
	t.Helper()
	ca, pool := newCA(t)
	out := make([]*testEnv, n)
	for i := range out {
		out[i] = newTestEnv(t, func(o *proxy.Options) {
			o.CA = ca
			o.Clock = now
		})
		out[i].caPool = pool
	}
	return out
}

// resumingCall makes one call through e's MITM on a new CONNECT and TLS
// connection, offering the sessions in cache, and says whether the
// handshake resumed.
func resumingCall(t *testing.T, e *testEnv, cache tls.ClientSessionCache) bool {
	t.Helper()
	conf := tlsConfigTrusting(e.caPool)
	conf.ClientSessionCache = cache
	tr := &http.Transport{Proxy: http.ProxyURL(e.proxyURL), TLSClientConfig: conf, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + ups.ProductionHost + "/api/track/v1/details/1Z999")
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if resp.StatusCode != http.StatusCreated || resp.TLS == nil {
		t.Fatalf("status %d (TLS %v), want 201 from UPS over TLS", resp.StatusCode, resp.TLS != nil)
	}
	return resp.TLS.DidResume
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestMITMClientResumesItsTLSSessionOnAnotherReplica(t *testing.T) {
	clk := &clock{t: time.Now()}
	rs := replicas(t, 2, clk.now)
	store := &memTicketStore{}
	// Both replicas find no keys at once: one creates them, the other
	// loses the check-and-set and takes the winner's keys.
	var wg sync.WaitGroup
	for _, e := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.proxy.SyncTicketKeys(context.Background(), store, time.Hour); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if store.writes != 1 || len(store.set.Keys) != 1 {
		t.Fatalf("store: %d writes, %d keys; want exactly one replica to create one key", store.writes, len(store.set.Keys))
	}
	cache := tls.NewLRUClientSessionCache(8)
	if resumingCall(t, rs[0], cache) {
		t.Fatal("first connection resumed: there was no session yet")
	}
	if !resumingCall(t, rs[1], cache) {
		t.Error("the session from replica 0 did not resume on replica 1")
	}
	// A client without a session cache still gets a full handshake.
	if resumingCall(t, rs[1], nil) {
		t.Error("a client without a session cache resumed")
	}
}

func TestTicketKeyRotationKeepsThePreviousKeyForOnePeriod(t *testing.T) {
	clk := &clock{t: time.Now()}
	rs := replicas(t, 2, clk.now)
	store := &memTicketStore{}
	sync := func() {
		t.Helper()
		for _, e := range rs {
			if _, err := e.proxy.SyncTicketKeys(context.Background(), store, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
	}
	sync()
	cache := tls.NewLRUClientSessionCache(8)
	resumingCall(t, rs[0], cache) // a ticket sealed with key 1

	clk.add(61 * time.Minute)
	sync() // key 2 seals, key 1 still opens
	if store.writes != 2 || len(store.set.Keys) != 2 {
		t.Fatalf("after one period: %d writes, %d keys; want one rotation keeping 2 keys", store.writes, len(store.set.Keys))
	}
	if !resumingCall(t, rs[1], cache) {
		t.Error("a ticket sealed before the rotation did not resume after it")
	}

	fresh := tls.NewLRUClientSessionCache(8)
	resumingCall(t, rs[0], fresh) // sealed with key 2
	clk.add(61 * time.Minute)
	sync()
	clk.add(61 * time.Minute)
	sync() // key 2 is gone now
	if resumingCall(t, rs[1], fresh) {
		t.Error("a ticket sealed two rotations ago still resumed")
	}
}

func TestMITMWithoutSharedKeysSendsNoTickets(t *testing.T) {
	rs := replicas(t, 1, time.Now)
	cache := tls.NewLRUClientSessionCache(8)
	resumingCall(t, rs[0], cache)
	if resumingCall(t, rs[0], cache) {
		t.Error("resumed although no ticket keys were set (RunTicketKeys not running)")
	}
}

// downTicketStore is a ticket store that never answers (Vault sealed or
// the policy lacking the mitm/* grant); asked is closed on the first Get.
type downTicketStore struct {
	once  sync.Once
	asked chan struct{}
}

func (d *downTicketStore) GetTicketKeys(context.Context) (proxy.TicketKeySet, error) {
	d.once.Do(func() { close(d.asked) })
	return proxy.TicketKeySet{}, errors.New("vault is sealed")
}

func (d *downTicketStore) PutTicketKeys(context.Context, proxy.TicketKeySet) error {
	return errors.New("vault is sealed")
}

func TestMITMTicketsResumeOnTheSameReplicaUntilTheStoreAnswers(t *testing.T) {
	rs := replicas(t, 2, time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, e := range rs {
		store := &downTicketStore{asked: make(chan struct{})}
		wg.Add(1)
		go func() { defer wg.Done(); e.proxy.RunTicketKeys(ctx, store, time.Hour) }()
		<-store.asked // RunTicketKeys installs its own key before asking
	}
	cache := tls.NewLRUClientSessionCache(8)
	if resumingCall(t, rs[0], cache) {
		t.Fatal("first connection resumed: there was no session yet")
	}
	if !resumingCall(t, rs[0], cache) {
		t.Error("with the ticket store down, a session did not resume on the replica that issued it")
	}
	if resumingCall(t, rs[1], cache) {
		t.Error("a ticket sealed with replica 0's own key resumed on replica 1")
	}
	if n := rs[0].logs.FilterMessageSnippet("MITM session ticket keys not shared").Len(); n != 1 {
		t.Errorf("%d warnings that the keys are not shared, want 1", n)
	}
}
