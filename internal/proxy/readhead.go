package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// The request path also reads the common request head itself, field for
// field as http.ReadRequest would (readhead_test.go's fuzz target compares
// the two on any input), without what http.ReadRequest costs per request:
// a textproto.Reader, a string per header line and value, a canonical
// copy of each key, the URL parser for a plain path, readTransfer's
// bookkeeping and a LimitReader under its body. Everything unusual goes to
// http.ReadRequest: readRequestHead reads nothing then.

// readHeadsByHand turns readRequestHead and readResponseHead on; tests
// turn them off to compare the wire with net/http's parsers alone.
var readHeadsByHand = true

// readRequestHead parses the request head at the start of br's buffer as
// http.ReadRequest would, if the whole head is already buffered, at most
// max bytes long, and of the common kind:
//   - a request line "METHOD target HTTP/1.1" (or 1.0), the method in
//     capital letters (not CONNECT), the target a path with an optional
//     query or an absolute URL;
//   - header lines "Name: value", each ending in CRLF, the name of letters,
//     digits and '-', the value of printable ASCII, spaces and tabs;
//   - at most one Host and one Content-Length (plain digits), and no
//     Transfer-Encoding, Trailer or Pragma (which net/http rewrites).
//
// ok false: nothing was read; the caller uses http.ReadRequest, which
// also gives the error of a malformed head.
func readRequestHead(br *bufio.Reader, max int) (req *http.Request, ok bool) {
	if !readHeadsByHand {
		return nil, false
	}
	buf, _ := br.Peek(br.Buffered())
	end := bytes.Index(buf, crlfcrlf)
	if end < 0 || end+4 > max {
		return nil, false
	}
	// The request line.
	lineEnd := bytes.Index(buf, crlf)
	line := buf[:lineEnd]
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return nil, false
	}
	for _, c := range line[:sp1] {
		if c < 'A' || c > 'Z' {
			return nil, false
		}
	}
	sp2 := bytes.IndexByte(line[sp1+1:], ' ') + sp1 + 1
	if sp2 <= sp1+1 {
		return nil, false
	}
	proto, minor, ok := httpVersion(line[sp2+1:])
	if !ok {
		return nil, false
	}
	target := line[sp1+1 : sp2]
	// The URL of a plain path, or of an absolute URL of a plain host, is
	// cut from the target; any other absolute URL is url.ParseRequestURI's
	// (as http.ReadRequest's).
	scheme, hostEnd := absoluteTarget(target)
	simple := simpleTarget(target[hostEnd:])
	if !simple && (hostEnd > 0 || target[0] == '/' || !bytes.HasPrefix(target, []byte("http"))) {
		return nil, false
	}

	// One string holds the head; every string of the request is cut from it.
	s := string(buf[:end+2])
	a := new(requestParts)
	r := &a.req
	*r = http.Request{
		Method:     methodName(s[:sp1]),
		RequestURI: s[sp1+1 : sp2],
		Proto:      proto,
		ProtoMajor: 1,
		ProtoMinor: minor,
	}
	if simple {
		r.URL = &a.url
		if hostEnd > 0 {
			r.URL.Scheme, r.URL.Host = scheme, r.RequestURI[len(scheme)+3:hostEnd]
		}
		r.URL.Path, r.URL.RawQuery, r.URL.ForceQuery = splitTarget(r.RequestURI[hostEnd:])
	} else {
		u, err := url.ParseRequestURI(r.RequestURI)
		if err != nil {
			return nil, false
		}
		r.URL = u
	}
	if r.Method == http.MethodConnect {
		return nil, false
	}

	h, host, length, ok := readFields(s, lineEnd+2, true)
	if !ok {
		return nil, false
	}
	r.Header = h
	r.Host = r.URL.Host
	if r.Host == "" {
		r.Host = host
	}
	r.Close, _ = closes(h, minor)
	r.Body = http.NoBody
	if length > 0 {
		r.ContentLength = length
		a.body = lengthBody{r: br, left: length}
		r.Body = &a.body
	}
	_, _ = br.Discard(end + 4)
	return r, true
}

