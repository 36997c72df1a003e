package proxy

import (
	"bytes"
	"encoding/binary"
	"unicode/utf8"
)

// The body scanner is a resumable JSON tokenizer that checks every request
// body on its way to UPS, without building any value and in constant
// memory (a fixed stack and a small capture buffer), and reports where the
// few things the proxy cares about are:
//
//   - shipper numbers that pick the carrier: RateRequest.Shipment.Shipper.
//     ShipperNumber, ShipmentRequest.Shipment.Shipper.ShipperNumber and any
//     ShipmentCharge[...].BillShipper.AccountNumber (ShipmentCharge is an
//     object or an array: legacy clients send both);
//   - the Shipper object, so that a missing number can be filled in;
//   - top-level UPSSecurity members (legacy credentials), so they can be
//     cut out;
//   - RateRequest.Request.RequestOption, the operation of a legacy
//     /rest/Rate call.
//
// Keys are compared after JSON unescaping and case-insensitively (Unicode
// simple folding, so "upsſecurity" is UPSSecurity too): UPS's parsers may
// be lenient, the proxy must not be the weaker side.
//
// The request path feeds it the body's prefix (up to body_scan_limit), whose
// results are byte ranges of that prefix ready to edit, then the rest of
// the body as it streams to UPS. Whatever it cannot classify is a fault
// and the body is refused, never forwarded: invalid JSON (exactly what
// encoding/json.Valid rejects), nesting deeper than maxScanDepth, more
// shipper numbers or UPSSecurity members than it keeps, a UPSSecurity
// member that does not lie wholly within the prefix, and, past the
// prefix, a shipper number of another carrier than the one chosen. A
// UTF-8 byte order mark at the very start is accepted and cut out (RFC
// 8259 lets parsers ignore it; UPS must not have to).

// span is the byte range [start, end) of the body.
type span struct{ start, end int }

// strSpan is a JSON string: raw is its content between the quotes,
// quoted includes them.
type strSpan struct {
	raw, quoted span
	escaped     bool // raw holds backslash escapes
}

const (
	maxScanDepth     = 64 // deeper bodies are refused; UPS's own nest about 8 deep
	maxScanNumbers   = 8  // shipper numbers kept; UPS allows two ShipmentCharges
	maxSecuritySpans = 4  // duplicate UPSSecurity keys cut out
	// maxCapture bounds the raw bytes kept of a key or an interesting
	// string value: 6 bytes (\uXXXX) for each of maxShipperNumberLen
	// characters. A longer string is no key or shipper number we know.
	maxCapture = 6 * maxShipperNumberLen
)

// scanFault says why a body is refused.
type scanFault byte

const (
	faultNone           scanFault = iota
	faultSyntax                   // not valid JSON
	faultDepth                    // nested deeper than maxScanDepth
	faultNumbers                  // more than maxScanNumbers shipper numbers
	faultSecurity                 // a UPSSecurity member that cannot be cut out
	faultForeignShipper           // past the prefix: another carrier's shipper number
)

