package proxy

import (
	"bytes"
	"encoding/json"
)

// The body scanner reads a bounded prefix of a JSON request body once,
// without building any value, and reports where the few things the proxy
// cares about are:
//
//   - shipper numbers that pick the carrier: RateRequest.Shipment.Shipper.
//     ShipperNumber, ShipmentRequest.Shipment.Shipper.ShipperNumber and any
//     ShipmentCharge[...].BillShipper.AccountNumber (ShipmentCharge is an
//     object or an array: legacy clients send both);
//   - the Shipper object, so that a missing number can be filled in;
//   - a top-level UPSSecurity member (legacy credentials), so it can be cut
//     out;
//   - RateRequest.Request.RequestOption, the operation of a legacy
//     /rest/Rate call.
//
// It never allocates on well-formed input without escapes: results are byte
// ranges of the scanned prefix. Invalid or truncated JSON stops the scan;
// what was found before stays valid.

// span is the byte range [start, end) of the scanned prefix.
type span struct{ start, end int }

// strSpan is a JSON string: raw is its content between the quotes,
// quoted includes them.
type strSpan struct {
	raw, quoted span
	escaped     bool // raw holds backslash escapes
}

const (
	maxScanDepth     = 64 // deeper bodies are not scanned further
	maxScanNumbers   = 8  // shipper numbers kept; UPS allows two ShipmentCharges
	maxSecuritySpans = 4  // duplicate UPSSecurity keys cut out
)

type scanResult struct {
	object   bool // the body is a JSON object
	complete bool // the whole top-level object lies within the prefix
	invalid  bool // the JSON is malformed (or too deep) before the prefix ends

	numbers  [maxScanNumbers]strSpan
	nNumbers int

	// security holds the byte ranges of top-level UPSSecurity members, each
	// with one adjacent comma, ready to cut out.
	security  [maxSecuritySpans]span
	nSecurity int
	// securityOpen: a UPSSecurity member starts in the prefix but does not
	// end in it (or there are too many), so it cannot be cut out.
	securityOpen bool

	// shipperOpen is the offset just after the '{' of Shipment.Shipper,
	// -1 when there is none.
	shipperOpen    int
	shipperDone    bool // that object ends within the prefix
	shipperEmpty   bool // and has no members
	shipperNumber  strSpan
	shipperNumKind byte // 0: no ShipperNumber key, 's': string value, 'o': other value

	requestOption      strSpan
	requestOptionFound bool
}

// Path kinds of the containers the scanner tracks.
const (
	kOther byte = iota
	kRoot
	kRateRequest
	kShipmentRequest
	kRateRequestRequest
	kShipment
	kShipper
	kCharge
	kBillShipper
)

type scanFrame struct {
	array   bool
	kind    byte
	members int
	key     strSpan // object: the key of the member being read
	// Root object only: where the current member starts, and the comma
	// before it (-1 for the first member).
	memberStart, comma int
	securityMember     bool
	pendingSecurity    int // index in security waiting for its trailing comma, -1 none
}

type scanner struct {
	b     []byte
	i     int
	r     scanResult
	stack [maxScanDepth]scanFrame
	depth int
}

type scanState byte

const (
	stKeyOrEnd scanState = iota
	stKey
	stColon
	stValue
	stValueOrEnd
	stCommaOrEnd
)

// scanBody scans b, a prefix of a request body.
func scanBody(b []byte) scanResult {
	var s scanner
	s.b = b
	s.r.shipperOpen = -1
	s.ws()
	if s.i >= len(b) || b[s.i] != '{' {
		return s.r
	}
	s.r.object = true
	s.i++
	s.stack[0] = scanFrame{kind: kRoot, comma: -1, pendingSecurity: -1}
	s.depth = 1
	s.run()
	if s.depth > 0 && (s.stack[0].securityMember || s.stack[0].pendingSecurity >= 0) {
		// The prefix ended inside a UPSSecurity member, or before the comma
		// after a first-member UPSSecurity that must go with it.
		s.r.securityOpen = true
	}
	return s.r
}

