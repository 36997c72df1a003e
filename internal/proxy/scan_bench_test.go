package proxy

import (
	"strings"
	"testing"
)

// benchRateBody is a typical Rate request (about 1.5 KiB), the common case
// of the request path.
var benchRateBody = []byte(`{"RateRequest":{"Request":{"RequestOption":"Shop","TransactionReference":{"CustomerContext":"ctx"}},` +
	`"Shipment":{"Shipper":{"Name":"SalesPad Warehouse","ShipperNumber":"W599Y7","Address":{"AddressLine":["123 Main St","Suite 4"],` +
	`"City":"Grand Rapids","StateProvinceCode":"MI","PostalCode":"49503","CountryCode":"US"}},` +
	`"ShipTo":{"Name":"Customer","Address":{"AddressLine":["1 Elm St"],"City":"Timonium","StateProvinceCode":"MD","PostalCode":"21093","CountryCode":"US"}},` +
	`"ShipFrom":{"Name":"SalesPad Warehouse","Address":{"AddressLine":["123 Main St"],"City":"Grand Rapids","StateProvinceCode":"MI","PostalCode":"49503","CountryCode":"US"}},` +
	`"PaymentDetails":{"ShipmentCharge":[{"Type":"01","BillShipper":{"AccountNumber":"W599Y7"}}]},` +
	`"Service":{"Code":"03","Description":"Ground"},"NumOfPieces":"2",` +
	`"Package":[{"PackagingType":{"Code":"02"},"Dimensions":{"UnitOfMeasurement":{"Code":"IN"},"Length":"10","Width":"8","Height":"6"},` +
	`"PackageWeight":{"UnitOfMeasurement":{"Code":"LBS"},"Weight":"5.5"}},` +
	`{"PackagingType":{"Code":"02"},"Dimensions":{"UnitOfMeasurement":{"Code":"IN"},"Length":"12","Width":"9","Height":"4"},` +
	`"PackageWeight":{"UnitOfMeasurement":{"Code":"LBS"},"Weight":"2"}}]}}}`)

// benchBigBody is a 1 MiB Paperless-style body: one long base64 string.
var benchBigBody = []byte(`{"UploadRequest":{"ShipperNumber":"W599Y7","UserCreatedForm":{"UserCreatedFormFileName":"a.pdf",` +
	`"UserCreatedFormFile":"` + strings.Repeat("QUJDRA", (1<<20)/6) + `","UserCreatedFormFileFormat":"pdf"}}}`)

// BenchmarkScanBody: the body scanner alone, on a typical Rate body and on
// a 1 MiB body that is mostly one string.
func BenchmarkScanBody(b *testing.B) {
	for _, c := range []struct {
		name string
		body []byte
	}{{"rate", benchRateBody}, {"1MiB-string", benchBigBody}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			for b.Loop() {
				r := scanBody(c.body)
				if !r.complete {
					b.Fatal("incomplete")
				}
			}
		})
	}
}

// BenchmarkScanBodyStreamed is the 1 MiB body fed in 32 KiB reads, as
// scannedBody sees the rest of a body: no allocation, whatever the size of
// its strings.
func BenchmarkScanBodyStreamed(b *testing.B) {
	b.SetBytes(int64(len(benchBigBody)))
	b.ReportAllocs()
	var s scanner
	for b.Loop() {
		s.reset()
		for rest := benchBigBody; len(rest) > 0; {
			k := min(32<<10, len(rest))
			s.feed(rest[:k])
			rest = rest[k:]
		}
		s.finish()
		if s.fault != faultNone {
			b.Fatal(s.fault)
		}
	}
}
