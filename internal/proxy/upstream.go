package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// upstreamClient sends forward's common request, a small HTTP/1.1 request
// whose body is already in memory, on the caller's goroutine: it writes
// the request head itself (wire.go) or with net/http's writer, and reads
// the answer's head itself (readhead.go) or with net/http's parser
// (http.ReadResponse), each exactly as net/http would, on a keep-alive
// connection of its own pool. http.Transport runs two goroutines per
// connection and hands every request and response between them over
// channels; on a 2-core machine those handoffs (futex wake-ups, cross-CPU
// scheduling) cost more than the parsing. Everything else (a body that
// streams, Expect: 100-continue, HTTP/2 to UPS, a transport without a TLS
// dialer) goes to the http.Transport it wraps, whose dial functions it
// also uses: warm spares, TLS session resumption and the egress proxy
// serve both.
//
// Not fasthttp's HostClient: it speaks its own request and response types
// with its own parser and header handling, so every request and response
// would be converted twice and the wire format (header case and order,
// 1xx handling, trailers) would no longer be net/http's, which the tests
// of the request path pin down.
type upstreamClient struct {
	tr             *http.Transport
	headerTimeout  time.Duration // 0: none
	idleTimeout    time.Duration // 0: none
	perHost        int
	maxIdle        int // 0: no overall bound
	maxHeaderBytes int64

	lastKey atomic.Pointer[poolKey]

	mu    sync.Mutex
	hosts map[string]*hostPool // by "scheme://host:port"
	nidle int                  // idle connections, all hosts
}

// max1xx bounds the informational answers skipped before the final one,
// as http.Transport does.
const max1xx = 5

// newUpstreamClient wraps tr, whose settings (timeouts, pool bounds, dial
// functions) it keeps.
func newUpstreamClient(tr *http.Transport) *upstreamClient {
	perHost := tr.MaxIdleConnsPerHost
	if perHost <= 0 {
		perHost = http.DefaultMaxIdleConnsPerHost
	}
	mhb := tr.MaxResponseHeaderBytes
	if mhb <= 0 {
		mhb = 10 << 20 // http.Transport's default
	}
	return &upstreamClient{
		tr:             tr,
		headerTimeout:  tr.ResponseHeaderTimeout,
		idleTimeout:    tr.IdleConnTimeout,
		perHost:        perHost,
		maxIdle:        tr.MaxIdleConns,
		maxHeaderBytes: mhb,
		hosts:          make(map[string]*hostPool),
	}
}

// memBody is a request body held in memory whole: the one kind of body
// upstreamClient sends itself (and may send again, on a retry).
type memBody struct{ bytes.Reader }

// Close does nothing: the bytes belong to the exchange.
func (*memBody) Close() error { return nil }

// CloseIdleConnections closes the idle connections of both pools.
func (c *upstreamClient) CloseIdleConnections() {
	c.mu.Lock()
	var idle []*upConn
	for _, hp := range c.hosts {
		idle = append(idle, hp.idle...)
		clear(hp.idle)
		hp.idle = hp.idle[:0]
	}
	c.nidle = 0
	c.mu.Unlock()
	for _, pc := range idle {
		pc.stopTimer()
		_ = pc.conn.Close()
	}
	c.tr.CloseIdleConnections()
}

// handles reports whether c sends req itself; if not, the transport does.
func (c *upstreamClient) handles(req *http.Request) (body *memBody, ok bool) {
	if !canPeek || c.tr.DisableKeepAlives || c.tr.Proxy != nil || req.Close || req.URL == nil || len(req.Trailer) > 0 {
		return nil, false
	}
	switch req.URL.Scheme {
	case "http":
	case "https":
		// The TLS dialer is TuneTransport's warm pool; with HTTP/2 on,
		// UPS may pick h2, which only the transport speaks.
		if c.tr.DialTLSContext == nil || c.tr.ForceAttemptHTTP2 {
			return nil, false
		}
	default:
		return nil, false
	}
	if hasHeader(req.Header, "Expect") || hasHeader(req.Header, "Upgrade") || req.Method == http.MethodConnect {
		return nil, false
	}
	switch b := req.Body.(type) {
	case nil:
		return nil, true
	case *memBody:
		return b, int64(b.Len()) == req.ContentLength
	}
	return nil, req.Body == http.NoBody
}

