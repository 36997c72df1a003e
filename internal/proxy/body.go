package proxy

import (
	"bytes"
	"errors"
	"io"
	"slices"
)

// Request bodies stream from the client to UPS. The proxy reads a bounded
// prefix first only when a feature needs it (carrier by shipper number,
// filling a shipper number, cutting out UPSSecurity, keeping a copy for a
// replay); the prefix is then sent first and the rest of the client's body
// follows it unread, so UPS gets the same bytes (or the edited prefix and
// the same rest).

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
