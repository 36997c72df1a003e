package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The hand-written heads must be net/http's byte for byte (wire.go).

func TestWriteResponseMatchesNetHTTP(t *testing.T) {
	const body = `{"RateResponse":{}}`
	cases := []struct {
		name            string
		method          string
		status          int
		statusText      string
		close           bool
		header          http.Header
		length          int64
		wantHandWritten bool
		body            string // default: body
	}{
		{"large body", "POST", 200, "200 OK", false, http.Header{"Content-Type": {"application/json"}}, 100 << 10, true, strings.Repeat("label", 20<<10)},
		{"large body, shorter", "POST", 200, "200 OK", false, http.Header{}, 100<<10 + 1, true, strings.Repeat("label", 20<<10)},
		{"ups 200", "POST", 200, "200 OK", false, http.Header{"Content-Type": {"application/json"}, "Date": {"x"}, "Transid": {"abc"}, "Bkndtransid": {"1"}}, int64(len(body)), true, ""},
		{"no status text", "GET", 200, "", false, http.Header{"Content-Type": {"application/json"}}, int64(len(body)), true, ""},
		{"status without its code", "GET", 401, "Unauthorized", false, http.Header{"X": {"1"}}, int64(len(body)), true, ""},
		{"odd status text", "GET", 299, "299 Fine Then", false, http.Header{}, int64(len(body)), true, ""},
		{"unknown status", "GET", 599, "", false, nil, int64(len(body)), true, ""},
		{"close", "POST", 500, "500 Internal Server Error", true, http.Header{"Content-Type": {"application/json"}}, int64(len(body)), true, ""},
		{"http/1.0 keep-alive", "POST", 200, "200 OK", false, http.Header{"Connection": keepAliveValue}, int64(len(body)), true, ""},
		{"close with a Connection header", "POST", 200, "200 OK", true, http.Header{"Connection": {"close"}}, int64(len(body)), false, ""},
		{"values to clean", "POST", 200, "200 OK", false, http.Header{"A": {" x\r\ny\t", "two"}, "B": {""}, "Bad Name": {"v"}, "Content-Length": {"99"}, "Trailer": {"X"}, "Transfer-Encoding": {"chunked"}}, int64(len(body)), true, ""},
		{"many headers", "POST", 200, "200 OK", false, manyHeaders(40), int64(len(body)), true, ""},
		{"HEAD", "HEAD", 200, "200 OK", false, http.Header{}, int64(len(body)), false, ""},
		{"204", "GET", 204, "", false, http.Header{}, int64(len(body)), false, ""},
		{"zero length", "GET", 200, "", false, http.Header{}, 0, false, ""},
		{"unknown length", "GET", 200, "", false, http.Header{}, -1, false, ""},
		{"body shorter than declared", "GET", 200, "", false, http.Header{}, int64(len(body)) + 5, true, ""},
		{"body longer than declared", "GET", 200, "", false, http.Header{}, int64(len(body)) - 5, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := body
			if tc.body != "" {
				body = tc.body
			}
			mk := func() *http.Response {
				return &http.Response{
					Status: tc.statusText, StatusCode: tc.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
					Header: tc.header, Close: tc.close, ContentLength: tc.length,
					Body:    io.NopCloser(strings.NewReader(body)),
					Request: &http.Request{Method: tc.method},
				}
			}
			req := &http.Request{Method: tc.method, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
			var want bytes.Buffer
			wantErr := mk().Write(&want)
			var got bytes.Buffer
			bw := bufio.NewWriter(&got)
			ok, err := writeResponse(bw, req, mk())
			_ = bw.Flush()
			if ok != tc.wantHandWritten {
				t.Fatalf("hand-written: %v, want %v", ok, tc.wantHandWritten)
			}
			if !ok {
				if got.Len() != 0 {
					t.Fatalf("wrote %q before falling back", got.String())
				}
				return
			}
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("error %v, net/http's %v", err, wantErr)
			}
			if got.String() != want.String() {
				t.Fatalf("wire differs:\n got %q\nwant %q", got.String(), want.String())
			}
		})
	}
}

func manyHeaders(n int) http.Header {
	h := http.Header{}
	for i := range n {
		h[http.CanonicalHeaderKey(string(rune('a'+i%26))+strings.Repeat("x", i))] = []string{"v"}
	}
	return h
}

