package proxy_test

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/upsproxy/upsproxy/internal/proxy"
	"github.com/upsproxy/upsproxy/internal/ups"
)

// clientModes are the three ways a client reaches the proxy.
var clientModes = []struct {
	name   string
	client func(e *testEnv, t *testing.T) (*http.Client, string)
}{
	{"base-URL mode", func(e *testEnv, t *testing.T) (*http.Client, string) { return e.originClient(t) }},
	{"HTTP forward proxy", func(e *testEnv, t *testing.T) (*http.Client, string) { return e.forwardClient(t) }},
	{"CONNECT tunnel with MITM", func(e *testEnv, t *testing.T) (*http.Client, string) {
		return e.mitmClient(t, ups.ProductionHost)
	}},
}

func TestAFastUPSAnsweringAStreamedRequestBodyNeverGetsItsResponseCutOff(t *testing.T) {
	// Ship bodies are streamed to UPS. A UPS that answers the moment it has
	// read the last byte can do so before the proxy's transport has seen
	// the body's EOF; a proxy that lets net/http close the request body
	// when the response starts has the transport fail, drop the upstream
	// connection and cut the label response off (and, chunked, the client
	// took it for complete). Over loopback this hit about one request in 40.
	const size = 2 << 20
	label := []byte("^XA^FO50,50^FDUPS 1Z999AA10123456784^FS^XZ\n")
	labels := bytes.Repeat(label, size/len(label)+1)[:size]
	for _, m := range clientModes {
		t.Run(m.name, func(t *testing.T) {
			e := newTestEnv(t, nil)
			e.prod.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/octet-stream")
				for b := labels; len(b) > 0; b = b[min(len(b), 64<<10):] {
					if _, err := w.Write(b[:min(len(b), 64<<10)]); err != nil {
						return
					}
				}
			})
			client, base := m.client(e, t)
			for i := range 80 {
				resp, err := client.Post(base+"/api/shipments/v2409/ship", "application/json", strings.NewReader(`{"ShipmentRequest":{}}`))
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || n != size {
					t.Fatalf("request %d: the client got %d of %d bytes (%v)", i, n, size, err)
				}
			}
		})
	}
}

func TestAUPSResponseBodyThatBreaksOffReachesTheClientAsAnErrorNotAsAShortBody(t *testing.T) {
	framings := []struct {
		name   string
		length int // Content-Length announced; 0: none (chunked)
	}{
		{"chunked", 0},
		{"with a Content-Length", 4096},
	}
	for _, f := range framings {
		for _, m := range clientModes {
			t.Run(f.name+", "+m.name, func(t *testing.T) {
				e := newTestEnv(t, nil)
				e.prod.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if f.length > 0 {
						w.Header().Set("Content-Length", strconv.Itoa(f.length))
					}
					_, _ = io.WriteString(w, strings.Repeat("label;", 100))
					w.(http.Flusher).Flush()
					// UPS's connection dies midway.
					conn, _, err := http.NewResponseController(w).Hijack()
					if err == nil {
						conn.Close()
					}
				})
				client, base := m.client(e, t)
				resp, err := client.Post(base+"/api/shipments/v2409/ship", "application/json", strings.NewReader(`{}`))
				if err == nil {
					var got []byte
					got, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil {
						t.Fatalf("the client read %d bytes and a normal end: a cut-off body looks complete", len(got))
					}
					if !strings.HasPrefix(string(got), "label;") {
						t.Errorf("the start of the body did not arrive: %q", got)
					}
				}
				// Else the response had not left the proxy's buffer yet: the
				// client sees the failure as the connection closing.
				lines := e.logs.FilterMessage("request").All()
				if len(lines) != 1 {
					t.Fatalf("%d access lines, want 1", len(lines))
				}
				if msg, _ := lines[0].ContextMap()["error"].(string); !strings.Contains(msg, "read UPS response body") {
					t.Errorf("the access line does not say the body broke off: %v", lines[0].ContextMap())
				}
			})
		}
	}
}

func TestARefusalThatLeavesTheRequestBodyUnreadClosesTheConnection(t *testing.T) {
	e := newTestEnv(t, func(o *proxy.Options) { o.Config.MaxRequestBody = 16 })
	for _, m := range clientModes[:2] {
		t.Run(m.name, func(t *testing.T) {
			client, base := m.client(e, t)
			resp, err := client.Post(base+"/api/shipments/v2409/ship", "application/json", strings.NewReader(strings.Repeat("x", 1000)))
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, resp)
			if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get(proxy.ErrorHeader) != proxy.CodeRequestTooLarge {
				t.Fatalf("got %d %q, want 413 %s", resp.StatusCode, resp.Header.Get(proxy.ErrorHeader), proxy.CodeRequestTooLarge)
			}
			if !resp.Close {
				t.Error("the connection stays open with the refused body still unread on it")
			}
		})
	}
}

func TestUPSTrailersReachTheClient(t *testing.T) {
	e := newTestEnv(t, nil)
	e.prod.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Label-Checksum")
		_, _ = io.WriteString(w, "labels")
		w.Header().Set("X-Label-Checksum", "abc123")
	})
	for _, m := range clientModes[:2] {
		t.Run(m.name, func(t *testing.T) {
			client, base := m.client(e, t)
			resp, err := client.Post(base+"/api/shipments/v2409/ship", "application/json", strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			if body := readBody(t, resp); body != "labels" {
				t.Errorf("body %q", body)
			}
			if got := resp.Trailer.Get("X-Label-Checksum"); got != "abc123" {
				t.Errorf("trailer X-Label-Checksum = %q, want abc123", got)
			}
		})
	}
}
