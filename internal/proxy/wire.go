package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// The request path writes the common request head (upstream) and response
// head (client) itself, byte for byte as net/http's Request.Write and
// Response.Write would (wire_test.go compares them), without what those
// cost per message: fmt for the first line, a pooled sorter and a
// closure-driven sort of the header keys, a strings.Replacer pass over
// every value, a transferWriter. Anything unusual (trailers, chunked or
// unknown lengths, HEAD, 1xx/204/304, a zero length, hosts that need
// cleaning, Connection headers that interact with Close) still goes
// through net/http's writers: writeRequestHead and writeResponse report
// false without writing anything then.

// writeResponse writes resp whole (head and body) to w as resp.Write
// would, and closes its body as resp.Write does, if resp is of the common
// kind: a final status with a body of known, non-zero length, answering a
// request other than HEAD, without trailers. ok false: nothing was written
// or read, the caller uses resp.Write.
func writeResponse(w *bufio.Writer, req *http.Request, resp *http.Response) (ok bool, err error) {
	code := resp.StatusCode
	if resp.ContentLength <= 0 || len(resp.TransferEncoding) > 0 || resp.Trailer != nil || resp.Body == nil ||
		code < 200 || code > 999 || code == http.StatusNoContent || code == http.StatusNotModified ||
		req.Method == http.MethodHead || (resp.Request != nil && resp.Request.Method == http.MethodHead) ||
		resp.ProtoMajor != 1 || resp.ProtoMinor != 1 ||
		(resp.Close && len(resp.Header["Connection"]) > 0) {
		return false, nil
	}
	d0, d1, d2 := byte('0'+code/100), byte('0'+code/10%10), byte('0'+code%10)
	text := resp.Status
	if text == "" {
		text = http.StatusText(code)
		if text == "" {
			text = "status code " + strconv.Itoa(code)
		}
	} else if len(text) >= 4 && text[0] == d0 && text[1] == d1 && text[2] == d2 && text[3] == ' ' {
		text = text[4:]
	}
	_, _ = w.WriteString("HTTP/1.1 ")
	_ = w.WriteByte(d0)
	_ = w.WriteByte(d1)
	_ = w.WriteByte(d2)
	_ = w.WriteByte(' ')
	_, _ = w.WriteString(text)
	_, _ = w.WriteString("\r\n")
	if resp.Close {
		_, _ = w.WriteString("Connection: close\r\n")
	}
	writeContentLength(w, resp.ContentLength)
	writeFields(w, resp.Header, respExcluded)
	_, err = w.WriteString("\r\n")
	if err != nil {
		_ = resp.Body.Close()
		return true, err
	}
	return true, writeBody(w, resp.Body, resp.ContentLength)
}

// writeBody copies exactly n bytes of body to w, as net/http's
// transferWriter does: the declared length, then whatever is left read
// and dropped, the body closed, and a length that does not match refused.
// A body that fits w's buffer is read straight into it (what bufio's
// ReadFrom does then), with no LimitReader to allocate; a larger one is
// copied as net/http copies it.
func writeBody(w *bufio.Writer, body io.ReadCloser, n int64) error {
	var ncopy int64
	var err error
	if n <= int64(w.Available()) {
		for empty := 0; ncopy < n; {
			buf := w.AvailableBuffer()[:n-ncopy]
			var m int
			m, err = body.Read(buf)
			if m > 0 {
				_, _ = w.Write(buf[:m])
				ncopy += int64(m)
				empty = 0
			}
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				break
			}
			if m == 0 {
				if empty++; empty >= 100 { // bufio's bound
					err = io.ErrNoProgress
					break
				}
			}
		}
	} else {
		ncopy, err = io.Copy(w, io.LimitReader(body, n))
	}
	if err == nil {
		var extra int64
		extra, err = io.Copy(io.Discard, body)
		ncopy += extra
	}
	cerr := body.Close()
	if err != nil {
		return err
	}
	if cerr != nil {
		return cerr
	}
	if ncopy != n {
		return fmt.Errorf("http: ContentLength=%d with Body length %d", n, ncopy)
	}
	return nil
}