// readFields parses the header lines of a head s from at on (each line
// ends in CRLF) as textproto.Reader.ReadMIMEHeader would, if they are of
// the common kind (see readRequestHead). A request's Host line (request
// true) is not put in the header: http.ReadRequest drops it; at most one
// is allowed. length is the Content-Length, -1 without one.
func readFields(s string, at int, request bool) (h http.Header, host string, length int64, ok bool) {
	n := strings.Count(s[at:], "\r\n")
	h = make(http.Header, n)
	strs := make([]string, n)
	hosts := 0
	length = -1
	for at < len(s) {
		e := strings.IndexByte(s[at:], '\n') + at
		if e == at || s[e-1] != '\r' {
			return nil, "", 0, false // a bare LF
		}
		l := s[at : e-1]
		at = e + 1
		colon := strings.IndexByte(l, ':')
		if colon <= 0 {
			return nil, "", 0, false
		}
		key, ok := canonicalName(l[:colon])
		if !ok {
			return nil, "", 0, false
		}
		v := trimOWS(l[colon+1:])
		for i := 0; i < len(v); i++ {
			if c := v[i]; c < ' ' && c != '\t' || c >= 0x7f {
				return nil, "", 0, false
			}
		}
		switch key {
		case "Host":
			if request {
				if hosts++; hosts > 1 {
					return nil, "", 0, false
				}
				host = v
				continue
			}
		case "Content-Length":
			if length >= 0 {
				return nil, "", 0, false
			}
			if length, ok = plainLength(v); !ok {
				return nil, "", 0, false
			}
		case "Transfer-Encoding", "Trailer", "Pragma":
			return nil, "", 0, false
		}
		if vv, seen := h[key]; seen {
			h[key] = append(vv, v)
		} else {
			strs[0] = v
			h[key], strs = strs[:1:1], strs[1:]
		}
	}
	return h, host, length, true
}

var crlf = []byte("\r\n")

// httpVersion is the protocol of an HTTP/1.1 or HTTP/1.0 message.
func httpVersion(b []byte) (proto string, minor int, ok bool) {
	switch string(b) {
	case "HTTP/1.1":
		return "HTTP/1.1", 1, true
	case "HTTP/1.0":
		return "HTTP/1.0", 0, true
	}
	return "", 0, false
}

// closes says whether an HTTP/1.minor message with header h ends its
// connection (net/http's shouldClose), and whether h says "close".
func closes(h http.Header, minor int) (closing, saysClose bool) {
	saysClose = httpguts.HeaderValuesContainsToken(h["Connection"], "close")
	if minor == 0 {
		return saysClose || !httpguts.HeaderValuesContainsToken(h["Connection"], "keep-alive"), saysClose
	}
	return saysClose, saysClose
}

// trimOWS cuts spaces and tabs off both ends of v.
func trimOWS(v string) string {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// requestParts holds what readRequestHead makes of a request in one
// allocation.
type requestParts struct {
	req  http.Request
	url  url.URL
	body lengthBody
}

// methodName returns the constant for a common method, so that the
// request does not keep its head's string alive for it alone.
func methodName(m string) string {
	switch m {
	case http.MethodPost:
		return http.MethodPost
	case http.MethodGet:
		return http.MethodGet
	}
	return m
}

// simpleTarget reports whether target is a path with an optional query,
// of characters that net/url keeps as they are (no percent-encoding): its
// URL is then cut from it (splitTarget) as url.ParseRequestURI would.
func simpleTarget(target []byte) bool {
	if len(target) == 0 || target[0] != '/' {
		return false
	}
	query := false
	for _, c := range target {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~$&+,/:;=@", c) >= 0:
		case c == '?' && !query:
			query = true
		default:
			return false
		}
	}
	return true
}