type scanResult struct {
	object   bool // the body is a JSON object
	complete bool // the whole top-level value was scanned
	bom      bool // the body starts with a UTF-8 byte order mark

	numbers  [maxScanNumbers]strSpan
	nNumbers int

	// security holds the byte ranges of top-level UPSSecurity members, each
	// with one adjacent comma, ready to cut out.
	security  [maxSecuritySpans]span
	nSecurity int

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

// Keys the scanner knows, by id.
const (
	keyOther byte = iota
	keyUPSSecurity
	keyRateRequest
	keyShipmentRequest
	keyRequest
	keyShipment
	keyShipper
	keyShipmentCharge
	keyBillShipper
	keyShipperNumber
	keyAccountNumber
	keyRequestOption
)

var knownKeys = [...]struct {
	id   byte
	name []byte
}{
	{keyUPSSecurity, []byte("UPSSecurity")},
	{keyRateRequest, []byte("RateRequest")},
	{keyShipmentRequest, []byte("ShipmentRequest")},
	{keyRequest, []byte("Request")},
	{keyShipment, []byte("Shipment")},
	{keyShipper, []byte("Shipper")},
	{keyShipmentCharge, []byte("ShipmentCharge")},
	{keyBillShipper, []byte("BillShipper")},
	{keyShipperNumber, []byte("ShipperNumber")},
	{keyAccountNumber, []byte("AccountNumber")},
	{keyRequestOption, []byte("RequestOption")},
}

// scanFrame is an open object or array: 4 bytes, so the stack is small.
type scanFrame struct {
	array bool
	kind  byte
	key   byte // object: the id of the member being read
	empty bool // no member or element yet
}

// Parse states.
const (
	stBegin      byte = iota // the top-level value
	stValue                  // a value (after ':' or ',' in an array)
	stValueOrEnd             // after '[': a value or ']'
	stKeyOrEnd               // after '{': a key or '}'
	stKey                    // after ',' in an object
	stColon
	stCommaOrEnd
	stEnd // after the top-level value: only whitespace
	stString
	stNumber
	stLiteral
)

// Number states (RFC 8259's grammar); the odd ones are where a number may end.
const (
	numMinus byte = iota
	numZero
	numInt
	numDot
	numFrac
	numExp
	numExpSign
	numExpDigits
)

// shipperCheck is asked about each shipper number found past the prefix;
// it returns false for another carrier's number.
type shipperCheck interface {
	acceptsShipper(number []byte) bool
}

type scanner struct {
	off   int // offset of the next byte in the body
	state byte
	depth int
	stack [maxScanDepth]scanFrame

	// tail: the prefix is done; spans are no longer recorded, and a
	// UPSSecurity key or a shipper number is checked, not kept.
	tail  bool
	check shipperCheck

	// The root object: where its current member starts, the last comma
	// between its members (-1 before the first), whether the current
	// member is UPSSecurity, and the index in security of a first member
	// waiting for its trailing comma (-1 none).
	memberStart, comma int
	securityMember     bool
	pendingSecurity    int

	// The string being read.
	strStart   int  // offset of its opening quote
	strKey     bool // it is an object key
	strCapture bool // its content is kept in capture
	strEscaped bool
	strEsc     byte // 0, or '\\' after a backslash, or the hex digits left of \uXXXX
	capture    [maxCapture]byte
	nCapture   int
	overflow   bool // the string was longer than capture

	num byte   // number state
	lit string // the rest of true, false or null still expected

	fault   scanFault
	faultAt int // offset of the byte that caused the fault
	r       scanResult
}

// reset prepares s for a new body.
func (s *scanner) reset() {
	s.off, s.state, s.depth = 0, stBegin, 0
	s.tail, s.check = false, nil
	s.comma, s.securityMember, s.pendingSecurity = -1, false, -1
	s.fault, s.faultAt = faultNone, 0
	s.r = scanResult{shipperOpen: -1}
}

// endPrefix ends the prefix: from now on bytes are checked, not recorded.
// A UPSSecurity member still open cannot be cut out any more.
func (s *scanner) endPrefix() {
	if s.fault == faultNone && s.depth > 0 && (s.securityMember || s.pendingSecurity >= 0) {
		s.fail(faultSecurity, s.off)
	}
	s.tail = true
}

// finish is called at the end of the body: the top-level value must be
// complete.
func (s *scanner) finish() {
	if s.fault != faultNone {
		return
	}
	if s.state == stNumber && (s.num == numZero || s.num == numInt || s.num == numFrac || s.num == numExpDigits) {
		s.valueDone(s.off)
	}
	if s.state != stEnd {
		s.fail(faultSyntax, s.off)
	}
}

func (s *scanner) fail(f scanFault, at int) {
	if s.fault == faultNone {
		s.fault, s.faultAt = f, at
	}
}

// isSpace: JSON's four whitespace bytes.
var isSpace = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

// strStop: the bytes that end a run of plain string content.
var strStop = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// feed scans the next bytes of the body.
func (s *scanner) feed(b []byte) {
	base := s.off
	i := 0
	if base == 0 && !s.tail && bytes.HasPrefix(b, utf8BOM) {
		s.r.bom = true
		i = len(utf8BOM)
	}
	for i < len(b) && s.fault == faultNone {
		switch s.state {
		case stString:
			i = s.stringBytes(b, i, base)
			continue
		case stNumber:
			switch s.numberByte(b[i]) {
			case numMore:
				i++
				continue
			case numBad:
				s.fail(faultSyntax, base+i)
				continue
			}
			// The number ended before b[i], which is read again below.
			s.valueDone(base + i)
			if s.fault != faultNone {
				continue
			}
		case stLiteral:
			if b[i] != s.lit[0] {
				s.fail(faultSyntax, base+i)
				continue
			}
			i++
			if s.lit = s.lit[1:]; s.lit == "" {
				s.valueDone(base + i)
			}
			continue
		}
		c := b[i]
		if isSpace[c] {
			i++
			continue
		}
		at := base + i
		switch s.state {
		case stBegin, stValue, stValueOrEnd:
			if c == ']' && s.state == stValueOrEnd {
				s.close(at + 1)
			} else {
				s.value(c, at)
			}
		case stKeyOrEnd, stKey:
			switch {
			case c == '}' && s.state == stKeyOrEnd:
				s.close(at + 1)
			case c == '"':
				s.beginString(at, true)
			default:
				s.fail(faultSyntax, at)
			}
		case stColon:
			if c != ':' {
				s.fail(faultSyntax, at)
			}
			s.state = stValue
		case stCommaOrEnd:
			top := &s.stack[s.depth-1]
			switch {
			case c == ',':
				if s.depth == 1 && !top.array {
					if s.pendingSecurity >= 0 {
						s.r.security[s.pendingSecurity].end = at + 1
						s.pendingSecurity = -1
					}
					s.comma = at
				}
				if top.array {
					s.state = stValue
				} else {
					s.state = stKey
				}
			case c == '}' && !top.array, c == ']' && top.array:
				s.close(at + 1)
			default:
				s.fail(faultSyntax, at)
			}
		case stEnd:
			s.fail(faultSyntax, at) // data after the top-level value
		}
		i++
	}
	s.off = base + len(b)
}

// value starts the value whose first byte c is at offset at.
func (s *scanner) value(c byte, at int) {
	switch c {
	case '{', '[':
		if s.depth == maxScanDepth {
			s.fail(faultDepth, at)
			return
		}
		var kind byte
		var parentArray bool
		if s.depth == 0 {
			if c == '{' {
				kind = kRoot
				s.r.object = true
			}
		} else {
			top := &s.stack[s.depth-1]
			top.empty = false
			kind, parentArray = s.childKind(top), top.array
		}
		if c == '{' && kind == kShipper && !parentArray && s.r.shipperOpen < 0 && !s.tail {
			s.r.shipperOpen = at + 1
		}
		s.stack[s.depth] = scanFrame{array: c == '[', kind: kind, empty: true}
		s.depth++
		if c == '{' {
			s.state = stKeyOrEnd
		} else {
			s.state = stValueOrEnd
		}
	case '"':
		s.beginString(at, false)
	case 't':
		s.state, s.lit = stLiteral, "rue"
	case 'f':
		s.state, s.lit = stLiteral, "alse"
	case 'n':
		s.state, s.lit = stLiteral, "ull"
	case '-':
		s.state, s.num = stNumber, numMinus
	case '0':
		s.state, s.num = stNumber, numZero
	case '1', '2', '3', '4', '5', '6', '7', '8', '9':
		s.state, s.num = stNumber, numInt
	default:
		s.fail(faultSyntax, at)
		return
	}
	if s.depth > 0 && c != '{' && c != '[' {
		s.stack[s.depth-1].empty = false
	}
}

// numberByte results.
const (
	numMore  = iota // c is part of the number
	numEnded        // c is not; the number ended before it
	numBad          // c makes the number invalid
)

// numberByte advances the number state with c.
func (s *scanner) numberByte(c byte) int {
	digit := '0' <= c && c <= '9'
	switch s.num {
	case numMinus:
		switch {
		case c == '0':
			s.num = numZero
		case digit:
			s.num = numInt
		default:
			return numBad
		}
	case numZero, numInt:
		switch {
		case digit && s.num == numInt:
		case c == '.':
			s.num = numDot
		case c == 'e' || c == 'E':
			s.num = numExp
		default:
			return numEnded
		}
	case numDot:
		if !digit {
			return numBad
		}
		s.num = numFrac
	case numFrac:
		switch {
		case digit:
		case c == 'e' || c == 'E':
			s.num = numExp
		default:
			return numEnded
		}
	case numExp:
		switch {
		case c == '+' || c == '-':
			s.num = numExpSign
		case digit:
			s.num = numExpDigits
		default:
			return numBad
		}
	case numExpSign:
		if !digit {
			return numBad
		}
		s.num = numExpDigits
	case numExpDigits:
		if !digit {
			return numEnded
		}
	}
	return numMore
}

func (s *scanner) beginString(at int, key bool) {
	s.state = stString
	s.strStart, s.strKey, s.strEscaped, s.strEsc = at, key, false, 0
	s.nCapture, s.overflow = 0, false
	s.strCapture = key
	if !key && s.depth > 0 {
		top := &s.stack[s.depth-1]
		s.strCapture = !top.array && (top.kind == kShipper && top.key == keyShipperNumber ||
			top.kind == kBillShipper && top.key == keyAccountNumber ||
			top.kind == kRateRequestRequest && top.key == keyRequestOption)
	}
}

// stringBytes reads string content from b[i:]; it returns where it stopped.
func (s *scanner) stringBytes(b []byte, i, base int) int {
	for i < len(b) {
		if s.strEsc != 0 {
			c := b[i]
			switch {
			case s.strEsc == '\\':
				switch c {
				case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
					s.strEsc = 0
				case 'u':
					s.strEsc = 4
				default:
					s.fail(faultSyntax, base+i)
					return i
				}
			case '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F':
				s.strEsc--
			default:
				s.fail(faultSyntax, base+i)
				return i
			}
			s.keep(b[i : i+1])
			i++
			continue
		}
		j := plainRun(b, i)
		s.keep(b[i:j])
		if j == len(b) {
			return j
		}
		switch c := b[j]; c {
		case '"':
			s.endString(base + j)
			return j + 1
		case '\\':
			s.strEscaped, s.strEsc = true, '\\'
			s.keep(b[j : j+1])
			i = j + 1
		default: // a control character
			s.fail(faultSyntax, base+j)
			return j
		}
	}
	return i
}

// plainRun returns the offset of the first byte at or after i that ends a
// run of plain string content (a quote, a backslash or a control
// character), or len(b). Eight bytes at a time: base64 documents make
// strings of megabytes.
func plainRun(b []byte, i int) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for ; i+8 <= len(b); i += 8 {
		v := binary.LittleEndian.Uint64(b[i:])
		// A byte below 0x20, or equal to '"' or '\\', sets its high bit
		// in stop (the classic "has a zero byte" test; bytes at or above
		// 0x80 are excluded by &^ v).
		q, bs := v^(ones*'"'), v^(ones*'\\')
		stop := ((v - ones*0x20) | (q - ones) | (bs - ones)) &^ v & highs
		if stop != 0 {
			break
		}
	}
	for i < len(b) && !strStop[b[i]] {
		i++
	}
	return i
}

