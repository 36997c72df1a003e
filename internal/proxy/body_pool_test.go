package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// A scanner recycled from a whole body must scan the next body as a new
// one would: no state of the body it scanned before (a string cut in the
// middle, nesting, captured bytes, found numbers or UPSSecurity spans).
func TestARecycledScannerScansLikeANewOne(t *testing.T) {
	const body = `{"UPSSecurity":{"UsernameToken":{"Username":"u"}},"RateRequest":{"Shipment":{"Shipper":{"ShipperNumber":"W599Y7"}}}}`
	scanOf := func() scanResult {
		var b requestBody
		b.begin(&http.Request{Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))})
		b.client.left = -1
		if err := b.read(&routing{scanLimit: 64 << 10, maxBody: 1 << 20}); err != nil {
			t.Fatalf("read: %v", err)
		}
		return *b.result()
	}
	fresh := new(scanner)
	fresh.reset()
	fresh.feed([]byte(body))
	fresh.finish()
	want := fresh.r
	for range 50 {
		dirty := new(scanner)
		dirty.reset()
		dirty.feed([]byte(`{"RateRequest":{"Shipment":{"Shipper":{"ShipperNumber":"ZZZZZZ"},"a":[[[[{"UPSSecurity":"abcdefghij`))
		scanners.Put(dirty)
		if got := scanOf(); got != want {
			t.Fatalf("scan result after a recycled scanner:\n got %+v\nwant %+v", got, want)
		}
	}
}