// absoluteTarget reports where the authority of an absolute-form target
// "http://host[:port]" or "https://..." ends, when the host is a name or
// an IPv4 address (letters, digits, '.' and '-') and the port digits, the
// authority then followed by a path or nothing; 0 otherwise.
func absoluteTarget(target []byte) (scheme string, hostEnd int) {
	switch {
	case bytes.HasPrefix(target, []byte("http://")):
		scheme = "http"
	case bytes.HasPrefix(target, []byte("https://")):
		scheme = "https"
	default:
		return "", 0
	}
	i, port := len(scheme)+3, -1
	for ; i < len(target) && target[i] != '/'; i++ {
		switch c := target[i]; {
		case '0' <= c && c <= '9':
		case port < 0 && ('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '.' || c == '-'):
		case port < 0 && c == ':':
			port = i
		default:
			return "", 0
		}
	}
	if i == len(scheme)+3 || port == len(scheme)+3 || port == i-1 || port > 0 && i-port > 6 {
		return "", 0 // no host, no port after ':', or a port past 5 digits
	}
	if i == len(target) {
		// No path: simpleTarget wants one.
		return "", 0
	}
	return scheme, i
}

// splitTarget is url.ParseRequestURI for a simpleTarget.
func splitTarget(target string) (path, rawQuery string, forceQuery bool) {
	path, rawQuery, hasQuery := strings.Cut(target, "?")
	return path, rawQuery, hasQuery && rawQuery == ""
}

// canonicalName returns the canonical form of a header name of letters,
// digits and '-' (textproto.CanonicalMIMEHeaderKey), cut from name itself
// when it already is; ok false for any other name.
func canonicalName(name string) (string, bool) {
	canonical, upper := true, true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z':
			canonical = canonical && !upper
		case 'A' <= c && c <= 'Z':
			canonical = canonical && upper
		case '0' <= c && c <= '9', c == '-':
		default:
			return "", false
		}
		upper = c == '-'
	}
	if canonical {
		return name, true
	}
	return textproto.CanonicalMIMEHeaderKey(name), true
}

// plainLength parses a Content-Length of 1 to 18 digits.
func plainLength(v string) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// lengthBody is a request body of known length read from the
// connection's reader, as net/http's: the last bytes come with io.EOF, a
// connection that ends before the body does gives io.ErrUnexpectedEOF,
// and a read after Close fails. Close does not drain what is left: a
// connection whose request body was not read to its end is closed
// (clientConn.handle).
type lengthBody struct {
	r      *bufio.Reader
	left   int64
	closed bool
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	switch {
	case b.left == 0:
		return n, io.EOF
	case err == io.EOF:
		b.left = 0 // as net/http's: EOF from now on
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *lengthBody) Close() error {
	b.closed = true
	return nil
}

// readResponseHead parses the response head at the start of br's buffer
// as http.ReadResponse(br, req) would, if the whole head is already
// buffered and of the common kind: a status line "HTTP/1.1 200 OK" (or
// 1.0) with a final status other than 204 and 304 and a printable reason,
// header lines as readFields takes them, a Content-Length, and a request
// other than HEAD. ok false: nothing was read; the caller uses
// http.ReadResponse.
func readResponseHead(br *bufio.Reader, req *http.Request) (resp *http.Response, ok bool) {
	if !readHeadsByHand {
		return nil, false
	}
	buf, _ := br.Peek(br.Buffered())
	end := bytes.Index(buf, crlfcrlf)
	if end < 0 || req.Method == http.MethodHead {
		return nil, false
	}
	// "HTTP/1.1 200" and an optional " reason".
	lineEnd := bytes.Index(buf, crlf)
	line := buf[:lineEnd]
	if len(line) < 12 || line[8] != ' ' || len(line) > 12 && line[12] != ' ' {
		return nil, false
	}
	proto, minor, ok := httpVersion(line[:8])
	if !ok {
		return nil, false
	}
	code := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return nil, false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code == http.StatusNoContent || code == http.StatusNotModified {
		return nil, false
	}
	for _, c := range line[12:] {
		if c < ' ' && c != '\t' || c >= 0x7f {
			return nil, false
		}
	}
	s := string(buf[:end+2])
	h, _, length, ok := readFields(s, lineEnd+2, false)
	if !ok || length < 0 {
		return nil, false
	}
	a := new(responseParts)
	resp = &a.resp
	*resp = http.Response{
		Status:        s[9:lineEnd],
		StatusCode:    code,
		Proto:         proto,
		ProtoMajor:    1,
		ProtoMinor:    minor,
		Header:        h,
		ContentLength: length,
		Request:       req,
		Body:          http.NoBody,
	}
	var saysClose bool
	if resp.Close, saysClose = closes(h, minor); saysClose && minor == 1 {
		delete(h, "Connection") // as http.ReadResponse does
	}
	if length > 0 {
		a.body = lengthBody{r: br, left: length}
		resp.Body = &a.body
	}
	_, _ = br.Discard(end + 4)
	return resp, true
}

// responseParts holds what readResponseHead makes of a response in one
// allocation.
type responseParts struct {
	resp http.Response
	body lengthBody
}
