package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/net/http/httpguts"
)

// The proxy serves its client connections itself, in all three modes: an
// HTTP/1.1 loop per connection (clientConn.serve) that reads a request
// (the common head itself, field for field as net/http would, see
// readhead.go; any other with http.ReadRequest and its chunked reader),
// runs it through forward and writes the answer (the common one itself,
// see wire.go; any other with net/http's Response.Write).
// A CONNECT turns the same connection into a TLS tunnel (tunnel.go) and the
// loop goes on inside it.
//
// Not net/http's Server, which upsproxy used before for plain connections:
// per request it starts a goroutine to watch for the client going away
// (and stops it again by moving the read deadline), builds a
// ResponseWriter, copies every header into it and writes through a
// chunking layer; on this 2-core machine kind that was about a third of
// the request path's CPU. It also keeps a 4 KiB read buffer, a 4 KiB write
// buffer and a grown goroutine stack for every idle keep-alive client,
// answered malformed requests in plain text rather than UPS's envelope, and
// could not share the tunnel's code. Here every phase has a deadline
// (ConnLimits), headers are capped, every refusal is in the envelope, and a
// connection idle for longer than hotIdle gives its buffers back.

// hotIdle is how long a keep-alive connection waits for its next request
// holding its read buffer. After that it waits with no buffer (a one-byte
// read), so that thousands of idle clients cost little memory; a client
// that sends several requests a second never pays the extra read.
const hotIdle = 500 * time.Millisecond

