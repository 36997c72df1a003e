package upssim

import (
	"encoding/json"
	"strconv"
	"strings"
)

// oneOrMany is a response list that UPS returns one-or-many. Its specs say,
// element by element: "For versions >= vN, this element will always be
// returned as an array. For requests using versions < vN, this element
// will be returned as an array if there is more than one object and a
// single object if there is only 1." Clients written against the older
// versions read a Rate answer's RatedShipment as an object and a Shop
// answer's as an array, so the simulator answers the same way.
type oneOrMany[T any] struct {
	items []T
	// bare marks a request version below the element's threshold: a lone
	// item is then sent as a bare object.
	bare bool
}

// Thresholds from the vendored specs' notes (third_party/ups-openapi): from
// these versions on, the elements are always arrays.
const (
	ratingArraysSince   = 2403 // Rating: Alert, RatedPackage and the rest
	ratedShipmentArrays = 2409 // Rating: RatedShipment
	shippingArraysSince = 2403 // Shipping and Void: Alert, PackageResults, PackageLevelResults
	xavArraysSince      = 2    // Address Validation: Candidate, Alert
)

// listFor starts a list for a request of API version version (as parsed by
// apiVersion) and an element that is always an array from since on.
func listFor[T any](version, since int, items ...T) oneOrMany[T] {
	return oneOrMany[T]{items: items, bare: version < since}
}

func (l *oneOrMany[T]) add(v T) { l.items = append(l.items, v) }

// IsZero lets `omitzero` leave out an empty list.
func (l oneOrMany[T]) IsZero() bool { return len(l.items) == 0 }

// MarshalJSON writes a lone item bare for old versions, an array otherwise.
func (l oneOrMany[T]) MarshalJSON() ([]byte, error) {
	if l.bare && len(l.items) == 1 {
		return json.Marshal(l.items[0])
	}
	if l.items == nil {
		return []byte("[]"), nil
	}
	return json.Marshal(l.items)
}

// apiVersion is the number in an API path's version segment
// (/api/rating/v2409/Rate is 2409, /api/addressvalidation/v1/1 is 1). UPS
// routes the segment with or without a "v", in either case. A segment that
// is not a version (Tracking's fixed v1 is always one) counts as the
// newest, where every list is an array.
func apiVersion(path string) int {
	seg := strings.Split(strings.TrimPrefix(path, "/api/"), "/")
	if len(seg) < 2 || !isVersion(seg[1]) {
		return maxVersion
	}
	n, err := strconv.Atoi(strings.TrimLeft(seg[1], "vV"))
	if err != nil {
		return maxVersion
	}
	return n
}

const maxVersion = 1 << 30
