package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
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
// last chunk), which UPS cannot act on, and the chain answers the client
// with x.bodyFault.
type scannedBody struct {
	rc    io.ReadCloser
	x     *exchange
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
	s := b.x.scan
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
	if b.x.bodyFault.Load() != nil {
		return
	}
	s := b.x.scan
	e := scanFaultError(s.fault, s.faultAt, b.rt.scanLimit)
	if s.fault == faultForeignShipper {
		e = b.foreignShipperError()
	}
	b.x.bodyFault.Store(e)
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