// keep adds string content to the capture buffer, when it is kept.
func (s *scanner) keep(p []byte) {
	if !s.strCapture || s.overflow || len(p) == 0 {
		return
	}
	if s.nCapture+len(p) > maxCapture {
		s.overflow = true
		return
	}
	s.nCapture += copy(s.capture[s.nCapture:], p)
}

// captured is the decoded content of the string just read; nil when it
// was not kept or is too long to be anything the scanner looks for.
func (s *scanner) captured(buf *[maxCapture]byte) []byte {
	if !s.strCapture || s.overflow {
		return nil
	}
	raw := s.capture[:s.nCapture]
	if !s.strEscaped {
		return raw
	}
	return unescapeInto(buf[:0], raw)
}

// endString handles the closing quote at offset at.
func (s *scanner) endString(at int) {
	v := strSpan{raw: span{s.strStart + 1, at}, quoted: span{s.strStart, at + 1}, escaped: s.strEscaped}
	if s.strKey {
		s.endKey(v)
		return
	}
	if s.strCapture {
		s.stringValue(v)
	}
	s.valueDone(at + 1)
}

// endKey records the key just read.
func (s *scanner) endKey(v strSpan) {
	var buf [maxCapture]byte
	id := keyID(s.captured(&buf))
	top := &s.stack[s.depth-1]
	top.key, top.empty = id, false
	s.state = stColon
	if top.kind == kShipper && id == keyShipperNumber && s.r.shipperNumKind == 0 && !s.tail {
		s.r.shipperNumKind = 'o'
	}
	if s.depth == 1 && top.kind == kRoot {
		s.memberStart = v.quoted.start
		s.securityMember = id == keyUPSSecurity
		if s.securityMember && s.tail {
			s.fail(faultSecurity, v.quoted.start)
		}
	}
}

