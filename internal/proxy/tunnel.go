package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// HTTPS forward proxying: `CONNECT onlinetools.ups.com:443`, then TLS with
// a leaf from our CA, then HTTP/1.1 requests, each run through forward.
//
// The proxy serves the tunnel itself rather than through goproxy's MITM
// loop, which upsproxy used before: that loop set no deadline on any phase
// (a tunnel that never handshakes, or idles, or trickles its headers held
// its max_connections slot forever), read headers without a size limit,
// and closed the connection silently on a malformed request. Here every
// phase has a deadline (ConnLimits), headers are capped like on plain
// connections, and framing errors get UPS's envelope. The parsing itself
// is net/http's (http.ReadRequest, its chunked reader). Only HTTP/1.1 is
// offered in ALPN: an h2 client falls back to it.

// tunnel is what requests decrypted from a CONNECT tunnel inherit from it:
// the host the client addressed and, when proxy auth is on, the
// credentials it authenticated the CONNECT with. Each request in the
// tunnel is checked against the configuration current when it arrives.
type tunnel struct {
	target *target
	auth   string
}

// serveConnect decides a CONNECT: MITM for a UPS host on port 443 when a
// CA is configured and the client authenticated (when required), an
// envelope refusal (with nothing dialled, connection closed) otherwise.
func (p *Proxy) serveConnect(w http.ResponseWriter, r *http.Request) {
	authority := r.URL.Host
	tun, err := p.connectTunnel(r, authority)
	hj, canHijack := w.(http.Hijacker)
	if err == nil && !canHijack {
		err = errTunnelNeedsHTTP1
	}
	if err != nil {
		x := p.newExchange(r)
		x.authority = authority
		resp := x.fail(r, err)
		resp.Close = true
		respond(w, resp)
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		p.log.Warn("CONNECT: cannot take over the connection", zap.Error(err))
		return
	}
	p.serveTunnel(conn, brw.Reader, authority, r, tun)
}

// connectTunnel checks a CONNECT request; nil error means MITM it.
func (p *Proxy) connectTunnel(r *http.Request, authority string) (*tunnel, error) {
	t := connectTarget(authority)
	switch {
	case t == nil:
		return nil, errHostNotAllowed
	case p.ca == nil:
		return nil, errMITMNotConfigured
	}
	rt := p.routing.Load()
	if rt.clients == nil {
		return &tunnel{target: t}, nil
	}
	auth := r.Header.Get("Proxy-Authorization")
	if _, err := rt.authenticate(r.Context(), auth); err != nil {
		return nil, err
	}
	return &tunnel{target: t, auth: auth}, nil
}

var errTunnelNeedsHTTP1 = newProxyError(CodeMITMNotConfigured,
	"HTTPS proxying (CONNECT) needs an HTTP/1.1 connection to upsproxy.")

// mitmTLSConfig is the server side of the client's TLS inside a CONNECT
// tunnel: a leaf for the UPS host from our CA on the current template
// (HTTP/1.1 only: the tunnel loop speaks nothing else; the session ticket
// keys: tickets.go).
func (p *Proxy) mitmTLSConfig(authority string) (*tls.Config, error) {
	leaf, err := p.ca.LeafFor(hostname(authority))
	if err != nil {
		p.log.Error("mint MITM certificate", zap.String("host", authority), zap.Error(err))
		return nil, err
	}
	c := p.mitmConf.Load().Clone()
	c.Certificates = []tls.Certificate{*leaf}
	return c, nil
}

// rstAvoidance is how long a connection closed after an error answer keeps
// reading (and discarding) what the client still sends, so that the
// client's TCP stack does not reset the connection before the answer is
// read; net/http's server waits the same.
const rstAvoidance = 500 * time.Millisecond

