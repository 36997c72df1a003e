package proxy

import (
	"bytes"
	"fmt"
	"net/http"
)

// Carrier resolution, in SPEC's order:
//
//  1. the proxy user's client block, when it names a carrier;
//  2. the X-Upsproxy-Carrier header;
//  3. a shipper number in the request (the shipperNumber header, the
//     body's Shipper.ShipperNumber and ShipmentCharge...BillShipper.
//     AccountNumber) matched against the carriers' shipper accounts;
//  4. the default carrier.
//
// Sources that disagree are refused rather than silently ranked: a pinned
// client naming another carrier's account gets 403 UPSPROXY_NO_CARRIER
// ("client X may only use carrier Y"), a header naming carrier A with a
// shipper number of carrier B, or numbers of two carriers, get 400
// UPSPROXY_NO_CARRIER naming both. Numbers that belong to no carrier are
// left for UPS to judge.

// shipperNumberHeader is the canonical form of the shipperNumber header
// that some clients send.
const shipperNumberHeader = "Shippernumber"

// pinned returns the carrier fixed before the body is looked at: the
// client block's, or the one named in X-Upsproxy-Carrier; nil when neither.
func (rt *routing) pinned(cl *client, h http.Header) (*route, error) {
	name := ""
	if names := h[CarrierHeader]; len(names) > 0 {
		name = names[0]
		for _, other := range names[1:] {
			if other != name {
				// Which one would UPS-side tools, or another proxy,
				// believe? Neither is guessed.
				return nil, errCarrierHeaderTwice
			}
		}
	}
	if cl != nil && cl.pin != nil {
		if name != "" && name != cl.pin.name {
			return nil, clientPinnedError(cl, fmt.Sprintf("the %s header names carrier %q", CarrierHeader, clip(name, maxEchoedName)))
		}
		return cl.pin, nil
	}
	if name == "" {
		return nil, nil
	}
	if r := rt.byName[name]; r != nil {
		return r, nil
	}
	return nil, unknownCarrierError(name)
}

// resolve finishes carrier resolution with the shipper numbers of the
// request: the header's, and those the scanner found in the body's prefix
// (res and prefix are empty without a body). Numbers past the prefix are
// checked against the outcome as the body streams (scannedBody).
func (rt *routing) resolve(cl *client, pin *route, h http.Header, prefix []byte, res *scanResult) (*route, error) {
	if len(rt.byShipper) > 0 {
		owner, number, err := rt.numberOwner(h, prefix, res)
		if err != nil {
			return nil, err
		}
		switch {
		case owner == nil:
		case cl != nil && cl.pin != nil && owner != cl.pin:
			return nil, clientPinnedError(cl, fmt.Sprintf("shipper number %q belongs to carrier %q", number, owner.name))
		case pin != nil && owner != pin:
			return nil, carrierConflictError(fmt.Sprintf("the %s header names carrier %q, but shipper number %q belongs to carrier %q",
				CarrierHeader, pin.name, number, owner.name))
		case pin == nil:
			return owner, nil
		}
	}
	if pin != nil {
		return pin, nil
	}
	if rt.def == nil {
		return nil, errNoCarrier
	}
	return rt.def, nil
}

// numberOwner finds the one carrier that the request's shipper numbers
// belong to, and one of those numbers.
func (rt *routing) numberOwner(h http.Header, prefix []byte, res *scanResult) (*route, string, error) {
	var (
		owner  *route
		number []byte
	)
	see := func(n []byte) error {
		r := rt.shipperOwner(n)
		switch {
		case r == nil || r == owner:
		case owner == nil:
			owner, number = r, n
		default:
			return carrierConflictError(fmt.Sprintf("shipper number %q belongs to carrier %q and %q to carrier %q",
				echoNumber(number), owner.name, echoNumber(n), r.name))
		}
		return nil
	}
	for _, v := range h[shipperNumberHeader] {
		if err := see([]byte(v)); err != nil {
			return nil, "", err
		}
	}
	for i := 0; i < res.nNumbers; i++ {
		if err := see(res.numbers[i].value(prefix)); err != nil {
			return nil, "", err
		}
	}
	if owner == nil {
		return nil, "", nil
	}
	return owner, echoNumber(number), nil
}

// editBody returns the prefix with the UPSSecurity members and a byte
// order mark cut out and a missing shipper number filled in for r, or nil
// when nothing changes.
func editBody(prefix []byte, res *scanResult, r *route) []byte {
	var buf [maxSecuritySpans + 2]edit
	edits := buf[:0]
	for i := 0; i < res.nSecurity; i++ {
		edits = append(edits, edit{start: res.security[i].start, end: res.security[i].end})
	}
	if res.bom && bytes.HasPrefix(prefix, utf8BOM) {
		// A UTF-8 byte order mark is cut out: RFC 8259 lets a parser
		// ignore it, and UPS need not.
		edits = append(edits, edit{start: 0, end: len(utf8BOM)})
	}
	if r.fill && res.shipperOpen >= 0 && res.shipperDone {
		quoted := `"` + r.fillNumber + `"`
		switch {
		case res.shipperNumKind == 0:
			text := `"ShipperNumber":` + quoted
			if !res.shipperEmpty {
				text += ","
			}
			edits = append(edits, edit{start: res.shipperOpen, end: res.shipperOpen, text: text})
		case res.shipperNumKind == 's' && len(trimSpaceBytes(res.shipperNumber.value(prefix))) == 0:
			edits = append(edits, edit{start: res.shipperNumber.quoted.start, end: res.shipperNumber.quoted.end, text: quoted})
		}
	}
	if len(edits) == 0 {
		return nil
	}
	return applyEdits(prefix, edits)
}