// Buffers of client connections, shared while connections idle.
var (
	connReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	connWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

// clientConn is one client connection, plain or (after a CONNECT) the
// decrypted side of a tunnel.
type clientConn struct {
	p      *Proxy
	raw    net.Conn // the TCP connection
	conn   net.Conn // raw, or the TLS connection inside a tunnel
	tc     *tls.Conn
	remote string
	// tun and authority are set inside a CONNECT tunnel.
	tun       *tunnel
	authority string

	lr headerLimit
	br *bufio.Reader // nil while idle with no buffer
	bw *bufio.Writer // held while a request is answered
	// one is the byte a buffer-less wait read (see hotIdle).
	one [1]byte

	// idle is set while the connection waits for a request (Shutdown
	// closes idle connections at once).
	idle atomic.Bool

	// mu orders a "100 Continue" (written when the transport first reads
	// an Expect: 100-continue body) before the response, never inside it.
	mu        sync.Mutex
	responded bool
	cont      continueBody

	lastMethod string
	// first: the next request is the connection's (or tunnel's) first.
	first bool
	// bothLengths: the request had both Transfer-Encoding and
	// Content-Length (framedTwice); the connection closes after the answer.
	bothLengths bool
}

// SetReadDeadline is the client connection's, for the body's pace
// (readDeadliner).
func (c *clientConn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// serve reads requests until the client closes, a deadline passes, or a
// request or response says close; then it closes the connection.
func (c *clientConn) serve() {
	defer c.close()
	defer func() {
		if v := recover(); v != nil {
			// A bug must cost one connection, never the daemon.
			c.p.log.Error("panic serving a client connection", zap.Any("panic", v), zap.ByteString("stack", debug.Stack()))
		}
	}()
	c.lr.r = c.conn
	c.br = connReaders.Get().(*bufio.Reader)
	c.br.Reset(&c.lr)
	c.first = true
	for {
		first := c.first
		c.first = false
		if !c.await(first) {
			return
		}
		req, ok := c.readRequest(first)
		if !ok {
			return
		}
		if !c.handle(req) {
			return
		}
	}
}

// await waits for the next request's first byte (keep-alive), then gives
// its headers their own deadline; false ends the connection.
func (c *clientConn) await(first bool) bool {
	lim := &c.p.limits
	c.idle.Store(true)
	if c.p.shuttingDown.Load() {
		return false
	}
	if !first && c.br.Buffered() == 0 {
		start := time.Now()
		hot := min(lim.IdleTimeout, hotIdle)
		_ = c.conn.SetReadDeadline(start.Add(hot))
		_, err := c.br.Peek(1)
		if err != nil && isTimeout(err) && lim.IdleTimeout > hot && c.tc == nil {
			err = c.coldWait(start.Add(lim.IdleTimeout))
		}
		if err != nil {
			return false
		}
	}
	c.idle.Store(false)
	if !headBuffered(c.br) {
		_ = c.conn.SetReadDeadline(time.Now().Add(lim.ReadHeaderTimeout))
	}
	return true
}

// headBuffered reports whether br already holds a whole request head (up
// to its blank line): the parser will not read the connection for it, so
// the header deadline need not be set (each move of a deadline is a timer
// update, and may wake the network poller). What reads the connection
// after the head sets its own deadline: the body's pace (clientBody), a
// tunnel's handshake, the next wait (await). A head that starts with an
// empty line (skipped after a POST) is given the deadline anyway.
func headBuffered(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	return len(b) > 0 && b[0] != '\r' && b[0] != '\n' && bytes.Contains(b, crlfcrlf)
}

var crlfcrlf = []byte("\r\n\r\n")

// coldWait waits for the next request with no read buffer: the reader goes
// back to the pool and a one-byte read waits for the client; the byte is
// then read first by a fresh reader.
func (c *clientConn) coldWait(deadline time.Time) error {
	connReaders.Put(c.br)
	c.br = nil
	_ = c.conn.SetReadDeadline(deadline)
	n, err := c.conn.Read(c.one[:])
	c.br = connReaders.Get().(*bufio.Reader)
	c.br.Reset(&c.lr)
	if n == 1 {
		c.lr.pre = c.one[:]
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// readRequest reads the next request's line and headers; on failure it
// answers (refuseFrame) and reports false.
func (c *clientConn) readRequest(first bool) (*http.Request, bool) {
	lim := &c.p.limits
	if c.lastMethod == http.MethodPost {
		// RFC 9112 2.2: a server may skip empty lines before a request
		// line (old clients send CRLF after a POST body).
		peek, _ := c.br.Peek(4)
		_, _ = c.br.Discard(leadingCRLF(peek))
	}
	// net/http's allowance: the bufio.Reader may read past the headers.
	c.lr.limit(int64(lim.MaxHeaderBytes) + 4096)
	// The head as it came, for framedTwice: net/http's parser drops a
	// Content-Length that comes with Transfer-Encoding. Usually the whole
	// head is in the buffer after its first read and stays in place while
	// it is parsed. (A failed first read fails the parser's the same way.)
	if c.br.Buffered() == 0 {
		_, _ = c.br.Peek(1)
	}
	// The common head, buffered whole, is parsed here (readhead.go).
	if req, ok := readRequestHead(c.br, lim.MaxHeaderBytes); ok {
		got, hit := c.lr.read, c.lr.hit
		c.lr.limit(-1)
		c.bothLengths = false
		return c.accepted(req, first, got, hit, true)
	}
	buffered, _ := c.br.Peek(c.br.Buffered())
	readBefore := c.lr.read
	req, err := http.ReadRequest(c.br)
	got, hit, connErr := c.lr.read, c.lr.hit, c.lr.err
	c.lr.limit(-1)
	// Only a request with a Transfer-Encoding can have had both. When
	// its head took more reads than the buffer held (the buffer then
	// moved), it is not looked at: the connection closes after the answer
	// all the same, which is always safe.
	c.bothLengths = err == nil && len(req.TransferEncoding) > 0 && (got != readBefore || framedTwice(buffered))
	if err != nil {
		if connErr != nil {
			err = connErr
		}
		c.refuseFrame(err, !first || got+int64(c.br.Buffered()) > 0, hit)
		return nil, false
	}
	return c.accepted(req, first, got, hit, false)
}

// accepted applies checkRequest to a request just read; got and hit are
// what the head's reads took and whether they met the header limit;
// fieldsValid: its header names and values are known to be valid
// (readRequestHead takes no others).
func (c *clientConn) accepted(req *http.Request, first bool, got int64, hit, fieldsValid bool) (*http.Request, bool) {
	if err := checkRequest(req, fieldsValid); err != nil {
		c.refuseFrame(err, !first || got+int64(c.br.Buffered()) > 0, hit)
		return nil, false
	}
	c.lastMethod = req.Method
	// The header deadline is left as it is, not cleared: nothing reads
	// the connection until the body (paced, with a deadline of its own),
	// a tunnel (its handshake's) or the next request (await's).
	req.RemoteAddr = c.remote
	return req, true
}

// framedTwice reports whether a request head has both a Content-Length
// and a Transfer-Encoding line. net/http frames such a request by its
// Transfer-Encoding (as RFC 9112 6.3 says) and drops the Content-Length;
// RFC 9112 also says the connection must then close after the answer: a
// front end that framed it by the Content-Length would read what follows
// differently (request smuggling).
func framedTwice(head []byte) bool {
	var cl, te bool
	// The first line is the request line; the head ends at an empty line.
	_, rest, _ := bytes.Cut(head, []byte{'\n'})
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			break
		}
		name, _, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		cl = cl || bytes.EqualFold(name, contentLengthName)
		te = te || bytes.EqualFold(name, transferEncodingName)
	}
	return cl && te
}

var (
	contentLengthName    = []byte("Content-Length")
	transferEncodingName = []byte("Transfer-Encoding")
)

func leadingCRLF(b []byte) int {
	n := 0
	for _, c := range b {
		if c != '\r' && c != '\n' {
			break
		}
		n++
	}
	return n
}

// errUnsupportedProto refuses request lines of other HTTP versions.
var errUnsupportedProto = errors.New("unsupported HTTP version")

// checkRequest applies what net/http's server checks after parsing: HTTP/1
// only, a valid Host (required from HTTP/1.1 on, but for CONNECT; the
// parser already refused two and put it in req.Host, the URL's host for
// an absolute-form request), and header names and values as RFC 9110
// allows them (unless fieldsValid says they were checked as they were
// read).
func checkRequest(req *http.Request, fieldsValid bool) error {
	if req.ProtoMajor != 1 {
		return errUnsupportedProto
	}
	if req.Host == "" && req.ProtoAtLeast(1, 1) && req.Method != http.MethodConnect {
		return errors.New("missing required Host header")
	}
	if req.Host != "" && !httpguts.ValidHostHeader(req.Host) {
		return errors.New("malformed Host header")
	}
	if fieldsValid {
		return nil
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return errors.New("invalid header name")
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return errors.New("invalid header value")
			}
		}
	}
	return nil
}

