package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
)

// Request bodies stream from the client to UPS. The proxy reads a bounded
// prefix of every body first (body_scan_limit) and scans it (carrier by
// shipper number, filling a shipper number, cutting out UPSSecurity,
// refusing what it cannot classify, keeping a copy for a replay); the
// prefix is then sent first and the rest of the client's body follows it,
// scanned as it streams (scannedBody), so UPS gets the same bytes (or the
// edited prefix and the same rest), or an aborted request.

// errBodyTooLarge ends a request body that grows past MaxRequestBody.
var errBodyTooLarge = errors.New("request body over the configured limit")

// smallBody is the first buffer for a body of unknown length (chunked):
// typical Rate, Track and Address Validation bodies fit it.
const smallBody = 2 << 10

// readPrefix reads up to limit bytes of body. whole reports that the body
// ended within them. A body of known length is read into a buffer of just
// that size (at most limit).
func readPrefix(body io.Reader, contentLength, limit int64) (prefix []byte, whole bool, err error) {
	if contentLength >= 0 {
		prefix = make([]byte, min(contentLength, limit))
		if _, err := io.ReadFull(body, prefix); err != nil {
			return nil, false, err
		}
		return prefix, contentLength <= limit, nil
	}
	prefix = make([]byte, 0, min(smallBody, limit+1))
	for int64(len(prefix)) <= limit {
		if len(prefix) == cap(prefix) {
			prefix = slices.Grow(prefix, int(min(int64(cap(prefix)), limit+1-int64(len(prefix)))))
		}
		m := min(int64(cap(prefix)), limit+1)
		n, err := body.Read(prefix[len(prefix):m])
		prefix = prefix[:len(prefix)+n]
		if err == io.EOF {
			return prefix, true, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
	return prefix, false, nil
}

// edit replaces prefix[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// applyEdits returns prefix with edits applied; edits do not overlap.
func applyEdits(prefix []byte, edits []edit) []byte {
	slices.SortFunc(edits, func(a, b edit) int { return a.start - b.start })
	n := len(prefix)
	for _, e := range edits {
		n += len(e.text) - (e.end - e.start)
	}
	out := make([]byte, 0, n)
	at := 0
	for _, e := range edits {
		out = append(out, prefix[at:e.start]...)
		out = append(out, e.text...)
		at = e.end
	}
	return append(out, prefix[at:]...)
}

// requestBody is the request's body on its way from the client to UPS, in
// one place: what was read of it (the prefix, whole or not), what the
// scanner found there, how it was edited, what the transport reads, and,
// when sending fails, what was refused and whose fault that is. It lives
// inside the exchange: no allocation of its own (the prefix and the
// scanner are allocated only for requests that have a body).
type requestBody struct {
	present bool // the request has a body (with at least one byte, once read)
	// open: the client's body may hold unread bytes, so a refusal must
	// close the connection rather than wait for them.
	open  bool
	whole bool // prefix is all of the body

	client clientBody // the client's body, paced and capped
	prefix []byte     // the first bytes read, edited by edit
	// length is the client's Content-Length (-1: chunked) until edit
	// makes it what the upstream request declares.
	length int64

	scan *scanner // nil without a body
	// fault is the refusal of the rest of the body, found as it streamed
	// (scannedBody).
	fault atomic.Pointer[proxyError]

	mem  memBody     // the body sent upstream, when read whole
	rest *prefixBody // the body sent upstream, when it streams
}

// scanners recycles the scanners of whole bodies (see edit).
var scanners = sync.Pool{New: func() any { return new(scanner) }}

// noBody is the scan result of a request without a body (read only).
var noBody = scanResult{shipperOpen: -1}

// begin takes the client's body as it arrived; nothing is read yet.
func (b *requestBody) begin(req *http.Request) {
	b.client.rc, b.length = req.Body, req.ContentLength
	b.present = req.Body != nil && req.Body != http.NoBody && req.ContentLength != 0
	// Until the body is read to its end, a refusal closes the connection:
	// it is answered at once, never after waiting for a body it ignores.
	b.open = b.present
}

// limit refuses a body declared over the limit, before anything is read
// or dialled, and paces the reads of the client's body (ConnLimits.Body*),
// cutting one of unknown length off past the limit. conn is the client's
// connection (nil: no pacing).
func (b *requestBody) limit(rt *routing, conn readDeadliner, lim *ConnLimits) error {
	if b.length > rt.maxBody {
		return rt.errTooLarge
	}
	if !b.present {
		return nil
	}
	b.client.left, b.client.conn, b.client.lim = -1, conn, lim
	if b.length < 0 {
		b.client.left = rt.maxBody
	}
	return nil
}

// read reads the body's prefix (up to body_scan_limit) and scans it. Every
// body is scanned, whatever the path, method, Content-Type or
// configuration: any JSON body could carry UPSSecurity or another
// carrier's shipper number, and whatever the scanner cannot classify is
// refused before anything is sent (scan.go).
func (b *requestBody) read(rt *routing) error {
	if !b.present {
		return nil
	}
	prefix, whole, err := readPrefix(&b.client, b.length, rt.scanLimit)
	if err != nil {
		if b.client.tooLarge.Load() {
			return rt.errTooLarge
		}
		return &clientBodyError{err: err}
	}
	b.prefix, b.whole, b.open = prefix, whole, !whole
	if whole && len(prefix) == 0 {
		// A chunked body with no bytes at all.
		b.present, b.length = false, 0
		return nil
	}
	// Not in the exchange: requests without a body (Track) do not pay
	// for it. From a pool, zeroed as new: 1 KiB less garbage per request.
	sc := scanners.Get().(*scanner)
	*sc = scanner{}
	sc.reset()
	b.scan = sc
	sc.feed(prefix)
	if whole {
		sc.finish()
	} else {
		sc.endPrefix()
	}
	if sc.fault != faultNone {
		return scanFaultError(sc.fault, sc.faultAt, rt.scanLimit)
	}
	return nil
}

// result is what the scanner found in the prefix.
func (b *requestBody) result() *scanResult {
	if b.scan == nil {
		return &noBody
	}
	return &b.scan.r
}

// requestOption is the RequestOption of a legacy /rest/Rate body, "" when
// the prefix has none.
func (b *requestBody) requestOption() string {
	res := b.result()
	if !res.requestOptionFound {
		return ""
	}
	return string(res.requestOption.value(b.prefix))
}

// edit cuts UPSSecurity out of the prefix and fills a missing shipper
// number for r, then readies the body for the transport: in memory when
// read whole, else the prefix followed by the rest of the client's body,
// scanned as it streams against the outcome of carrier resolution (the
// chosen carrier r, the pin and the proxy user).
func (b *requestBody) edit(rt *routing, r, pin *route, cl *client) {
	if !b.present {
		return
	}
	// What is still due from the client, by its Content-Length.
	due := b.length - int64(b.scan.off)
	if edited := editBody(b.prefix, b.result(), r); edited != nil {
		if b.length >= 0 {
			b.length += int64(len(edited) - len(b.prefix))
		}
		b.prefix = edited
	}
	if b.whole {
		// All of it is in memory. Handed over as a NopCloser'd
		// bytes.Reader, net/http knows and writes the request's headers
		// and body in one go; any other body has the headers flushed
		// first (one more syscall and packet per request), in case it
		// blocks.
		b.length = int64(len(b.prefix))
		b.mem.Reset(b.prefix)
		// The scanner's work is done: its results were used by
		// resolve, upstreamPath and the edits above, which kept no
		// pointer into it (only offsets into the prefix). A streamed
		// body keeps its scanner to the end.
		scanners.Put(b.scan)
		b.scan = nil
		return
	}
	// The rest is scanned as it streams: a fault cuts the request off
	// before the refused bytes, so UPS never gets it whole.
	rest := &scannedBody{rc: &b.client, body: b, left: -1, rt: rt, route: r, pin: pin, cl: cl}
	b.scan.check = rest
	if due >= 0 {
		rest.left = due
	}
	b.rest = &prefixBody{rest: rest}
	b.rest.r.Reset(b.prefix)
}

// upstream is the body the transport reads, and the length it declares.
func (b *requestBody) upstream() (io.ReadCloser, int64) {
	switch {
	case !b.present:
		// As the client sent it (nil, http.NoBody, or a chunked body
		// found empty: length 0 sends none).
		return b.client.rc, b.length
	case b.whole:
		return &b.mem, b.length
	}
	return b.rest, b.length
}

// streaming reports whether the transport reads the client's body itself,
// so that the response may come back while it still does (see respond).
func (b *requestBody) streaming() bool { return b.present && !b.whole }

// inMemory is the whole body as sent upstream, for a replay; ok is false
// when the body streamed and cannot be sent again.
func (b *requestBody) inMemory() (body []byte, ok bool) {
	if !b.present {
		return nil, true
	}
	return b.prefix, b.whole
}

// finished reports whether the client's body was read to its end.
func (b *requestBody) finished() bool { return b.client.done.Load() }

// sendError says whose fault a failed upstream request was: a body the
// client broke off, stalled, or grew past the limit, or one the scanner
// refused as it streamed (the transport aborted the upstream request
// midway, so UPS got no complete request), else the upstream's.
func (b *requestBody) sendError(rt *routing, r *route, err error) error {
	if b.client.tooLarge.Load() {
		return rt.errTooLarge
	}
	if be := b.client.failed.Load(); be != nil {
		return be
	}
	if e := b.fault.Load(); e != nil {
		return e
	}
	return &upstreamError{route: r, err: err}
}

// prefixBody is the body sent upstream when only a prefix was read: the
// prefix (possibly edited), then the rest of the client's body, unread.
type prefixBody struct {
	r    bytes.Reader
	rest io.ReadCloser
}

func (b *prefixBody) Read(p []byte) (int, error) {
	if b.r.Len() > 0 {
		return b.r.Read(p)
	}
	return b.rest.Read(p)
}

// Close closes the client's body; the transport calls it when done.
func (b *prefixBody) Close() error { return b.rest.Close() }

// errBodyRefused ends a request body whose rest the scanner refused.
var errBodyRefused = errors.New("request body refused by the body scanner")

// scannedBody is the rest of a body past the scanned prefix: each read is
// scanned before it is handed to the transport, and a fault ends the body
// with an error instead of the refused bytes. The transport then aborts
// the request (a short Content-Length body, or a chunked one without its
// last chunk), which UPS cannot act on, and forward answers the client
// with the body's fault.
type scannedBody struct {
	rc    io.ReadCloser
	body  *requestBody
	left  int64 // bytes still due by Content-Length; -1 when chunked
	ended bool

	// What the check of shipper numbers needs: the routing, the chosen
	// carrier, the carrier pin and the proxy user; and the number of
	// another carrier found.
	rt            *routing
	route, pin    *route
	cl            *client
	foreignOwner  *route
	foreignNumber string
}

func (b *scannedBody) Read(p []byte) (int, error) {
	if b.ended {
		return b.rc.Read(p)
	}
	n, err := b.rc.Read(p)
	s := b.body.scan
	if n > 0 {
		s.feed(p[:n])
	}
	if b.left >= 0 {
		b.left -= int64(n)
		// The last bytes are judged before they are handed on: once
		// they are sent, UPS has the request whole.
		b.ended = b.left <= 0
	} else {
		b.ended = err == io.EOF
	}
	if b.ended {
		s.finish()
	}
	if s.fault != faultNone {
		b.ended = true
		b.refuse()
		return 0, errBodyRefused
	}
	return n, err
}

func (b *scannedBody) Close() error { return b.rc.Close() }

// refuse records why the rest of the body was refused, once.
func (b *scannedBody) refuse() {
	if b.body.fault.Load() != nil {
		return
	}
	s := b.body.scan
	e := scanFaultError(s.fault, s.faultAt, b.rt.scanLimit)
	if s.fault == faultForeignShipper {
		e = b.foreignShipperError()
	}
	b.body.fault.Store(e)
}

// acceptsShipper is the scanner's check of a shipper number past the
// prefix: it must not belong to another carrier than the chosen one.
func (b *scannedBody) acceptsShipper(n []byte) bool {
	owner := b.rt.shipperOwner(n)
	if owner == nil || owner == b.route {
		return true
	}
	b.foreignOwner, b.foreignNumber = owner, echoNumber(n)
	return false
}

// foreignShipperError is the refusal of a shipper number of another
// carrier found past the prefix: the same as resolve gives for one in the
// prefix when the carrier was pinned, a "too late" one otherwise.
func (b *scannedBody) foreignShipperError() *proxyError {
	what := fmt.Sprintf("shipper number %q belongs to carrier %q", b.foreignNumber, b.foreignOwner.name)
	switch {
	case b.cl != nil && b.cl.pin != nil:
		return clientPinnedError(b.cl, what)
	case b.pin != nil:
		return carrierConflictError(fmt.Sprintf("the %s header names carrier %q, but %s", CarrierHeader, b.pin.name, what))
	}
	return lateShipperError(b.foreignNumber, b.foreignOwner.name, b.route.name, b.rt.scanLimit)
}