// RoundTrip sends req and returns UPS's response, whose body must be
// read to its end (or closed) as with any RoundTripper.
func (c *upstreamClient) RoundTrip(req *http.Request) (*http.Response, error) {
	body, ok := c.handles(req)
	if !ok {
		return c.tr.RoundTrip(req)
	}
	host := req.URL.Host
	if req.URL.Port() == "" {
		port := "80"
		if req.URL.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(req.URL.Hostname(), port)
	}
	key := c.poolKey(req.URL.Scheme, host)
	ctx := req.Context()
	pc, reused, err := c.get(ctx, key, req.URL.Scheme, host)
	if err != nil {
		return nil, err
	}
	for {
		resp, err := pc.roundTrip(ctx, req)
		if err == nil {
			return resp, nil
		}
		// A kept-alive connection the server dropped is found out only
		// when used: send once more on a new one, when that cannot make
		// UPS act twice (see retryable).
		if !reused || !pc.retryable(req) || ctx.Err() != nil {
			return nil, err
		}
		if body != nil {
			if _, serr := body.Seek(0, io.SeekStart); serr != nil {
				return nil, err
			}
		}
		if pc, err = c.dialNow(ctx, key, req.URL.Scheme, host); err != nil {
			return nil, err
		}
		reused = false
	}
}

// poolKey is "scheme://host:port", the key of the pool's map; the last
// one built is kept, since requests go to one or two UPS hosts.
func (c *upstreamClient) poolKey(scheme, host string) string {
	if k := c.lastKey.Load(); k != nil && k.scheme == scheme && k.host == host {
		return k.key
	}
	k := &poolKey{scheme: scheme, host: host, key: scheme + "://" + host}
	c.lastKey.Store(k)
	return k.key
}

type poolKey struct{ scheme, host, key string }

