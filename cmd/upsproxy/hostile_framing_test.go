package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// Request framing a smuggler or a broken client sends, outside and inside
// a CONNECT tunnel: UPS must get each request exactly as the proxy framed
// it, or nothing.
func TestHostile_AmbiguousFramingNeverReachesUPSAmbiguously(t *testing.T) {
	e, s, rec := connHostileEnv(t, nil, "")
	body := rateBody(t)
	chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)
	const rate = "/api/rating/v2409/Rate"
	for _, inTunnel := range []bool{false, true} {
		for _, split := range []bool{false, true} {
			t.Run(fmt.Sprintf("Content-Length and Transfer-Encoding: the chunked body, no Content-Length upstream, then the connection closes, tunnel=%v, head in two writes=%v", inTunnel, split), func(t *testing.T) {
				before := len(rec.requests())
				c := requestConn(t, e, s, inTunnel)
				// Content-Length 1000 would swallow what follows; chunked
				// framing (which RFC 9112 says overrides it) ends the body
				// at "0\r\n\r\n". RFC 9112 6.3: the connection must then
				// close after the answer, so that what follows is never
				// read as a request here while a front end framed it by
				// the Content-Length.
				head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\ncontent-length: 1000\r\nTransfer-Encoding: chunked\r\n\r\n", rate, ups.TestHost)
				next := fmt.Sprintf("GET /api/track/v1/details/1Z12345E0205271688 HTTP/1.1\r\nHost: %s\r\n\r\n", ups.TestHost)
				if split {
					// The head arrives in two reads, the second 3 KB of
					// other headers before the two lengths: the proxy
					// cannot look at it whole in its buffer, and closes
					// after a chunked request's answer all the same.
					cut := strings.Index(head, "Content-Type")
					fmt.Fprint(c, head[:cut])
					time.Sleep(50 * time.Millisecond)
					head = strings.Repeat("X-Padding: "+strings.Repeat("p", 90)+"\r\n", 30) + head[cut:]
				}
				fmt.Fprint(c, head+chunked+next)
				br := bufio.NewReader(c)
				if r := readAnswer(t, c, br, http.MethodPost); r.status != http.StatusOK {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				if _, err := br.ReadByte(); err != io.EOF {
					t.Fatalf("after the answer the connection gave %v, want it closed (EOF)", err)
				}
				got := rec.requests()[before:]
				if len(got) != 1 || !got[0].complete || string(got[0].body) != body {
					t.Fatalf("UPS saw %d requests, want one with the chunked body (and not the request that followed)", len(got))
				}
				if v := got[0].header.Values("Content-Length"); len(v) > 0 && v[0] == "1000" {
					t.Errorf("UPS got the client's Content-Length %v", v)
				}
			})
		}
		t.Run(fmt.Sprintf("Transfer-Encoding: chunked alone keeps the connection, tunnel=%v", inTunnel), func(t *testing.T) {
			before := len(rec.requests())
			c := requestConn(t, e, s, inTunnel)
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n%s", rate, ups.TestHost, chunked)
			fmt.Fprintf(c, "GET /api/track/v1/details/1Z12345E0205271688 HTTP/1.1\r\nHost: %s\r\n\r\n", ups.TestHost)
			br := bufio.NewReader(c)
			for _, m := range []string{http.MethodPost, http.MethodGet} {
				if r := readAnswer(t, c, br, m); r.status != http.StatusOK {
					t.Fatalf("%s: status %d: %s", m, r.status, r.body)
				}
			}
			if n := len(rec.requests()) - before; n != 2 {
				t.Fatalf("UPS saw %d requests, want 2", n)
			}
		})
		t.Run(fmt.Sprintf("Transfer-Encoding: chunked, identity is refused, tunnel=%v", inTunnel), func(t *testing.T) {
			before := len(rec.requests())
			c := requestConn(t, e, s, inTunnel)
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked, identity\r\n\r\n%s",
				rate, ups.TestHost, chunked)
			br := bufio.NewReader(c)
			if r := readAnswer(t, c, br, http.MethodPost); r.status < 400 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if n := len(rec.requests()) - before; n != 0 {
				t.Fatalf("UPS saw %d requests", n)
			}
		})
		t.Run(fmt.Sprintf("two pipelined requests in one write are answered in order, tunnel=%v", inTunnel), func(t *testing.T) {
			before := len(rec.requests())
			c := requestConn(t, e, s, inTunnel)
			one := fmt.Sprintf("GET /api/track/v1/details/1Z12345E0205271688 HTTP/1.1\r\nHost: %s\r\n\r\n", ups.TestHost)
			two := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", rate, ups.TestHost, len(body), body)
			if _, err := c.Write([]byte(one + two)); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			for i, m := range []string{http.MethodGet, http.MethodPost} {
				if r := readAnswer(t, c, br, m); r.status != http.StatusOK {
					t.Fatalf("answer %d: status %d: %s", i, r.status, r.body)
				}
			}
			got := rec.requests()[before:]
			if len(got) != 2 || got[0].method != http.MethodGet || got[1].method != http.MethodPost || string(got[1].body) != body {
				t.Fatalf("UPS saw %d requests, want the GET, then the POST with its body", len(got))
			}
		})
		t.Run(fmt.Sprintf("Expect: 100-continue refused before the body: no 100, nothing upstream, tunnel=%v", inTunnel), func(t *testing.T) {
			before := len(rec.requests())
			c := requestConn(t, e, s, inTunnel)
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nX-Upsproxy-Carrier: nosuch\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n",
				rate, ups.TestHost, len(body))
			br := bufio.NewReader(c)
			r := readAnswer(t, c, br, http.MethodPost)
			if r.status == http.StatusContinue {
				t.Fatal("100 Continue for a request that is refused")
			}
			pxWantError(t, r, http.StatusBadRequest, "UPSPROXY_NO_CARRIER")
			if n := len(rec.requests()) - before; n != 0 {
				t.Fatalf("UPS saw %d requests", n)
			}
		})
		t.Run(fmt.Sprintf("an obs-folded header reaches UPS unfolded or not at all, tunnel=%v", inTunnel), func(t *testing.T) {
			before := len(rec.requests())
			c := requestConn(t, e, s, inTunnel)
			fmt.Fprintf(c, "GET /api/track/v1/details/1Z12345E0205271688 HTTP/1.1\r\nHost: %s\r\nX-Folded: first\r\n second\r\n\r\n", ups.TestHost)
			br := bufio.NewReader(c)
			r := readAnswer(t, c, br, http.MethodGet)
			got := rec.requests()[before:]
			switch {
			case r.status >= 400 && len(got) == 0: // refused
			case r.status == http.StatusOK && len(got) == 1:
				if v := got[0].header.Get("X-Folded"); strings.ContainsAny(v, "\r\n") {
					t.Errorf("UPS got a folded header %q", v)
				}
			default:
				t.Fatalf("status %d, UPS saw %d requests", r.status, len(got))
			}
		})
	}
}
