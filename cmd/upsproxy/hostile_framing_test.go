package main

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"testing"

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
		t.Run(fmt.Sprintf("Content-Length and Transfer-Encoding: the chunked body, no Content-Length upstream, tunnel=%v", inTunnel), func(t *testing.T) {
			before := len(rec.requests())
			c := requestConn(t, e, s, inTunnel)
			// Content-Length 1000 would swallow what follows; chunked
			// framing (which RFC 9112 says overrides it) ends the body
			// at "0\r\n\r\n".
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nTransfer-Encoding: chunked\r\n\r\n%s",
				rate, ups.TestHost, chunked)
			br := bufio.NewReader(c)
			if r := readAnswer(t, c, br, http.MethodPost); r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			got := rec.requests()[before:]
			if len(got) != 1 || !got[0].complete || string(got[0].body) != body {
				t.Fatalf("UPS saw %d requests, want one with the chunked body", len(got))
			}
			if v := got[0].header.Values("Content-Length"); len(v) > 0 && v[0] == "1000" {
				t.Errorf("UPS got the client's Content-Length %v", v)
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