// keyID names a decoded key, compared case-insensitively.
func keyID(k []byte) byte {
	if len(k) == 0 {
		return keyOther
	}
	ascii := true
	for _, c := range k {
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	for _, kk := range knownKeys {
		// An ASCII key folds to a known one only at the same length; any
		// other is at least as long and at most 3 times as long in UTF-8
		// (K and ſ fold to k and s).
		if ascii && len(k) != len(kk.name) || len(k) < len(kk.name) || len(k) > 3*len(kk.name) {
			continue
		}
		if bytes.EqualFold(k, kk.name) {
			return kk.id
		}
	}
	return keyOther
}

// stringValue records an interesting string value (strCapture is set).
func (s *scanner) stringValue(v strSpan) {
	top := &s.stack[s.depth-1]
	switch top.key {
	case keyShipperNumber, keyAccountNumber:
		if s.tail {
			var buf [maxCapture]byte
			if n := s.captured(&buf); n != nil && s.check != nil && !s.check.acceptsShipper(n) {
				s.fail(faultForeignShipper, v.quoted.start)
			}
			return
		}
		if top.key == keyShipperNumber && s.r.shipperNumKind != 's' {
			s.r.shipperNumKind, s.r.shipperNumber = 's', v
		}
		if s.r.nNumbers == maxScanNumbers {
			s.fail(faultNumbers, v.quoted.start)
			return
		}
		s.r.numbers[s.r.nNumbers] = v
		s.r.nNumbers++
	case keyRequestOption:
		if !s.tail {
			s.r.requestOption, s.r.requestOptionFound = v, true
		}
	}
}

// close ends the innermost container; end is the offset after it.
func (s *scanner) close(end int) {
	f := &s.stack[s.depth-1]
	if f.kind == kShipper && !f.array && s.r.shipperOpen >= 0 && !s.r.shipperDone && !s.tail {
		s.r.shipperDone = true
		s.r.shipperEmpty = f.empty
	}
	s.depth--
	s.valueDone(end)
}

// valueDone is called after each complete value, end being the offset
// after it. A value directly in the root object ends a top-level member.
func (s *scanner) valueDone(end int) {
	if s.depth == 0 {
		s.state = stEnd
		s.r.complete = true
		return
	}
	s.state = stCommaOrEnd
	if s.depth != 1 || !s.securityMember {
		return
	}
	s.securityMember = false
	r := &s.r
	if r.nSecurity == maxSecuritySpans {
		s.fail(faultSecurity, s.memberStart)
		return
	}
	sp := span{s.memberStart, end}
	if s.comma >= 0 {
		sp.start = s.comma // cut the comma before it
	} else {
		s.pendingSecurity = r.nSecurity // the first member: cut the comma after it, if any
	}
	r.security[r.nSecurity] = sp
	r.nSecurity++
}

// childKind classifies a container opened as the current value of top.
func (s *scanner) childKind(top *scanFrame) byte {
	if top.array {
		return top.kind // array elements share the array's path
	}
	switch k := top.key; {
	case k == keyShipmentCharge:
		return kCharge
	case top.kind == kRoot && k == keyRateRequest:
		return kRateRequest
	case top.kind == kRoot && k == keyShipmentRequest:
		return kShipmentRequest
	case top.kind == kRateRequest && k == keyRequest:
		return kRateRequestRequest
	case (top.kind == kRateRequest || top.kind == kShipmentRequest) && k == keyShipment:
		return kShipment
	case top.kind == kShipment && k == keyShipper:
		return kShipper
	case top.kind == kCharge && k == keyBillShipper:
		return kBillShipper
	}
	return kOther
}

// unescapeInto appends the decoded form of raw, the content of a valid
// JSON string, to dst. Lone surrogates decode to U+FFFD, as in
// encoding/json.
func unescapeInto(dst, raw []byte) []byte {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' || i+1 >= len(raw) {
			dst = append(dst, c)
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(raw[i+1:])
			if !ok {
				return dst
			}
			i += 4
			if 0xD800 <= r && r < 0xDC00 && i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
				if r2, ok := hex4(raw[i+3:]); ok && 0xDC00 <= r2 && r2 < 0xE000 {
					r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
					i += 6
				}
			}
			if 0xD800 <= r && r < 0xE000 {
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		default: // " \ /
			dst = append(dst, raw[i])
		}
	}
	return dst
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// value returns the decoded content of a string of the scanned prefix b.
func (v strSpan) value(b []byte) []byte {
	if !v.escaped {
		return b[v.raw.start:v.raw.end]
	}
	return unescapeInto(nil, b[v.raw.start:v.raw.end])
}