func (s *scanner) run() {
	b, r := s.b, &s.r
	state := stKeyOrEnd
	for {
		s.ws()
		if s.i >= len(b) {
			return // the prefix ends here
		}
		c := b[s.i]
		top := &s.stack[s.depth-1]
		switch state {
		case stKeyOrEnd, stKey:
			if c == '}' && state == stKeyOrEnd {
				s.i++
				if s.pop() {
					return
				}
				state = stCommaOrEnd
				continue
			}
			if c != '"' {
				r.invalid = true
				return
			}
			start := s.i
			key, ok := s.str()
			if !ok {
				return
			}
			top.key = key
			top.members++
			if s.depth == 1 {
				top.memberStart = start
				top.securityMember = s.keyIs(key, "UPSSecurity")
			}
			if top.kind == kShipper && s.keyIs(key, "ShipperNumber") && r.shipperNumKind == 0 {
				r.shipperNumKind = 'o'
			}
			state = stColon
		case stColon:
			if c != ':' {
				r.invalid = true
				return
			}
			s.i++
			state = stValue
		case stValueOrEnd:
			if c == ']' {
				s.i++
				if s.pop() {
					return
				}
				state = stCommaOrEnd
				continue
			}
			state = stValue
		case stValue:
			switch c {
			case '{', '[':
				if s.depth == maxScanDepth {
					r.invalid = true
					return
				}
				kind := s.childKind(top)
				s.i++
				if c == '{' && kind == kShipper && !top.array && r.shipperOpen < 0 {
					r.shipperOpen = s.i
				}
				s.stack[s.depth] = scanFrame{array: c == '[', kind: kind, comma: -1, pendingSecurity: -1}
				s.depth++
				if c == '{' {
					state = stKeyOrEnd
				} else {
					state = stValueOrEnd
				}
				continue
			case '"':
				v, ok := s.str()
				if !ok {
					return
				}
				s.stringValue(top, v)
			default:
				if !s.literal() {
					return
				}
			}
			s.valueDone()
			state = stCommaOrEnd
		case stCommaOrEnd:
			switch {
			case c == ',':
				if s.depth == 1 {
					root := &s.stack[0]
					if root.pendingSecurity >= 0 {
						r.security[root.pendingSecurity].end = s.i + 1
						root.pendingSecurity = -1
					}
					root.comma = s.i
				}
				s.i++
				if top.array {
					state = stValue
				} else {
					state = stKey
				}
			case c == '}' && !top.array, c == ']' && top.array:
				s.i++
				if s.pop() {
					return
				}
			default:
				r.invalid = true
				return
			}
		}
	}
}

// pop closes the innermost container; it reports whether that was the
// top-level object.
func (s *scanner) pop() bool {
	f := &s.stack[s.depth-1]
	if f.kind == kShipper && !f.array && s.r.shipperOpen >= 0 && !s.r.shipperDone {
		s.r.shipperDone = true
		s.r.shipperEmpty = f.members == 0
	}
	s.depth--
	if s.depth == 0 {
		s.r.complete = true
		return true
	}
	s.valueDone()
	return false
}

// valueDone is called after each complete value. A value directly in the
// root object ends a top-level member.
func (s *scanner) valueDone() {
	if s.depth != 1 {
		return
	}
	root := &s.stack[0]
	if !root.securityMember {
		return
	}
	root.securityMember = false
	r := &s.r
	if r.nSecurity == maxSecuritySpans {
		r.securityOpen = true
		return
	}
	sp := span{root.memberStart, s.i}
	if root.comma >= 0 {
		sp.start = root.comma // cut the comma before it
	} else {
		root.pendingSecurity = r.nSecurity // the first member: cut the comma after it, if any
	}
	r.security[r.nSecurity] = sp
	r.nSecurity++
}