// dial opens a connection to addr as the transport would: HTTPS through
// its TLS dialer (the warm pool, which also goes through the egress proxy
// when one is set), HTTP through its dialer.
func (c *upstreamClient) dial(ctx context.Context, scheme, addr string) (net.Conn, error) {
	if scheme == "https" {
		return c.tr.DialTLSContext(ctx, "tcp", addr)
	}
	if c.tr.DialContext != nil {
		return c.tr.DialContext(ctx, "tcp", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// hostPool is the pool of one upstream ("scheme://host:port"): its idle
// connections and the requests waiting for one. Guarded by the client's mu.
type hostPool struct {
	scheme, addr string
	idle         []*upConn     // most recent last
	waiters      []*connWaiter // oldest first
	busy         int           // connections lent to requests
	dialing      int           // dials in flight for the waiters
}

// connWaiter is a request waiting for a connection: it gets the first
// one to come back to the pool or to be dialled, whichever is first, or
// a dial's error.
type connWaiter struct{ ch chan connResult }

type connResult struct {
	pc     *upConn
	reused bool
	err    error
}

// host returns key's pool, made on first use; c.mu is held.
func (c *upstreamClient) host(key, scheme, addr string) *hostPool {
	hp := c.hosts[key]
	if hp == nil {
		hp = &hostPool{scheme: scheme, addr: addr}
		c.hosts[key] = hp
	}
	return hp
}

// get lends a connection to key's upstream: the most recently used idle
// one that is still open, else the first that comes free or is dialled
// (wait). reused says it served a request before.
func (c *upstreamClient) get(ctx context.Context, key, scheme, addr string) (*upConn, bool, error) {
	for {
		c.mu.Lock()
		hp := c.host(key, scheme, addr)
		n := len(hp.idle)
		if n == 0 {
			c.mu.Unlock()
			return c.wait(ctx, hp)
		}
		pc := hp.idle[n-1]
		hp.idle[n-1] = nil
		hp.idle = hp.idle[:n-1]
		c.nidle--
		hp.busy++
		c.mu.Unlock()
		// A timer that fired already finds pc gone from the pool and
		// leaves it alone (expire).
		pc.stopTimer()
		if pc.alive() {
			return pc, true, nil
		}
		c.drop(pc)
	}
}

// wait queues for a connection of hp: the first to come back to the pool
// or to be dialled goes to the oldest waiter, as with http.Transport.
// Up to the pool's size every waiter has a dial of its own, so a cold
// pool fills at once; past it, only extraDials are in flight. A burst
// larger than the pool against a quick upstream is then served by the
// connections coming back, each after one exchange, instead of a TLS
// handshake per request (on both sides; a burst of 1,000 against the
// bench's UPS spent over 400 ms in them), while a slow upstream still
// gains extraDials connections per dial's time.
func (c *upstreamClient) wait(ctx context.Context, hp *hostPool) (*upConn, bool, error) {
	w := &connWaiter{ch: make(chan connResult, 1)}
	c.mu.Lock()
	hp.waiters = append(hp.waiters, w)
	c.balance(hp)
	c.mu.Unlock()
	select {
	case r := <-w.ch:
		return r.pc, r.reused, r.err
	case <-ctx.Done():
		c.mu.Lock()
		i := slices.Index(hp.waiters, w)
		if i >= 0 {
			hp.waiters = slices.Delete(hp.waiters, i, i+1)
		}
		c.mu.Unlock()
		if i < 0 {
			// Served meanwhile: pass the connection on.
			if r := <-w.ch; r.pc != nil {
				c.put(r.pc)
			}
		}
		return nil, false, ctx.Err()
	}
}

// extraDials is how many dials may be in flight for one upstream once its
// connections in use and being dialled reach the pool's size.
const extraDials = 8

// balance starts the dials hp's waiters need; c.mu is held.
func (c *upstreamClient) balance(hp *hostPool) {
	limit := max(c.perHost-hp.busy, 0) + extraDials
	for hp.dialing < len(hp.waiters) && hp.dialing < limit {
		c.startDial(hp)
	}
}

// startDial dials a connection for hp's waiters; c.mu is held.
func (c *upstreamClient) startDial(hp *hostPool) {
	hp.dialing++
	go c.dialFor(hp)
}

// dialFor dials a connection and hands it to the oldest waiter, or pools
// it when none is left.
func (c *upstreamClient) dialFor(hp *hostPool) {
	// Not a request's context: the connection may serve another waiter.
	// The dialers bound the dial and the handshake.
	conn, err := c.dial(context.Background(), hp.scheme, hp.addr)
	c.mu.Lock()
	hp.dialing--
	if err != nil {
		// The oldest waiter gets the error. With no connection in use
		// that could come back, so do all the waiters the dials still in
		// flight do not cover: UPS is likely unreachable, and they would
		// otherwise fail one dial timeout after another.
		n := min(len(hp.waiters), 1)
		if hp.busy == 0 {
			n = max(len(hp.waiters)-hp.dialing, n)
		}
		for _, w := range hp.waiters[:n] {
			w.ch <- connResult{err: err}
		}
		hp.waiters = slices.Delete(hp.waiters, 0, n)
		c.balance(hp)
		c.mu.Unlock()
		return
	}
	pc := c.newConn(hp, conn)
	hp.busy++
	c.mu.Unlock()
	c.put(pc)
}

// dialNow dials a connection for one request (a retry), lent to it.
func (c *upstreamClient) dialNow(ctx context.Context, key, scheme, addr string) (*upConn, error) {
	conn, err := c.dial(ctx, scheme, addr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	hp := c.host(key, scheme, addr)
	hp.busy++
	c.mu.Unlock()
	return c.newConn(hp, conn), nil
}

// drop closes a lent connection that will not come back; waiters that
// counted on it get dials.
func (c *upstreamClient) drop(pc *upConn) {
	_ = pc.conn.Close()
	c.mu.Lock()
	pc.hp.busy--
	c.balance(pc.hp)
	c.mu.Unlock()
}

// put takes a lent connection back: to the oldest waiter, else to the
// idle pool, or closed when the pool is full.
func (c *upstreamClient) put(pc *upConn) {
	hp := pc.hp
	c.mu.Lock()
	if len(hp.waiters) > 0 {
		w := hp.waiters[0]
		hp.waiters = slices.Delete(hp.waiters, 0, 1)
		c.mu.Unlock()
		w.ch <- connResult{pc: pc, reused: pc.used}
		return
	}
	hp.busy--
	if len(hp.idle) >= c.perHost || (c.maxIdle > 0 && c.nidle >= c.maxIdle) {
		c.mu.Unlock()
		_ = pc.conn.Close()
		return
	}
	hp.idle = append(hp.idle, pc)
	c.nidle++
	if c.idleTimeout > 0 {
		if pc.timer == nil {
			pc.timer = time.AfterFunc(c.idleTimeout, pc.expire)
		} else {
			pc.timer.Reset(c.idleTimeout)
		}
	}
	c.mu.Unlock()
}

func (pc *upConn) stopTimer() {
	if pc.timer != nil {
		pc.timer.Stop()
	}
}

// expire closes pc if it is still idle when its idle timeout fires.
func (pc *upConn) expire() {
	c, hp := pc.c, pc.hp
	c.mu.Lock()
	if i := slices.Index(hp.idle, pc); i >= 0 {
		hp.idle = slices.Delete(hp.idle, i, i+1)
		c.nidle--
		c.mu.Unlock()
		_ = pc.conn.Close()
		return
	}
	c.mu.Unlock()
}

// upConn is one keep-alive connection to an upstream, used by one request
// at a time.
type upConn struct {
	c    *upstreamClient
	hp   *hostPool
	conn net.Conn
	br   *bufio.Reader // reads through the upConn (header budget)
	bw   *bufio.Writer // writes through the upConn (byte count)
	// timer closes the connection when it stays idle too long; nil
	// until first pooled (or without an idle timeout).
	timer *time.Timer
	// peek looks at the idle socket (alive); made on first use.
	peek *peeker

	used bool // served a request before (a retry may follow its failure)

	// Per request.
	headerLeft int64 // bytes the response headers may still take; <0: no limit
	read       bool  // a byte of the response arrived
	written    int64 // bytes of the request handed to the socket
}

func (c *upstreamClient) newConn(hp *hostPool, conn net.Conn) *upConn {
	pc := &upConn{c: c, hp: hp, conn: conn, headerLeft: -1}
	pc.br = bufio.NewReaderSize(pc, 4<<10)
	pc.bw = bufio.NewWriterSize(pc, 4<<10)
	return pc
}

// errHeadersTooLarge ends a response whose headers exceed the limit.
var errHeadersTooLarge = errors.New("upstream response headers too large")

// Read reads the connection for br, within the header budget.
func (pc *upConn) Read(b []byte) (int, error) {
	if pc.headerLeft == 0 {
		return 0, errHeadersTooLarge
	}
	if pc.headerLeft > 0 && int64(len(b)) > pc.headerLeft {
		b = b[:pc.headerLeft]
	}
	n, err := pc.conn.Read(b)
	if n > 0 {
		pc.read = true
		if pc.headerLeft > 0 {
			pc.headerLeft -= int64(n)
		}
	}
	return n, err
}

// Write writes the connection for bw, counting what it took.
func (pc *upConn) Write(b []byte) (int, error) {
	n, err := pc.conn.Write(b)
	pc.written += int64(n)
	return n, err
}

// alive says whether an idle connection is still open, with nothing
// unexpected waiting on it (a stray byte would be taken as the next
// response's).
func (pc *upConn) alive() bool {
	tc, isTLS := pc.conn.(*tls.Conn)
	if pc.peek == nil {
		nc := pc.conn
		if isTLS {
			nc = tc.NetConn()
		}
		pc.peek = newPeeker(nc)
	}
	switch pc.peek.peek() {
	case peekEmpty:
		return true
	case peekData:
		// Only TLS post-handshake messages may arrive on an idle TLS
		// connection (see alive in warm.go); anything on a plain one
		// would be taken as the next response's.
		return isTLS && drainTickets(tc, time.Millisecond)
	}
	return false
}

// retryable says whether a request that failed on this reused connection
// may be sent again on another: nothing of a response came back, and
// either none of the request left (the server cannot have acted on it)
// or the request is one http.Transport would repeat too (idempotent).
// A POST that was sent whole and met a closed connection is not repeated:
// UPS may have shipped it.
func (pc *upConn) retryable(req *http.Request) bool {
	if pc.read {
		return false
	}
	if pc.written == 0 {
		return true
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return hasHeader(req.Header, "Idempotency-Key") || hasHeader(req.Header, "X-Idempotency-Key")
}

// roundTrip sends req on pc and reads the response headers. On error pc
// is closed.
func (pc *upConn) roundTrip(ctx context.Context, req *http.Request) (*http.Response, error) {
	pc.read, pc.written, pc.used = false, 0, true
	// Cancelling the request closes the connection, which ends a write or
	// read in progress, the body's included.
	// A request that can never be cancelled (the connection loop's have
	// context.Background) needs no watch: two allocations fewer.
	stop := neverCancelled
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { _ = pc.conn.Close() })
	}
	fail := func(err error) (*http.Response, error) {
		stop()
		pc.c.drop(pc)
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	// Not the *bufio.Writer itself: Request.Write flushes the headers of
	// a body it does not know to be in memory (memBody) on their own,
	// one more write (and TCP segment) per request.
	if writeRequestHead(pc.bw, req) {
		if b, ok := req.Body.(*memBody); ok {
			if _, err := b.WriteTo(pc.bw); err != nil {
				return fail(fmt.Errorf("write request: %w", err))
			}
		}
	} else if err := req.Write(noHeaderFlush{pc.bw}); err != nil {
		return fail(fmt.Errorf("write request: %w", err))
	}
	if err := pc.bw.Flush(); err != nil {
		return fail(fmt.Errorf("write request: %w", err))
	}
	if pc.c.headerTimeout > 0 {
		if err := pc.conn.SetReadDeadline(time.Now().Add(pc.c.headerTimeout)); err != nil {
			return fail(err)
		}
	}
	var resp *http.Response
	for n1xx := 0; ; n1xx++ {
		pc.headerLeft = pc.c.maxHeaderBytes
		// The common head, buffered whole after the first read, is
		// parsed here (readhead.go).
		_, err := pc.br.Peek(1)
		if err == nil {
			var ok bool
			if resp, ok = readResponseHead(pc.br, req); !ok {
				resp, err = http.ReadResponse(pc.br, req)
			}
		} else if err == io.EOF {
			err = io.ErrUnexpectedEOF // as http.ReadResponse says it
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				err = errHeaderTimeout
			}
			return fail(fmt.Errorf("read response: %w", err))
		}
		if resp.StatusCode >= 200 {
			break
		}
		// Informational answers (102, 103) precede the real one; a 101
		// was not asked for (no Upgrade is ever sent).
		if resp.StatusCode == http.StatusSwitchingProtocols || n1xx >= max1xx {
			return fail(fmt.Errorf("read response: unexpected %s", resp.Status))
		}
	}
	pc.headerLeft = -1
	if pc.c.headerTimeout > 0 {
		if err := pc.conn.SetReadDeadline(time.Time{}); err != nil {
			return fail(err)
		}
	}
	b := &upBody{pc: pc, rc: resp.Body, stop: stop, ctx: ctx, keep: !resp.Close}
	if resp.Body == http.NoBody {
		b.finish(true)
		return resp, nil
	}
	resp.Body = b
	return resp, nil
}

// neverCancelled is the stop function of a request whose context cannot
// be cancelled: there is no watch to stop, and nothing closed the
// connection.
func neverCancelled() bool { return true }

// noHeaderFlush hides the *bufio.Writer from Request.Write (see roundTrip)
// but keeps its WriteByte, so that Request.Write does not add a buffer of
// its own.
type noHeaderFlush struct{ *bufio.Writer }

// errHeaderTimeout is the response header timeout, a net.Error whose
// Timeout is true (the client gets 504), as http.Transport's is.
var errHeaderTimeout error = headerTimeoutError{}

type headerTimeoutError struct{}

func (headerTimeoutError) Error() string   { return "timeout awaiting response headers" }
func (headerTimeoutError) Timeout() bool   { return true }
func (headerTimeoutError) Temporary() bool { return true }

// upBody is a response body read from an upConn: read to its end on a
// response that allows keep-alive, it returns the connection to the pool;
// closed early, broken, or after Connection: close, it closes it.
type upBody struct {
	pc   *upConn
	rc   io.ReadCloser
	stop func() bool
	ctx  context.Context
	keep bool

	mu   sync.Mutex
	done bool // the connection was released
	eof  bool // by reaching the body's end
}

func (b *upBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	done, eof := b.done, b.eof
	b.mu.Unlock()
	if eof {
		// Read again after its end (Response.Write does): the connection
		// may already serve another request.
		return 0, io.EOF
	}
	if done {
		return 0, errBodyClosed
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.finish(true)
	case err != nil:
		b.finish(false)
		if cerr := b.ctx.Err(); cerr != nil {
			err = cerr
		}
	}
	return n, err
}

// errBodyClosed is a read of a body already closed, or already read to
// its end and handed back.
var errBodyClosed = errors.New("read on closed response body")

// Close ends the body: unless it was read to its end, the connection is
// closed (what is left of the body is not drained).
func (b *upBody) Close() error {
	b.finish(false)
	return nil
}

// finish releases the connection once: to the pool when the body ended
// cleanly (eof) on a keep-alive response with nothing more on the wire
// and the request was not cancelled, else closed.
func (b *upBody) finish(eof bool) {
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return
	}
	b.done, b.eof = true, eof
	b.mu.Unlock()
	pc := b.pc
	if !b.stop() || !eof || !b.keep || pc.br.Buffered() > 0 {
		pc.c.drop(pc)
		return
	}
	pc.c.put(pc)
}
