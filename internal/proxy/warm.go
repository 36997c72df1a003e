package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// UpstreamTuning is what TuneTransport adds to the upstream transport so
// that a request reaches UPS sooner than a client dialling UPS itself: TLS
// connections dialled before they are needed, TLS session resumption, and
// optionally HTTP/2.
type UpstreamTuning struct {
	// WarmHosts are the "host:port" HTTPS upstreams to keep spare
	// connections for (the UPS hosts the configured carriers use).
	WarmHosts []string
	// WarmConns is how many spare, handshaken TLS connections are kept
	// per host; 0 keeps none (connections are dialled on demand).
	WarmConns int
	// WarmMaxAge is how long a spare may wait unused before it is replaced
	// by a fresh one, so that a spare is never one the server has already
	// dropped as idle; default DefaultWarmMaxAge.
	WarmMaxAge time.Duration
	// HTTP2 offers h2 to UPS over ALPN (HTTP/1.1 stays the fallback). Off
	// by default: HTTP/1.1 is what UPS's own SDKs speak.
	HTTP2 bool
	// Logger receives dial failures of the spare pool; nil discards them.
	Logger *zap.Logger
}

// DefaultWarmMaxAge is below the 60 s idle timeout common to load
// balancers, so a spare is replaced before the far side drops it.
const DefaultWarmMaxAge = 45 * time.Second

// sessionCacheSize bounds the TLS sessions remembered for resumption; a
// handful of UPS hosts need a few each.
const sessionCacheSize = 64

// WarmPool keeps spare TLS connections to the upstream hosts. It is the
// transport's TLS dialer (DialTLSContext): a request that finds no idle
// keep-alive connection takes a spare at once instead of waiting for TCP
// and TLS handshakes, and the spare is replaced in the background. When no
// spare is left (a burst, or the pool is still filling) the dial happens
// right away for that request alone, so nobody queues behind a refill.
type WarmPool struct {
	log     *zap.Logger
	tlsConf *tls.Config
	dialer  *net.Dialer
	// base is the transport's own TLS dialer (the egress proxy's), when it
	// has one: spares then go through the egress proxy too.
	base   func(ctx context.Context, network, addr string) (net.Conn, error)
	maxAge time.Duration
	want   int
	now    func() time.Time

	mu    sync.Mutex
	hosts map[string]*warmHost // nil after Close

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// warmHost is the spare connections of one "host:port".
type warmHost struct {
	addr   string
	spares []spare       // oldest first; guarded by WarmPool.mu
	wake   chan struct{} // a spare was taken: refill
	// ctx ends the host's refills: on Close, or when SetHosts drops it.
	// Set (under WarmPool.mu) before its keepFilled starts.
	ctx    context.Context
	cancel context.CancelFunc
}

type spare struct {
	conn *tls.Conn
	born time.Time
}

// TuneTransport makes tr resume TLS sessions with UPS, offer HTTP/2 when
// asked, and dial HTTPS connections through a WarmPool, which it returns
// (not yet started: call Start, then Close on shutdown). tr must come from
// NewTransport; when it dials through an egress proxy, so do the spares.
func TuneTransport(tr *http.Transport, o UpstreamTuning) *WarmPool {
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	conf := tr.TLSClientConfig
	if conf.ClientSessionCache == nil {
		conf.ClientSessionCache = tls.NewLRUClientSessionCache(sessionCacheSize)
	}
	if o.HTTP2 {
		conf.NextProtos = []string{"h2", "http/1.1"}
		// A custom TLS dialer or config turns HTTP/2 off unless forced;
		// h2 is used only when UPS picks it over ALPN.
		tr.ForceAttemptHTTP2 = true
	} else {
		conf.NextProtos = []string{"http/1.1"}
	}
	maxAge := o.WarmMaxAge
	if maxAge <= 0 {
		maxAge = DefaultWarmMaxAge
	}
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	w := &WarmPool{
		log:     log,
		tlsConf: conf,
		dialer:  &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second},
		maxAge:  maxAge,
		want:    o.WarmConns,
		now:     time.Now,
		hosts:   make(map[string]*warmHost),
		base:    tr.DialTLSContext,
	}
	if w.want > 0 {
		for _, h := range o.WarmHosts {
			w.hosts[h] = &warmHost{addr: h, wake: make(chan struct{}, 1)}
		}
	}
	tr.DialTLSContext = w.DialTLSContext
	return w
}

