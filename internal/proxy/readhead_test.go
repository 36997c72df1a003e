package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// Heads of the kinds the request path meets, and near misses of each.
var requestHeadSeeds = []string{
	"POST /api/rating/v2409/Rate HTTP/1.1\r\nHost: proxy.local\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{\"a\"}",
	"POST /api/rating/v2409/Rate HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\nContent-Length: 66\r\nContent-Type: application/json\r\n\r\n{\"RateRequest\":{\"Shipment\":{\"Shipper\":{\"ShipperNumber\":\"W599Y7\"}}}}GET / HTTP/1.1\r\n\r\n",
	"GET /api/track/v1/details/1Z999?locale=en_US&returnSignature=false HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /x? HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /x?? HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a%20b?q=%41 HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET //double/slash HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /!$'()*+,;= HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST http://wwwcie.ups.com/api/rating/v2409/Rate HTTP/1.1\r\nHost: elsewhere\r\nContent-Length: 2\r\n\r\n{}",
	"POST http://wwwcie.ups.com:80/api/ship?x=1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
	"POST https://user:pw@onlinetools.ups.com/x HTTP/1.1\r\n\r\n",
	"GET httpx HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET http://127.0.0.1:8080/x?a=b HTTP/1.1\r\n\r\n",
	"GET https://WWWCIE.ups.com:443/ HTTP/1.1\r\n\r\n",
	"GET HTTP://wwwcie.ups.com/ HTTP/1.1\r\n\r\n",
	"GET http://wwwcie.ups.com HTTP/1.1\r\n\r\n",
	"GET http://wwwcie.ups.com: HTTP/1.1\r\n\r\n",
	"GET http://wwwcie.ups.com:/x HTTP/1.1\r\n\r\n",
	"GET http://:80/x HTTP/1.1\r\n\r\n",
	"GET http:///x HTTP/1.1\r\n\r\n",
	"GET http://a:123456/x HTTP/1.1\r\n\r\n",
	"GET http://a:99999/x HTTP/1.1\r\n\r\n",
	"GET http://a:1:2/x HTTP/1.1\r\n\r\n",
	"GET http://[::1]:80/x HTTP/1.1\r\n\r\n",
	"GET http://a_b/x HTTP/1.1\r\n\r\n",
	"GET http://a.b%41/x HTTP/1.1\r\n\r\n",
	"GET http://a/x%2F?q HTTP/1.1\r\n\r\n",
	"GET http://a?x HTTP/1.1\r\n\r\n",
	"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
	"CONNECT wwwcie.ups.com:443 HTTP/1.1\r\nHost: wwwcie.ups.com:443\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: Keep-Alive, close\r\n\r\n",
	"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
	"GET / HTTP/1.1\r\nconnection: upgrade, CLOSE\r\n\r\n",
	"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
	"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
	"get / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
	"GET /\tx HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\ncontent-type: x\r\nX-UPS-1a-b: y\r\nx-Forwarded-For: 1\r\nX-Forwarded-For: 2\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost:\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
	"GET / HTTP/1.1\r\nX: \t v \t \r\n\r\n",
	"GET / HTTP/1.1\r\nX:v\r\n\r\n",
	"GET / HTTP/1.1\r\nX :v\r\n\r\n",
	"GET / HTTP/1.1\r\n X: v\r\n\r\n",
	"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
	"GET / HTTP/1.1\r\nX: a\nY: b\r\n\r\n",
	"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
	"GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n",
	"GET / HTTP/1.1\r\nX: \x7f\r\n\r\n",
	"GET / HTTP/1.1\r\nX_Y: v\r\n\r\n",
	"GET / HTTP/1.1\r\n: v\r\n\r\n",
	"GET / HTTP/1.1\r\nnocolon\r\n\r\n",
	"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	"POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc",
	"POST / HTTP/1.1\r\nContent-Length: 003\r\n\r\nabc",
	"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\nabc",
	"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort",
	"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n",
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc",
	"GET / HTTP/1.1\r\nTrailer: X\r\n\r\n",
	"GET / HTTP/1.1\r\nPragma: no-cache\r\n\r\n",
	"GET / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"GET / HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\n",
	"GET / HTTP/1.1\n\n",
	"\r\nGET / HTTP/1.1\r\n\r\n",
}

// FuzzReadRequestHead compares readRequestHead with http.ReadRequest on
// any input: what the fast path accepts, net/http must accept with every
// field equal, the same body and the same bytes left for the next
// request; what it declines, it must leave unread.
func FuzzReadRequestHead(f *testing.F) {
	for _, s := range requestHeadSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRequestHead(t, data, 4096)
	})
}

