package proxy

import (
	"errors"
	"io"
	"sync/atomic"
	"time"
)

// ConnLimits bound how long a client may hold a connection without making
// progress, in every phase, so that stalled clients cannot fill the
// listener's max_connections slots. They are fixed at start-up (New).
//
// The proxy's connection loop (conn.go) applies them to plain connections
// and inside HTTPS (CONNECT) tunnels alike.
type ConnLimits struct {
	// ReadHeaderTimeout bounds the request line and headers, from the first
	// byte of a request (from the end of the TLS handshake for a tunnel's
	// first request).
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection (or tunnel) that sends no
	// next request.
	IdleTimeout time.Duration
	// TLSHandshakeTimeout bounds a CONNECT tunnel from the proxy's "200" to
	// the end of the client's TLS handshake: a tunnel that never starts TLS
	// is closed then.
	TLSHandshakeTimeout time.Duration
	// MaxHeaderBytes caps the request line and headers; larger requests get
	// UPSPROXY_BAD_REQUEST (431).
	MaxHeaderBytes int
	// BodyTimeout and BodyMinRate pace request bodies: by the time a body
	// has delivered n bytes, at most BodyTimeout + n/BodyMinRate seconds
	// may have passed since the proxy began reading it. A total timeout
	// would have to be long enough for the largest body on the slowest
	// legitimate link, which would let a staller hold a slot just as
	// long; a minimum rate cuts a client that sends nothing after
	// BodyTimeout, whatever its Content-Length, while a large Ship request
	// on a slow line (anything faster than BodyMinRate) always completes.
	BodyTimeout time.Duration
	BodyMinRate int64 // bytes per second
}

// Defaults of ConnLimits (and of the HCL limits block).
const (
	DefaultReadHeaderTimeout   = 10 * time.Second
	DefaultIdleTimeout         = 120 * time.Second
	DefaultTLSHandshakeTimeout = 10 * time.Second
	DefaultMaxHeaderBytes      = 64 << 10
	DefaultBodyTimeout         = 30 * time.Second
	DefaultBodyMinRate         = 1 << 10
)

// withDefaults fills zero fields with the defaults.
func (l ConnLimits) withDefaults() ConnLimits {
	set := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	set(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	set(&l.IdleTimeout, DefaultIdleTimeout)
	set(&l.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout)
	set(&l.BodyTimeout, DefaultBodyTimeout)
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.BodyMinRate == 0 {
		l.BodyMinRate = DefaultBodyMinRate
	}
	return l
}

func (l ConnLimits) validate() error {
	if l.ReadHeaderTimeout < 0 || l.IdleTimeout < 0 || l.TLSHandshakeTimeout < 0 || l.BodyTimeout < 0 ||
		l.MaxHeaderBytes < 0 || l.BodyMinRate < 0 {
		return errors.New("proxy: ConnLimits must not be negative")
	}
	return nil
}

// readDeadliner is the client connection, as far as the body pace needs
// it (a clientConn).
type readDeadliner interface {
	SetReadDeadline(time.Time) error
}

// clientBody is the client's request body as forward reads it (and the
// transport, when it streams): it paces the reads (ConnLimits.Body*), cuts
// a body of unknown length off past MaxRequestBody, and keeps the first
// failure, so that a broken or stalled body is answered as the client's
// fault (400/408), not UPS's (502). It lives inside the exchange: no
// allocation of its own.
type clientBody struct {
	rc io.ReadCloser
	// left is what may still be read of a body of unknown length; -1 when
	// the length is known (net/http enforces it).
	left int64

	conn    readDeadliner // nil: no pacing (not served by a known connection)
	lim     *ConnLimits   // BodyTimeout and BodyMinRate
	started time.Time
	n       int64
	// done: EOF seen, the connection's deadline is no longer the body's.
	// Atomic: the tunnel reads it while the transport may still read.
	done atomic.Bool
	// tooLarge: the body grew past MaxRequestBody.
	tooLarge atomic.Bool

	// failed holds the first read error other than EOF and the limit;
	// set by whichever goroutine reads (forward, or the transport).
	failed atomic.Pointer[clientBodyError]
}

func (b *clientBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		// Exactly at the limit: only a further byte makes it too large.
		var one [1]byte
		n, err := b.read(one[:])
		if n > 0 {
			b.tooLarge.Store(true)
			return 0, errBodyTooLarge
		}
		return 0, err
	}
	if b.left > 0 && int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.read(p)
	if b.left > 0 {
		b.left -= int64(n)
	}
	return n, err
}

func (b *clientBody) read(p []byte) (int, error) {
	if b.conn != nil && !b.done.Load() {
		if b.started.IsZero() {
			// Wall time: connection deadlines are wall-clock by nature,
			// the injected clock does not apply to them.
			b.started = time.Now()
		}
		_ = b.conn.SetReadDeadline(b.started.Add(b.lim.BodyTimeout + time.Duration(b.n*int64(time.Second)/b.lim.BodyMinRate)))
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	switch {
	case err == nil:
	case err == io.EOF:
		if !b.done.Swap(true) && b.conn != nil {
			// The body is complete: net/http's wait for the next request
			// (and a tunnel's) must not inherit its deadline.
			_ = b.conn.SetReadDeadline(time.Time{})
		}
	default:
		b.failed.CompareAndSwap(nil, &clientBodyError{err: err})
	}
	return n, err
}

func (b *clientBody) Close() error { return b.rc.Close() }