// Start dials the spares of every host in the background and keeps them
// filled until ctx ends or Close is called.
func (w *WarmPool) Start(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.hosts == nil || w.cancel != nil {
		return
	}
	w.ctx, w.cancel = context.WithCancel(ctx)
	for _, h := range w.hosts {
		w.startHost(h)
	}
}

// startHost starts the refills of h; w.mu is held and the pool started.
func (w *WarmPool) startHost(h *warmHost) {
	h.ctx, h.cancel = context.WithCancel(w.ctx)
	w.wg.Add(1)
	go w.keepFilled(h)
}

// SetHosts makes hosts the "host:port" upstreams the pool keeps spares
// for (a configuration reload changed the UPS URLs or the carriers'
// environments): a new host is filled at once, a dropped one stops being
// refilled and its spares are closed, a kept one keeps its spares. It does
// nothing on a pool that keeps no spares (WarmConns 0) or is closed.
func (w *WarmPool) SetHosts(hosts []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.hosts == nil || w.want <= 0 {
		return
	}
	keep := make(map[string]bool, len(hosts))
	for _, addr := range hosts {
		keep[addr] = true
		if w.hosts[addr] != nil {
			continue
		}
		h := &warmHost{addr: addr, wake: make(chan struct{}, 1)}
		w.hosts[addr] = h
		if w.cancel != nil {
			w.startHost(h)
		}
	}
	for addr, h := range w.hosts {
		if keep[addr] {
			continue
		}
		delete(w.hosts, addr)
		if h.cancel != nil {
			h.cancel()
		}
		// A dial in flight finds the host gone (add) and closes its
		// connection itself.
		for _, sp := range h.spares {
			_ = sp.conn.Close()
		}
		h.spares = nil
	}
}

// Close stops the refills and closes every spare.
func (w *WarmPool) Close() {
	w.mu.Lock()
	cancel := w.cancel
	hosts := w.hosts
	w.hosts = nil
	w.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	w.wg.Wait()
	for _, h := range hosts {
		for _, s := range h.spares {
			_ = s.conn.Close()
		}
	}
}

// Spares reports how many spare connections are ready for addr (tests,
// status).
func (w *WarmPool) Spares(addr string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if h := w.hosts[addr]; h != nil {
		return len(h.spares)
	}
	return 0
}

// DialTLSContext returns a handshaken TLS connection to addr: a live spare
// when one is ready, else a new one dialled now.
func (w *WarmPool) DialTLSContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if c := w.take(addr); c != nil {
		return c, nil
	}
	return w.dial(ctx, network, addr)
}

// take pops the newest live spare of addr, or nil, and asks for a refill.
func (w *WarmPool) take(addr string) *tls.Conn {
	w.mu.Lock()
	h := w.hosts[addr]
	if h == nil {
		w.mu.Unlock()
		return nil
	}
	var got *tls.Conn
	now := w.now()
	for len(h.spares) > 0 && got == nil {
		s := h.spares[len(h.spares)-1]
		h.spares = h.spares[:len(h.spares)-1]
		if now.Sub(s.born) < w.maxAge && alive(s.conn) {
			got = s.conn
		} else {
			_ = s.conn.Close()
		}
	}
	w.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
	return got
}

// alive says whether the server has neither closed c nor sent anything on
// it since it became a spare. The common case (nothing to read) costs one
// non-blocking peek at the socket (peekIdle); when bytes are waiting they
// are read through TLS for a moment: a late TLS 1.3 session ticket is
// taken in and c stays usable, a close_notify or EOF means c is dead.
func alive(c *tls.Conn) bool {
	switch peekIdle(c.NetConn()) {
	case peekEmpty:
		return true
	case peekClosed:
		return false
	}
	return drainTickets(c, time.Millisecond)
}

// drainTickets reads c for up to d: only TLS post-handshake messages
// (session tickets) may arrive on an idle connection, and reading takes
// them into the session cache. It reports whether c is still usable.
func drainTickets(c *tls.Conn, d time.Duration) bool {
	if err := c.SetReadDeadline(time.Now().Add(d)); err != nil {
		return false
	}
	var b [1]byte
	n, err := c.Read(b[:])
	var ne net.Error
	if n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
		return false
	}
	return c.SetReadDeadline(time.Time{}) == nil
}