func TestReadRequestHeadAgreesWithNetHTTP(t *testing.T) {
	accepted := 0
	for _, s := range requestHeadSeeds {
		if checkRequestHead(t, []byte(s), 4096) {
			accepted++
		}
	}
	// The seeds hold both kinds: a fast path that declined everything
	// would pass the comparison and do nothing.
	t.Logf("the fast path took %d of %d seeds", accepted, len(requestHeadSeeds))
	if accepted < 15 || accepted > len(requestHeadSeeds)-25 {
		t.Fatalf("the fast path took %d of %d seeds", accepted, len(requestHeadSeeds))
	}
}

func TestReadRequestHeadLeavesHeadsLongerThanTheLimitToNetHTTP(t *testing.T) {
	head := "GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + strings.Repeat("v", 100) + "\r\n\r\n"
	br := bufio.NewReader(strings.NewReader(head))
	_, _ = br.Peek(1)
	if _, ok := readRequestHead(br, len(head)-1); ok {
		t.Fatal("a head over the limit was taken")
	}
	if _, ok := readRequestHead(br, len(head)); !ok {
		t.Fatal("a head at the limit was not taken")
	}
}

// checkRequestHead runs the comparison on data; it reports whether the
// fast path took the head.
func checkRequestHead(t *testing.T, data []byte, max int) bool {
	t.Helper()
	br := bufio.NewReaderSize(bytes.NewReader(data), 4096)
	_, _ = br.Peek(1)
	before := br.Buffered()
	fast, ok := readRequestHead(br, max)
	if !ok {
		declinedUnread(t, data, br, before)
		return false
	}
	slowBR := bufio.NewReaderSize(bytes.NewReader(data), 4096)
	slow, err := http.ReadRequest(slowBR)
	if err != nil {
		t.Fatalf("took %q, which net/http refuses: %v", data, err)
	}
	type fields struct {
		Method, Proto, Host, RequestURI string
		ProtoMajor, ProtoMinor          int
		URL                             any
		Header                          http.Header
		ContentLength                   int64
		TransferEncoding                []string
		Close                           bool
		Trailer                         http.Header
		NoBody                          bool
	}
	of := func(r *http.Request) fields {
		return fields{r.Method, r.Proto, r.Host, r.RequestURI, r.ProtoMajor, r.ProtoMinor, *r.URL, r.Header,
			r.ContentLength, r.TransferEncoding, r.Close, r.Trailer, r.Body == http.NoBody}
	}
	if a, b := of(fast), of(slow); !reflect.DeepEqual(a, b) {
		t.Fatalf("%q:\nfast %+v\nnet/http %+v", data, a, b)
	}
	// The serve loop trusts the fast path's header fields (checkRequest's
	// fieldsValid): the full check of net/http's request must agree.
	if fastErr, slowErr := checkRequest(fast, true), checkRequest(slow, false); (fastErr == nil) != (slowErr == nil) {
		t.Fatalf("%q: checkRequest says %v; of net/http's request %v", data, fastErr, slowErr)
	}
	sameBodies(t, data, fast.Body, slow.Body, br, slowBR)
	n, err := fast.Body.Read(make([]byte, 1))
	slowN, slowErr := slow.Body.Read(make([]byte, 1))
	if n != slowN || err != slowErr {
		t.Fatalf("%q: a read after the end gave %d, %v; net/http's %d, %v", data, n, err, slowN, slowErr)
	}
	_ = fast.Body.Close()
	if fast.Body != http.NoBody {
		if _, err := fast.Body.Read(make([]byte, 1)); err != http.ErrBodyReadAfterClose {
			t.Fatalf("%q: a read after Close gave %v", data, err)
		}
	}
	return true
}

// Response heads of the kinds UPS sends, and near misses of each.
var responseHeadSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Mon, 30 Nov 2026 10:00:00 GMT\r\nContent-Type: application/json\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n{\"a\"}HTTP/1.1 200 OK\r\n\r\n",
	"HTTP/1.1 401 Unauthorized\r\nContent-Length: 3\r\nWWW-Authenticate: Bearer\r\nX-Ups-Trans: a\r\nx-ups-trans: b\r\n\r\nabc",
	"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK \t weird\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\x01\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 20a OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 999 Odd\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\n\r\n",
	"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\n\r\nunbounded until close",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy",
	"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTrailer: X\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nHost: a\r\nHost: b\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n X: a\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: \xff\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
	"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n",
}