// childKind classifies a container opened as the current value of top.
func (s *scanner) childKind(top *scanFrame) byte {
	if top.array {
		return top.kind // array elements share the array's path
	}
	k := top.key
	switch {
	case s.keyIs(k, "ShipmentCharge"):
		return kCharge
	case top.kind == kRoot && s.keyIs(k, "RateRequest"):
		return kRateRequest
	case top.kind == kRoot && s.keyIs(k, "ShipmentRequest"):
		return kShipmentRequest
	case top.kind == kRateRequest && s.keyIs(k, "Request"):
		return kRateRequestRequest
	case (top.kind == kRateRequest || top.kind == kShipmentRequest) && s.keyIs(k, "Shipment"):
		return kShipment
	case top.kind == kShipment && s.keyIs(k, "Shipper"):
		return kShipper
	case top.kind == kCharge && s.keyIs(k, "BillShipper"):
		return kBillShipper
	}
	return kOther
}

// stringValue records a string value found in top.
func (s *scanner) stringValue(top *scanFrame, v strSpan) {
	if top.array {
		return
	}
	r := &s.r
	switch {
	case top.kind == kShipper && s.keyIs(top.key, "ShipperNumber"):
		if r.shipperNumKind != 's' {
			r.shipperNumKind, r.shipperNumber = 's', v
		}
		s.number(v)
	case top.kind == kBillShipper && s.keyIs(top.key, "AccountNumber"):
		s.number(v)
	case top.kind == kRateRequestRequest && s.keyIs(top.key, "RequestOption"):
		r.requestOption, r.requestOptionFound = v, true
	}
}

func (s *scanner) number(v strSpan) {
	if s.r.nNumbers < maxScanNumbers {
		s.r.numbers[s.r.nNumbers] = v
		s.r.nNumbers++
	}
}

// keyIs compares a JSON string with want, decoding escapes only when the
// string has some (a client could spell UPSSecurity as "UPS\u0053ecurity").
func (s *scanner) keyIs(k strSpan, want string) bool {
	if !k.escaped {
		return string(s.b[k.raw.start:k.raw.end]) == want
	}
	return string(unescape(s.b, k)) == want
}

// str reads the string starting at s.i (a quote); ok is false when the
// prefix ends inside it.
func (s *scanner) str() (strSpan, bool) {
	b := s.b
	start := s.i
	i := s.i + 1
	escaped := false
	for {
		j := bytes.IndexAny(b[i:], "\"\\")
		if j < 0 {
			s.i = len(b)
			return strSpan{}, false
		}
		i += j
		if b[i] == '"' {
			s.i = i + 1
			return strSpan{raw: span{start + 1, i}, quoted: span{start, i + 1}, escaped: escaped}, true
		}
		escaped = true
		i += 2 // a backslash and the byte it escapes
		if i >= len(b) {
			s.i = len(b)
			return strSpan{}, false
		}
	}
}

// literal skips a number, true, false or null.
func (s *scanner) literal() bool {
	b := s.b
	start := s.i
	for s.i < len(b) {
		c := b[s.i]
		if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			break
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '-' || c == '+' || c == '.' || c == 'E') {
			s.r.invalid = true
			return false
		}
		s.i++
	}
	if s.i == start {
		s.r.invalid = true
		return false
	}
	return s.i < len(b) // a literal cut by the prefix end is not complete
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// unescape decodes a JSON string with escapes; invalid ones decode to
// nothing, which matches no key and no shipper number.
func unescape(b []byte, v strSpan) []byte {
	var out string
	if err := json.Unmarshal(b[v.quoted.start:v.quoted.end], &out); err != nil {
		return nil
	}
	return []byte(out)
}

// value returns the decoded content of a scanned string.
func (v strSpan) value(b []byte) []byte {
	if !v.escaped {
		return b[v.raw.start:v.raw.end]
	}
	return unescape(b, v)
}