func TestWriteRequestHeadMatchesNetHTTP(t *testing.T) {
	const body = `{"RateRequest":{}}`
	mem := func() *memBody { b := new(memBody); b.Reset([]byte(body)); return b }
	cases := []struct {
		name            string
		method, target  string
		host            string
		header          http.Header
		body            io.ReadCloser
		length          int64
		wantHandWritten bool
	}{
		{"rate POST", "POST", "https://onlinetools.ups.com/api/rating/v2409/Rate?additionalinfo=timeintransit", "onlinetools.ups.com",
			http.Header{"Authorization": {"Bearer t"}, "Content-Type": {"application/json"}, "Transid": {"x"}, "Transactionsrc": {"upsproxy"}, "Content-Length": {"1"}}, mem(), int64(len(body)), true},
		{"GET no body", "GET", "http://127.0.0.1:8080/track/v1/details/1Z?locale=en_US", "", http.Header{"Accept": {"*/*"}}, http.NoBody, 0, true},
		{"nil body", "DELETE", "http://h/x", "h", http.Header{}, nil, 0, true},
		{"POST empty", "POST", "http://h/x", "h", http.Header{}, http.NoBody, 0, true},
		{"OPTIONS empty", "OPTIONS", "http://h/x", "h", http.Header{}, http.NoBody, 0, true},
		{"user agent", "POST", "http://h/x", "h", http.Header{"User-Agent": {" Legacy\r\nShip/1.0 "}}, mem(), int64(len(body)), true},
		{"empty user agent", "POST", "http://h/x", "h", http.Header{"User-Agent": {""}}, mem(), int64(len(body)), true},
		{"user agent key, no values", "POST", "http://h/x", "h", http.Header{"User-Agent": {}}, mem(), int64(len(body)), true},
		{"escaped path", "GET", "http://h/a%20b/c%2Fd", "h", http.Header{"Host": {"evil"}, "Trailer": {"X"}}, http.NoBody, 0, true},
		{"IPv6 zone", "GET", "http://[fe80::1%25en0]:80/x", "", http.Header{}, http.NoBody, 0, false},
		{"non-ASCII host", "GET", "http://h/x", "bücher.example", http.Header{}, http.NoBody, 0, false},
		{"invalid host", "GET", "http://h/x", "a b", http.Header{}, http.NoBody, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.target)
			if err != nil {
				t.Fatal(err)
			}
			mk := func() *http.Request {
				b := tc.body
				if m, ok := b.(*memBody); ok {
					b = mem()
					_ = m
				}
				return &http.Request{Method: tc.method, URL: u, Host: tc.host, Header: tc.header, Body: b, ContentLength: tc.length}
			}
			var want bytes.Buffer
			if err := mk().Write(&want); err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			bw := bufio.NewWriter(&got)
			req := mk()
			ok := writeRequestHead(bw, req)
			if ok != tc.wantHandWritten {
				t.Fatalf("hand-written: %v, want %v", ok, tc.wantHandWritten)
			}
			if !ok {
				_ = bw.Flush()
				if got.Len() != 0 {
					t.Fatalf("wrote %q before falling back", got.String())
				}
				return
			}
			if b, ok := req.Body.(*memBody); ok {
				_, _ = b.WriteTo(bw)
			}
			_ = bw.Flush()
			if got.String() != want.String() {
				t.Fatalf("wire differs:\n got %q\nwant %q", got.String(), want.String())
			}
		})
	}
}

// strippedRequestHeader and hopByHop compare by length first for ASCII
// names; they must decide as plain case-folded comparison does, Unicode
// folds included.
func TestHeaderNameChecksMatchPlainFolding(t *testing.T) {
	hop := func(k string) bool {
		return strings.EqualFold(k, "Connection") || strings.EqualFold(k, "Keep-Alive") ||
			strings.EqualFold(k, "Te") || strings.EqualFold(k, "Upgrade")
	}
	stripped := func(k string) bool {
		return hasPrefixFold(k, "Proxy-") || hasPrefixFold(k, "X-Upsproxy-") ||
			strings.EqualFold(k, "Authorization") || strings.EqualFold(k, "AccessLicenseNumber") ||
			strings.EqualFold(k, "Username") || strings.EqualFold(k, "Password") || hop(k)
	}
	names := []string{"Authorization", "authorization", "AUTHORIZATION", "Authorizatio", "Authorizationx",
		"AccessLicenseNumber", "accesslicensenumber", "Username", "PASSWORD", "Passwort", "Connection",
		"keep-alive", "TE", "te", "T", "Upgrade", "upgradE", "Content-Type", "Transid", "Proxy-Authorization",
		"x-upsproxy-carrier", "", "Keep-Alivé", "Authori\u212Aation", "\u212Aeep-Alive", "Te\u212A", "U\u017Fername", "Pa\u017F\u017Fword"}
	for _, k := range names {
		if got, want := strippedRequestHeader(k), stripped(k); got != want {
			t.Errorf("strippedRequestHeader(%q) = %v, plain folding says %v", k, got, want)
		}
		if got, want := hopByHop(k), hop(k); got != want {
			t.Errorf("hopByHop(%q) = %v, plain folding says %v", k, got, want)
		}
	}
}

func TestFramedTwiceFindsBothLengthHeadersInAHeadAndNothingInItsBody(t *testing.T) {
	for _, c := range []struct {
		name, head string
		want       bool
	}{
		{"both", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", true},
		{"both, any case, bare LF", "POST / HTTP/1.1\nhost: a\ntransfer-encoding: chunked\ncontent-LENGTH: 3\n\n", true},
		{"chunked alone", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		{"length alone", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n", false},
		{"a name that only starts alike", "POST / HTTP/1.1\r\nContent-Length-X: 3\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		{"the other one in the body", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nContent-Length: 3\r\n\r\n", false},
		{"in the request line only", "POST /Content-Length: HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		{"empty", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := framedTwice([]byte(c.head)); got != c.want {
				t.Fatalf("framedTwice(%q) = %v, want %v", c.head, got, c.want)
			}
		})
	}
}
