package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// Requests a legacy client may send on one keep-alive connection, each
// answered by the next of upsAnswers: heads the hand-written readers take
// (odd case, repeated fields, HTTP/1.0 keep-alive, queries, absolute
// form) and heads they leave to net/http.
var wireRequests = []string{
	"POST /api/rating/v2409/Rate HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
	"POST /api/shipments/v2409/ship?additionaladdressvalidation=city HTTP/1.1\r\nhost: proxy\r\ncontent-type: application/json\r\nX-Custom: a\r\nx-custom:  b \t\r\nAccept: */*\r\ncontent-length: 2\r\n\r\n{}",
	"GET /api/track/v1/details/1Z999AA10123456784?locale=en_US HTTP/1.0\r\nConnection: keep-alive\r\nUser-Agent: LegacyShip/4.2\r\n\r\n",
	"POST http://onlinetools.ups.com/api/rating/v2409/Rate HTTP/1.1\r\nHost: onlinetools.ups.com\r\nProxy-Connection: keep-alive\r\nContent-Length: 2\r\n\r\n{}",
	"POST http://ONLINETOOLS.ups.com:80/api/rating/v2409/Rate? HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
	"GET /api/track/v1/details/1Z%39 HTTP/1.1\r\nHost: proxy\r\nPragma: no-cache\r\n\r\n",
	"POST /api/rating/v2409/Rate HTTP/1.1\r\nHost: proxy\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
	"GET /api/track/v1/details/x HTTP/1.1\r\nHost: proxy\r\nX-Caf\xc3\xa9: no\r\nX-Value: caf\xc3\xa9\r\n\r\n",
	"POST /api/rating/v2409/Rate HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
}

// upsAnswers are UPS's answers, in turn: taken by readResponseHead or
// left to net/http.
var upsAnswers = []string{
	"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nDate: Mon, 30 Nov 2026 07:00:00 GMT\r\n\r\n{}",
	"HTTP/1.1 200 \r\ncontent-type: application/json\r\nx-ups-trans: a\r\nX-UPS-Trans: b\r\nContent-Length: 4\r\n\r\n[{}]",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
}

// TestHandReadHeadsChangeNothingOnTheWire sends the same requests through
// the serve loop and the upstream client twice, with the hand-written head
// readers and with net/http's alone: UPS must receive the same bytes and
// the client the same answers.
func TestHandReadHeadsChangeNothingOnTheWire(t *testing.T) {
	defer func() { readHeadsByHand = true }()
	readHeadsByHand = true
	upsGot, clientGot := wireRun(t)
	readHeadsByHand = false
	upsWant, clientWant := wireRun(t)
	if upsGot != upsWant {
		t.Errorf("UPS received, by hand:\n%s\nwith net/http's parsers:\n%s", upsGot, upsWant)
	}
	if clientGot != clientWant {
		t.Errorf("the client received, by hand:\n%s\nwith net/http's parsers:\n%s", clientGot, clientWant)
	}
	// Both runs must have carried calls to UPS, not only refusals.
	if n := strings.Count(upsGot, "Authorization: Bearer static-access-token"); n < 6 {
		t.Fatalf("UPS received %d calls with the bearer:\n%s", n, upsGot)
	}
}

var (
	transIDField = regexp.MustCompile(`(?i)(transid: )[0-9a-f]{32}`)
	upsHostField = regexp.MustCompile(`(Host: 127\.0\.0\.1:)[0-9]+`)
	dateField    = regexp.MustCompile(`(?m)^Date: .*\r$`)
)

// wireRun sends wireRequests through a served proxy to a recording UPS
// and returns what UPS read and what the client read, raw (random
// transaction IDs and the proxy's own Date masked).
func wireRun(t *testing.T) (upsRead, clientRead string) {
	t.Helper()
	var mu sync.Mutex
	var ups bytes.Buffer
	answer := 0
	upsURL := rawUPS(t, func(_ int, c net.Conn) {
		br := bufio.NewReader(c)
		for {
			raw, ok := readRawRequest(br)
			if !ok {
				if len(raw) > 0 {
					t.Errorf("UPS got a cut-off request: %q", raw)
				}
				return
			}
			mu.Lock()
			ups.Write(raw)
			a := upsAnswers[answer%len(upsAnswers)]
			answer++
			mu.Unlock()
			if _, err := io.WriteString(c, a); err != nil || strings.Contains(a, "Connection: close") {
				return
			}
		}
	})
	upstream, err := url.Parse(upsURL)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTransport(TransportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := oneCarrierProxy(t, zap.NewNop(), upstream, tr)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.Serve(ln) }()
	defer func() { _ = ln.Close(); tr.CloseIdleConnections() }()

	var client bytes.Buffer
	var conn net.Conn
	var br *bufio.Reader
	for i, req := range wireRequests {
		if conn == nil {
			if conn, err = net.Dial("tcp", ln.Addr().String()); err != nil {
				t.Fatal(err)
			}
			br = bufio.NewReader(conn)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: strings.Fields(req)[0]})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("request %d: body: %v", i, err)
		}
		var head bytes.Buffer
		resp.Body = nil
		resp.ContentLength = -1
		_ = resp.Header.Write(&head)
		fmtLine := "-- " + strconv.Itoa(i) + ": " + resp.Proto + " " + resp.Status + " close=" + strconv.FormatBool(resp.Close) + "\r\n"
		client.WriteString(fmtLine + head.String() + "\r\n" + string(body) + "\r\n")
		if resp.Close {
			_ = conn.Close()
			conn = nil
		}
	}
	if conn != nil {
		_ = conn.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	return upsHostField.ReplaceAllString(transIDField.ReplaceAllString(ups.String(), "${1}<id>"), "${1}<port>"),
		dateField.ReplaceAllString(transIDField.ReplaceAllString(client.String(), "${1}<id>"), "Date: <now>\r")
}

// readRawRequest reads one request as it came (head, and a body framed
// by Content-Length or chunked); ok false at the connection's end.
func readRawRequest(br *bufio.Reader) (raw []byte, ok bool) {
	var b bytes.Buffer
	length, chunked := 0, false
	for {
		line, err := br.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.Bytes(), false
		}
		if line == "\r\n" {
			break
		}
		k, v, _ := strings.Cut(line, ":")
		switch strings.ToLower(k) {
		case "content-length":
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		case "transfer-encoding":
			chunked = true
		}
	}
	if chunked {
		for {
			line, err := br.ReadString('\n')
			b.WriteString(line)
			if err != nil {
				return b.Bytes(), false
			}
			n, _ := strconv.ParseInt(strings.TrimSpace(line), 16, 64)
			chunk := make([]byte, n+2)
			if _, err := io.ReadFull(br, chunk); err != nil {
				return b.Bytes(), false
			}
			b.Write(chunk)
			if n == 0 {
				return b.Bytes(), true
			}
		}
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(br, body); err != nil {
		return b.Bytes(), false
	}
	b.Write(body)
	return b.Bytes(), true
}