// writeRequestHead writes the line and headers of req, a request
// upstreamClient sends itself (see handles: no trailers, a body in memory
// or none, no Expect, never Close), as req.Write would (not through a
// proxy). The body is the caller's to write. ok false: nothing was
// written, the caller uses req.Write.
func writeRequestHead(w *bufio.Writer, req *http.Request) bool {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if req.Close || req.Method == "" || len(req.TransferEncoding) > 0 || req.Trailer != nil || req.URL.Opaque != "" ||
		!plainASCII(host) || strings.HasPrefix(host, "[") || !httpguts.ValidHostHeader(host) {
		return false
	}
	length := req.ContentLength
	switch req.Body {
	case nil, http.NoBody:
		if length != 0 && req.Body == nil {
			return false // net/http refuses it
		}
		length = 0
	default:
		if length <= 0 {
			return false // net/http would chunk, or probe the body
		}
	}
	ruri := req.URL.RequestURI()
	if !plainASCII(ruri) {
		return false // net/http refuses control bytes
	}
	_, _ = w.WriteString(req.Method)
	_ = w.WriteByte(' ')
	_, _ = w.WriteString(ruri)
	_, _ = w.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = w.WriteString(host)
	_, _ = w.WriteString("\r\n")
	ua := "Go-http-client/1.1" // net/http's default
	if vv, ok := req.Header["User-Agent"]; ok {
		ua = ""
		if len(vv) > 0 {
			ua = vv[0]
		}
	}
	if ua != "" {
		_, _ = w.WriteString("User-Agent: ")
		_, _ = w.WriteString(cleanValue(ua))
		_, _ = w.WriteString("\r\n")
	}
	switch req.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		writeContentLength(w, length)
	default:
		if length > 0 {
			writeContentLength(w, length)
		}
	}
	writeFields(w, req.Header, reqExcluded)
	_, _ = w.WriteString("\r\n")
	return true
}

// plainASCII reports whether s holds only printable ASCII (and no CTL).
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' || b >= 0x7f {
			return false
		}
	}
	return true
}

func writeContentLength(w *bufio.Writer, n int64) {
	_, _ = w.WriteString("Content-Length: ")
	writeDecimal(w, n)
	_, _ = w.WriteString("\r\n")
}

// writeDecimal writes n (not negative) in decimal, without allocating.
func writeDecimal(w *bufio.Writer, n int64) {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	for ; i < len(buf); i++ {
		_ = w.WriteByte(buf[i])
	}
}

// Header keys net/http's writers leave out (they write them from the
// message's fields).
func respExcluded(k string) bool {
	return k == "Content-Length" || k == "Transfer-Encoding" || k == "Trailer"
}

func reqExcluded(k string) bool {
	return k == "Host" || k == "User-Agent" || respExcluded(k)
}

// writeFields writes h's fields, but the excluded and the invalid names,
// in the order of their keys, each value cleaned: Header.WriteSubset's
// output. The keys are sorted by insertion on the stack (a message has a
// dozen headers or so).
func writeFields(w *bufio.Writer, h http.Header, excluded func(string) bool) {
	var buf [32]string
	keys := buf[:0]
	for k := range h {
		if !excluded(k) {
			keys = append(keys, k)
		}
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	for _, k := range keys {
		if !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range h[k] {
			_, _ = w.WriteString(k)
			_, _ = w.WriteString(": ")
			_, _ = w.WriteString(cleanValue(v))
			_, _ = w.WriteString("\r\n")
		}
	}
}

// newlineToSpace is net/http's cleaning of header values on the wire.
var newlineToSpace = strings.NewReplacer("\n", " ", "\r", " ")

// cleanValue is v as net/http writes it: CR and LF as spaces, then
// surrounding spaces and tabs trimmed. Most values need neither.
func cleanValue(v string) string {
	if hasCRLF(v) {
		v = newlineToSpace.Replace(v)
	}
	return textproto.TrimString(v)
}

// hasCRLF is strings.ContainsAny(v, "\r\n"), without its generic path.
func hasCRLF(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] == '\r' || v[i] == '\n' {
			return true
		}
	}
	return false
}

// dateValue is the Date header of the current second, shared by the
// responses sent within it (a header value is never modified in place).
type dateValue struct {
	sec int64
	v   []string
}

var currentDate atomic.Pointer[dateValue]

// httpDate returns the Date header value for now, formatted once a second.
func httpDate(now time.Time) []string {
	sec := now.Unix()
	if d := currentDate.Load(); d != nil && d.sec == sec {
		return d.v
	}
	d := &dateValue{sec: sec, v: []string{now.UTC().Format(http.TimeFormat)}}
	currentDate.Store(d)
	return d.v
}