// FuzzReadResponseHead is FuzzReadRequestHead for readResponseHead
// against http.ReadResponse; head says the request was a HEAD.
func FuzzReadResponseHead(f *testing.F) {
	for _, s := range responseHeadSeeds {
		f.Add([]byte(s), false)
	}
	f.Add([]byte(responseHeadSeeds[0]), true)
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		checkResponseHead(t, data, head)
	})
}

func TestReadResponseHeadAgreesWithNetHTTP(t *testing.T) {
	accepted := 0
	for _, s := range responseHeadSeeds {
		if checkResponseHead(t, []byte(s), false) {
			accepted++
		}
		if checkResponseHead(t, []byte(s), true) {
			t.Fatalf("took the answer to a HEAD: %q", s)
		}
	}
	t.Logf("the fast path took %d of %d seeds", accepted, len(responseHeadSeeds))
	if accepted < 10 || accepted > len(responseHeadSeeds)-15 {
		t.Fatalf("the fast path took %d of %d seeds", accepted, len(responseHeadSeeds))
	}
}

// checkResponseHead runs the comparison on data; it reports whether the
// fast path took the head.
func checkResponseHead(t *testing.T, data []byte, head bool) bool {
	t.Helper()
	req := &http.Request{Method: http.MethodPost}
	if head {
		req.Method = http.MethodHead
	}
	br := bufio.NewReaderSize(bytes.NewReader(data), 4096)
	_, _ = br.Peek(1)
	before := br.Buffered()
	fast, ok := readResponseHead(br, req)
	if !ok {
		declinedUnread(t, data, br, before)
		return false
	}
	slowBR := bufio.NewReaderSize(bytes.NewReader(data), 4096)
	slow, err := http.ReadResponse(slowBR, req)
	if err != nil {
		t.Fatalf("took %q, which net/http refuses: %v", data, err)
	}
	type fields struct {
		Status, Proto                    string
		StatusCode, ProtoMajor, ProtoMin int
		Header                           http.Header
		ContentLength                    int64
		TransferEncoding                 []string
		Close, Uncompressed, NoBody      bool
		Trailer                          http.Header
		Request                          *http.Request
	}
	of := func(r *http.Response) fields {
		return fields{r.Status, r.Proto, r.StatusCode, r.ProtoMajor, r.ProtoMinor, r.Header, r.ContentLength,
			r.TransferEncoding, r.Close, r.Uncompressed, r.Body == http.NoBody, r.Trailer, r.Request}
	}
	if a, b := of(fast), of(slow); !reflect.DeepEqual(a, b) {
		t.Fatalf("%q:\nfast %+v\nnet/http %+v", data, a, b)
	}
	sameBodies(t, data, fast.Body, slow.Body, br, slowBR)
	return true
}

// sameBodies compares the bodies read by the fast path and by net/http,
// and, after a whole body, the bytes left for the next message.
func sameBodies(t *testing.T, data []byte, fast, slow io.Reader, br, slowBR *bufio.Reader) {
	t.Helper()
	fastBody, fastErr := io.ReadAll(fast)
	slowBody, slowErr := io.ReadAll(slow)
	if !bytes.Equal(fastBody, slowBody) || !errors.Is(fastErr, slowErr) && !errors.Is(slowErr, fastErr) {
		t.Fatalf("%q: body %q, %v; net/http's %q, %v", data, fastBody, fastErr, slowBody, slowErr)
	}
	if fastErr == nil {
		fastRest, _ := io.ReadAll(br)
		slowRest, _ := io.ReadAll(slowBR)
		if !bytes.Equal(fastRest, slowRest) {
			t.Fatalf("%q: left %q for the next message; net/http %q", data, fastRest, slowRest)
		}
	}
}

// declinedUnread checks that a head the fast path declined was left
// unread: before is what br held.
func declinedUnread(t *testing.T, data []byte, br *bufio.Reader, before int) {
	t.Helper()
	if br.Buffered() != before {
		t.Fatalf("declined %q but read %d bytes of it", data, before-br.Buffered())
	}
}

func TestAbsoluteTargetsOfAPlainHostAreCutNotParsed(t *testing.T) {
	for target, want := range map[string]int{
		"http://wwwcie.ups.com/api/rating/v2409/Rate": 21,
		"https://127.0.0.1:8443/x?y=z":                22,
		"http://a:1/":                                 10,
		"http://wwwcie.ups.com":                       0, // no path
		"http://:80/x":                                0,
		"http://a:/x":                                 0,
		"http://a:123456/x":                           0,
		"http://[::1]/x":                              0,
		"ftp://a/x":                                   0,
		"/x":                                          0,
	} {
		if _, got := absoluteTarget([]byte(target)); got != want {
			t.Errorf("absoluteTarget(%q) = %d, want %d", target, got, want)
		}
	}
}