// serveTunnel runs one CONNECT tunnel on the hijacked connection raw
// (buffered: what the client sent right after the CONNECT) to its end. It
// returns when the tunnel is closed.
func (p *Proxy) serveTunnel(raw net.Conn, buffered *bufio.Reader, authority string, connect *http.Request, tun *tunnel) {
	defer raw.Close()
	lim := &p.limits

	// From the 200 to the end of the handshake: a tunnel that never starts
	// TLS is closed then.
	_ = raw.SetDeadline(time.Now().Add(lim.TLSHandshakeTimeout))
	if _, err := io.WriteString(raw, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	var src net.Conn = raw
	if n := buffered.Buffered(); n > 0 {
		early, _ := buffered.Peek(n)
		src = &earlyConn{Conn: raw, r: io.MultiReader(bytes.NewReader(bytes.Clone(early)), raw)}
	}
	cfg, err := p.mitmTLSConfig(authority)
	if err != nil {
		return
	}
	tc := tls.Server(src, cfg)
	if err := tc.Handshake(); err != nil {
		// TLS errors carry no request data; their text is the best hint
		// when a client does not trust the proxy's CA.
		p.log.Warn("MITM TLS handshake with client failed", zap.String("host", authority), zap.Error(err))
		return
	}
	_ = raw.SetWriteDeadline(time.Time{})

	c := &tunnelConn{p: p, tc: tc, raw: raw, authority: authority, remote: connect.RemoteAddr, tun: tun}
	c.lr.r = tc
	c.br = bufio.NewReader(&c.lr)
	c.bw = bufio.NewWriter(tc)
	c.serve()
}

// earlyConn is a connection whose first bytes were already read.
type earlyConn struct {
	net.Conn
	r io.Reader
}

func (c *earlyConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// tunnelConn is the decrypted side of one tunnel.
type tunnelConn struct {
	p         *Proxy
	tc        *tls.Conn
	raw       net.Conn
	authority string
	remote    string
	tun       *tunnel
	lr        headerLimit
	br        *bufio.Reader
	bw        *bufio.Writer

	// mu orders a "100 Continue" (written when the transport first reads
	// an Expect: 100-continue body) before the response, never inside it.
	mu        sync.Mutex
	responded bool
	cont      continueBody
}

// serve reads requests until the client closes, a deadline passes, or a
// request or response says close.
func (c *tunnelConn) serve() {
	lim := &c.p.limits
	for first := true; ; first = false {
		if first {
			_ = c.tc.SetReadDeadline(time.Now().Add(lim.ReadHeaderTimeout))
		} else {
			// Keep-alive: wait for the next request's first byte, then
			// give its headers their own deadline.
			_ = c.tc.SetReadDeadline(time.Now().Add(lim.IdleTimeout))
			if _, err := c.br.Peek(1); err != nil {
				return
			}
			_ = c.tc.SetReadDeadline(time.Now().Add(lim.ReadHeaderTimeout))
		}
		// net/http's allowance: the bufio.Reader may read past the headers.
		c.lr.limit(int64(lim.MaxHeaderBytes) + 4096)
		req, err := http.ReadRequest(c.br)
		got, hit, connErr := c.lr.read, c.lr.hit, c.lr.err
		c.lr.limit(-1)
		if err != nil {
			if connErr != nil {
				err = connErr
			}
			c.refuseFrame(err, !first || got+int64(c.br.Buffered()) > 0, hit)
			return
		}
		_ = c.tc.SetReadDeadline(time.Time{})
		if !c.handle(req) {
			return
		}
	}
}

// handle runs one request through forward and writes the answer; it
// reports whether the tunnel can carry another request.
func (c *tunnelConn) handle(req *http.Request) bool {
	req.RemoteAddr = c.remote
	// Requests inside the tunnel are origin-form; make them absolute for
	// forward's target check, which also checks the inner Host.
	req.URL.Scheme = "https"
	if req.URL.Host == "" {
		req.URL.Host = req.Host
		if req.URL.Host == "" {
			req.URL.Host = c.authority
		}
	}
	c.mu.Lock()
	c.responded = false
	c.mu.Unlock()
	hasBody := req.Body != nil && req.Body != http.NoBody
	if hasBody && req.ProtoAtLeast(1, 1) && hasToken(req.Header["Expect"], "100-continue") {
		c.cont = continueBody{rc: req.Body, c: c}
		req.Body = &c.cont
	}

	resp := c.p.forward(req, c.tun, c.tc)
	defer resp.Body.Close()

	c.mu.Lock()
	c.responded = true
	c.mu.Unlock()
	keep := !req.Close && !resp.Close
	if x, ok := resp.Body.(*exchange); ok && hasBody && !x.body.finished() {
		// UPS answered before the body ended: what is left of it cannot
		// be skipped to the next request.
		keep = false
	}
	resp.Proto, resp.ProtoMajor, resp.ProtoMinor = "HTTP/1.1", 1, 1
	resp.Close = !keep
	var w io.Writer = c.bw
	if resp.ContentLength < 0 && bodyAllowed(req, resp) {
		if req.ProtoAtLeast(1, 1) {
			resp.TransferEncoding = chunkedEncoding
		} else {
			resp.Close, keep = true, false // HTTP/1.0: the body ends with the connection
		}
	}
	if streamed(resp) {
		// Sent as it comes: what was written is flushed before each wait
		// for more of UPS's body. The writer hides bufio's ReadFrom, which
		// would read into the buffer being flushed.
		resp.Body = &flushingBody{ReadCloser: resp.Body, w: c.bw}
		w = struct{ io.Writer }{c.bw}
	}
	err := resp.Write(w)
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		// UPS's body broke off, or the client went away: closing without
		// the body's end lets the client see an error, never a cut-off
		// body that looks complete.
		return false
	}
	if !keep && resp.StatusCode >= 400 {
		c.lingerClose()
	}
	return keep
}

var chunkedEncoding = []string{"chunked"}

// bodyAllowed reports whether resp, the answer to req, has a body on the wire.
func bodyAllowed(req *http.Request, resp *http.Response) bool {
	if req.Method == http.MethodHead {
		return false
	}
	s := resp.StatusCode
	return !(s >= 100 && s < 200 || s == http.StatusNoContent || s == http.StatusNotModified)
}

// refuseFrame answers a request that could not be read (malformed,
// headers too large, or too slow) in UPS's envelope and ends the tunnel.
// A connection that went quiet or closed between requests gets no answer.
func (c *tunnelConn) refuseFrame(err error, started, tooLarge bool) {
	var e error
	switch {
	case tooLarge:
		e = headersTooLargeError(c.p.limits.MaxHeaderBytes)
	case isTimeout(err):
		if !started {
			return
		}
		e = errHeadersTimeout
	case !started && errors.Is(err, io.EOF):
		return
	default:
		// Not logged: net/http's parse errors quote the offending line,
		// which may hold a client's credentials.
		e = errMalformedRequest
	}
	x := c.p.startExchange("", "")
	x.authority = c.authority
	resp := x.fail(nil, e)
	resp.Close = true
	_ = c.tc.SetWriteDeadline(time.Now().Add(c.p.limits.ReadHeaderTimeout))
	if resp.Write(c.bw) == nil && c.bw.Flush() == nil {
		c.lingerClose()
	}
}

// lingerClose ends the tunnel after an error answer: close_notify, so the
// client sees the end at once, then a short discard of what it still
// sends (see rstAvoidance). serveTunnel closes the connection.
func (c *tunnelConn) lingerClose() {
	_ = c.tc.CloseWrite()
	_ = c.raw.SetReadDeadline(time.Now().Add(rstAvoidance))
	_, _ = io.Copy(io.Discard, io.LimitReader(c.raw, 256<<10))
}

// headerLimit caps what the bufio.Reader of a tunnel may read while a
// request's line and headers are parsed (net/http's server does the same).
type headerLimit struct {
	r    io.Reader
	left int64 // -1: no limit (bodies)
	read int64 // since limit was set
	hit  bool
	// err is the connection's last read error while limited: net/http's
	// parser reports a deadline that cut a header line as a malformed
	// line, not as a timeout.
	err error
}

func (l *headerLimit) limit(n int64) { l.left, l.read, l.hit, l.err = n, 0, false, nil }

func (l *headerLimit) Read(p []byte) (int, error) {
	if l.left < 0 {
		return l.r.Read(p)
	}
	if l.left == 0 {
		l.hit = true
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	l.read += int64(n)
	if err != nil {
		l.err = err
	}
	return n, err
}

// continueBody sends "100 Continue" when the body of an Expect:
// 100-continue request is first read, unless the answer has begun.
type continueBody struct {
	rc   io.ReadCloser
	c    *tunnelConn
	sent bool
}

func (b *continueBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		b.c.mu.Lock()
		if !b.c.responded {
			_, _ = io.WriteString(b.c.tc, "HTTP/1.1 100 Continue\r\n\r\n")
		}
		b.c.mu.Unlock()
	}
	return b.rc.Read(p)
}

func (b *continueBody) Close() error { return b.rc.Close() }

// flushingBody flushes w before each read of a streamed response body.
type flushingBody struct {
	io.ReadCloser
	w *bufio.Writer
}

func (b *flushingBody) Read(p []byte) (int, error) {
	if err := b.w.Flush(); err != nil {
		return 0, err
	}
	return b.ReadCloser.Read(p)
}

// hasToken reports whether a comma-separated header value lists token.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var part string
			part, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}