// handle runs one request and writes the answer; it reports whether the
// connection can carry another request.
func (c *clientConn) handle(req *http.Request) bool {
	if c.tun == nil {
		if rt := c.p.routing.Load(); len(rt.allow) > 0 && !rt.allowed(c.remote) {
			return c.refuseClient(req)
		}
		if req.Method == http.MethodConnect {
			return c.connect(req)
		}
		if !req.URL.IsAbs() {
			markBaseURL(req)
		}
	} else {
		// Requests inside the tunnel are origin-form; make them absolute
		// for forward's target check, which also checks the inner Host.
		req.URL.Scheme = "https"
		if req.URL.Host == "" {
			req.URL.Host = req.Host
			if req.URL.Host == "" {
				req.URL.Host = c.authority
			}
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

	resp := c.p.forward(req, c.tun, c)
	defer resp.Body.Close()

	c.mu.Lock()
	c.responded = true
	c.mu.Unlock()
	keep := !req.Close && !resp.Close && !c.p.shuttingDown.Load() && !c.bothLengths
	if x, ok := resp.Body.(*exchange); ok && hasBody && !x.body.finished() {
		// UPS answered before the body ended: what is left of it cannot
		// be skipped to the next request.
		keep = false
	}
	return c.write(req, resp, keep)
}

// write sends resp, the answer to req, and reports whether the connection
// stays open: keep, unless the body's framing or the write says otherwise.
func (c *clientConn) write(req *http.Request, resp *http.Response, keep bool) bool {
	resp.Proto, resp.ProtoMajor, resp.ProtoMinor = "HTTP/1.1", 1, 1
	if resp.ContentLength < 0 && bodyAllowed(req, resp) {
		if req.ProtoAtLeast(1, 1) {
			resp.TransferEncoding = chunkedEncoding
		} else {
			keep = false // HTTP/1.0: the body ends with the connection
		}
	}
	resp.Close = !keep
	if keep && !req.ProtoAtLeast(1, 1) {
		// An HTTP/1.0 client that asked for keep-alive closes unless told.
		resp.Header["Connection"] = keepAliveValue
	}
	if _, ok := resp.Header["Date"]; !ok {
		resp.Header["Date"] = httpDate(time.Now())
	}
	c.bw = connWriters.Get().(*bufio.Writer)
	c.bw.Reset(c.conn)
	defer func() {
		c.bw.Reset(nil)
		connWriters.Put(c.bw)
		c.bw = nil
	}()
	var w io.Writer = c.bw
	if streamed(resp) {
		// Sent as it comes: what was written is flushed before each wait
		// for more of UPS's body. The writer hides bufio's ReadFrom, which
		// would read into the buffer being flushed.
		resp.Body = &flushingBody{ReadCloser: resp.Body, w: c.bw}
		w = struct{ io.Writer }{c.bw}
	}
	var err error
	if ok, werr := writeResponse(c.bw, req, resp); ok {
		err = werr
	} else {
		err = resp.Write(w)
	}
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

var keepAliveValue = []string{"keep-alive"}

// refuseClient answers a client whose address is not allowed, before its
// request is looked at, and ends the connection.
func (c *clientConn) refuseClient(req *http.Request) bool {
	x := c.p.newExchange(req)
	x.authority = c.remote
	host, _, _ := net.SplitHostPort(c.remote)
	resp := x.fail(req, clientNotAllowedError(host))
	defer resp.Body.Close()
	return c.write(req, resp, false)
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

// streamed reports whether resp's body must reach the client write by
// write: its length is unknown (UPS streams it), or it is an event stream.
func streamed(resp *http.Response) bool {
	if resp.ContentLength < 0 {
		return true
	}
	ct := resp.Header["Content-Type"]
	return len(ct) > 0 && strings.HasPrefix(ct[0], "text/event-stream")
}

// refuseFrame answers a request that could not be read (malformed,
// headers too large, or too slow) in UPS's envelope and ends the
// connection. A connection that went quiet or closed between requests
// gets no answer.
func (c *clientConn) refuseFrame(err error, started, tooLarge bool) {
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
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.p.limits.ReadHeaderTimeout))
	bw := bufio.NewWriterSize(c.conn, 512)
	if resp.Write(bw) == nil && bw.Flush() == nil {
		c.lingerClose()
	}
}

// rstAvoidance is how long a connection closed after an error answer keeps
// reading (and discarding) what the client still sends, so that the
// client's TCP stack does not reset the connection before the answer is
// read; net/http's server waits the same.
const rstAvoidance = 500 * time.Millisecond

// lingerClose ends the connection after an error answer: our side's end
// (close_notify inside a tunnel), so the client sees it at once, then a
// short discard of what it still sends (see rstAvoidance). serve closes
// the connection.
func (c *clientConn) lingerClose() {
	if c.tc != nil {
		_ = c.tc.CloseWrite()
	} else if cw, ok := c.raw.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.raw.SetReadDeadline(time.Now().Add(rstAvoidance))
	_, _ = io.Copy(io.Discard, io.LimitReader(c.raw, 256<<10))
}

// close ends the connection and gives its buffers back.
func (c *clientConn) close() {
	_ = c.conn.Close()
	if c.conn != c.raw {
		_ = c.raw.Close()
	}
	if c.br != nil {
		c.br.Reset(nil)
		connReaders.Put(c.br)
		c.br = nil
	}
	c.p.forget(c)
}

// headerLimit caps what the bufio.Reader of a connection may read while a
// request's line and headers are parsed (net/http's server does the same).
type headerLimit struct {
	r    io.Reader
	pre  []byte // read before r: the byte of a buffer-less wait
	left int64  // -1: no limit (bodies)
	read int64  // since limit was set
	hit  bool
	// err is the connection's last read error while limited: net/http's
	// parser reports a deadline that cut a header line as a malformed
	// line, not as a timeout.
	err error
}

func (l *headerLimit) limit(n int64) { l.left, l.read, l.hit, l.err = n, 0, false, nil }

func (l *headerLimit) Read(p []byte) (int, error) {
	if l.left == 0 {
		l.hit = true
		return 0, io.EOF
	}
	if l.left > 0 && int64(len(p)) > l.left {
		p = p[:l.left]
	}
	var n int
	var err error
	if len(l.pre) > 0 {
		n = copy(p, l.pre)
		l.pre = l.pre[n:]
	} else {
		n, err = l.r.Read(p)
	}
	if l.left < 0 {
		return n, err
	}
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
	c    *clientConn
	sent bool
}

func (b *continueBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		b.c.mu.Lock()
		if !b.c.responded {
			_, _ = io.WriteString(b.c.conn, "HTTP/1.1 100 Continue\r\n\r\n")
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

// earlyConn is a connection whose first bytes were already read.
type earlyConn struct {
	net.Conn
	r io.Reader
}

func (c *earlyConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// cloneEarly returns what the client sent after a CONNECT, already
// buffered, in front of raw.
func cloneEarly(raw net.Conn, br *bufio.Reader) net.Conn {
	n := br.Buffered()
	if n == 0 {
		return raw
	}
	early, _ := br.Peek(n)
	return &earlyConn{Conn: raw, r: io.MultiReader(bytes.NewReader(bytes.Clone(early)), raw)}
}