// peekResult is what a non-blocking look at an idle socket found.
type peekResult int

const (
	peekEmpty  peekResult = iota // nothing to read: the connection is idle
	peekData                     // bytes are waiting
	peekClosed                   // EOF or an error
)

// dial opens a TCP connection and completes the TLS handshake within the
// dial and handshake timeouts (the transport's TLSHandshakeTimeout does
// not apply to a custom TLS dialer).
func (w *WarmPool) dial(ctx context.Context, network, addr string) (*tls.Conn, error) {
	if w.base != nil {
		c, err := w.base(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc, ok := c.(*tls.Conn)
		if !ok {
			_ = c.Close()
			return nil, fmt.Errorf("upstream dialer returned a %T, not a TLS connection", c)
		}
		return tc, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("upstream address %q: %w", addr, err)
	}
	raw, err := w.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	conf := w.tlsConf.Clone()
	if conf.ServerName == "" {
		conf.ServerName = host
	}
	c := tls.Client(raw, conf)
	hctx, cancel := context.WithTimeout(ctx, tlsHandshakeTimeout)
	defer cancel()
	if err := c.HandshakeContext(hctx); err != nil {
		_ = raw.Close()
		return nil, err
	}
	return c, nil
}

// dialSpare dials a spare and, for TLS 1.3, waits briefly for the session
// tickets the server sends after the handshake, so that the next dial to
// the host resumes even before a request has read anything from this one.
// The wait is about one handshake long (tickets follow the handshake by
// at most a round trip) and happens in the background.
func (w *WarmPool) dialSpare(ctx context.Context, addr string) (*tls.Conn, error) {
	start := time.Now()
	c, err := w.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if c.ConnectionState().Version >= tls.VersionTLS13 {
		wait := min(max(time.Since(start), 5*time.Millisecond), time.Second)
		if !drainTickets(c, wait) {
			_ = c.Close()
			return nil, fmt.Errorf("TLS connection to %s closed right after the handshake", addr)
		}
	}
	return c, nil
}

// keepFilled keeps h at w.want fresh spares: it refills after a spare is
// taken, replaces spares older than maxAge, and backs off while the host
// cannot be reached. It returns when h.ctx ends (Close, or SetHosts
// dropped h).
func (w *WarmPool) keepFilled(h *warmHost) {
	defer w.wg.Done()
	backoff := time.Duration(0)
	failing := false
	for {
		n, next := w.prune(h)
		for ; n < w.want; n++ {
			c, err := w.dialSpare(h.ctx, h.addr)
			if err != nil {
				if h.ctx.Err() != nil {
					return
				}
				if !failing {
					w.log.Warn("warm upstream connection failed; retrying with backoff",
						zap.String("host", h.addr), zap.Error(err))
				}
				failing = true
				backoff = min(max(2*backoff, time.Second), time.Minute)
				next = backoff
				break
			}
			if failing {
				w.log.Info("warm upstream connection established again", zap.String("host", h.addr))
			}
			failing, backoff = false, 0
			if !w.add(h, c) {
				_ = c.Close()
				return
			}
			next = min(next, w.maxAge)
		}
		t := time.NewTimer(next)
		select {
		case <-h.ctx.Done():
			t.Stop()
			return
		case <-h.wake:
			t.Stop()
			if failing {
				// A request needed a connection and dialled it itself;
				// keep the backoff instead of hammering a failing host.
				sleep(h.ctx, backoff)
			}
		case <-t.C:
		}
	}
}

// prune closes spares past maxAge and returns how many are left and how
// long until the oldest of them expires.
func (w *WarmPool) prune(h *warmHost) (int, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	keep := h.spares[:0]
	for _, s := range h.spares {
		if now.Sub(s.born) >= w.maxAge {
			_ = s.conn.Close()
			continue
		}
		keep = append(keep, s)
	}
	clear(h.spares[len(keep):])
	h.spares = keep
	if len(keep) == 0 {
		return 0, w.maxAge
	}
	return len(keep), w.maxAge - now.Sub(keep[0].born)
}

// add stores a fresh spare; false once the pool is closed or h dropped.
func (w *WarmPool) add(h *warmHost, c *tls.Conn) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.hosts == nil || w.hosts[h.addr] != h {
		return false
	}
	h.spares = append(h.spares, spare{conn: c, born: w.now()})
	return true
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
