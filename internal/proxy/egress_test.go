package proxy

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/upsproxy/upsproxy/internal/testutil/egresstest"
)

// upstreamTLS is a TLS server standing in for UPS that records the headers
// of what it receives; caFile trusts it (and every httptest TLS server,
// which all share one certificate).
func upstreamTLS(t *testing.T) (srv *httptest.Server, caFile string, seen func() []http.Header) {
	t.Helper()
	var mu sync.Mutex
	var headers []http.Header
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		headers = append(headers, r.Header.Clone())
		mu.Unlock()
		_, _ = io.WriteString(w, "ups says hi")
	}))
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, caFile, func() []http.Header {
		mu.Lock()
		defer mu.Unlock()
		return append([]http.Header(nil), headers...)
	}
}

func egressClient(t *testing.T, caFile string, e *EgressProxy) *http.Client {
	t.Helper()
	tr, err := NewTransport(TransportOptions{CAFile: caFile, Egress: e})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func get(t *testing.T, c *http.Client, url string) (string, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestEgress_TunnelsThroughTheProxyWithCredentialsAndVerifiesUPSEndToEnd(t *testing.T) {
	const user, pass = "corp-user", "egress-p@ss:word"
	up, caFile, seen := upstreamTLS(t)
	for _, overTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("egress over TLS %v", overTLS), func(t *testing.T) {
			eg := egresstest.Start(t, egresstest.Options{Username: user, Password: pass, TLS: overTLS})
			c := egressClient(t, caFile, &EgressProxy{URL: eg.URL, Username: user, Password: pass})
			before := len(seen())
			for i := 0; i < 2; i++ {
				if body, err := get(t, c, up.URL+"/api/x"); err != nil || body != "ups says hi" {
					t.Fatalf("request %d: %q, %v", i, body, err)
				}
			}
			target := strings.TrimPrefix(up.URL, "https://")
			connects := eg.ConnectsTo(target)
			// Two requests, one tunnel: the egress proxy costs a dial, not a
			// request.
			if len(connects) != 1 || len(eg.Connects()) != 1 {
				t.Fatalf("egress proxy saw %+v, want one CONNECT to %s", eg.Connects(), target)
			}
			if want := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass)); connects[0].ProxyAuthorization != want {
				t.Errorf("Proxy-Authorization %q, want Basic of the raw credentials", connects[0].ProxyAuthorization)
			}
			got := seen()[before:]
			if len(got) != 2 {
				t.Fatalf("upstream saw %d requests, want 2", len(got))
			}
			for _, h := range got {
				if h.Get("Proxy-Authorization") != "" {
					t.Error("the proxy credentials reached the upstream")
				}
			}
		})
	}
}

func TestEgress_RefusalsAndFailuresAreEgressErrorsWithoutTheCredentials(t *testing.T) {
	const user, pass = "corp-user", "right-password-1"
	up, caFile, seen := upstreamTLS(t)
	target := strings.TrimPrefix(up.URL, "https://")

	t.Run("wrong password", func(t *testing.T) {
		eg := egresstest.Start(t, egresstest.Options{Username: user, Password: pass})
		const wrong = "wrong-password-2"
		_, err := get(t, egressClient(t, caFile, &EgressProxy{URL: eg.URL, Username: user, Password: wrong}), up.URL)
		var ee *EgressError
		if !errors.As(err, &ee) || ee.Status != http.StatusProxyAuthRequired || ee.Target != target {
			t.Fatalf("err = %v, want a 407 EgressError for %s", err, target)
		}
		if !strings.Contains(err.Error(), "check the user and password of ups.egress_proxy") {
			t.Errorf("no hint in %q", err)
		}
		if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), base64.StdEncoding.EncodeToString([]byte(user+":"+wrong))) {
			t.Errorf("the error shows the credentials: %q", err)
		}
	})
	t.Run("credentials missing", func(t *testing.T) {
		eg := egresstest.Start(t, egresstest.Options{Username: user, Password: pass})
		_, err := get(t, egressClient(t, caFile, &EgressProxy{URL: eg.URL}), up.URL)
		if err == nil || !strings.Contains(err.Error(), "answered 407 Proxy Authentication Required (the proxy wants credentials") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a TLS-inspecting proxy fails closed", func(t *testing.T) {
		eg := egresstest.Start(t, egresstest.Options{MITM: true})
		before := len(seen())
		_, err := get(t, egressClient(t, caFile, &EgressProxy{URL: eg.URL}), up.URL)
		var ue x509.UnknownAuthorityError
		if !errors.As(err, &ue) {
			t.Fatalf("err = %v, want an unknown-authority certificate error", err)
		}
		if !strings.Contains(err.Error(), "egress proxy "+eg.URL.Host+": CONNECT "+target+": TLS with 127.0.0.1 inside the tunnel") ||
			!strings.Contains(err.Error(), "does the egress proxy inspect TLS?") {
			t.Errorf("the error does not say the verification failed inside the tunnel: %v", err)
		}
		if len(eg.ConnectsTo(target)) != 1 || eg.Intercepted() != 0 || len(seen()) != before {
			t.Fatalf("connects %+v, intercepted %d, upstream saw %d new: the request must not leave", eg.Connects(), eg.Intercepted(), len(seen())-before)
		}
	})
	t.Run("proxy down", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		_, err = get(t, egressClient(t, caFile, &EgressProxy{URL: mustURL(t, "http://"+addr), Username: user, Password: pass}), up.URL)
		var ee *EgressError
		if !errors.As(err, &ee) || ee.Proxy != addr || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("err = %v, want an EgressError naming %s", err, addr)
		}
	})
	t.Run("a proxy that never answers ends with the request", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				accepted <- c
			}
		}()
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			c := <-accepted
			defer c.Close()
			cancel() // the request gives up while the proxy is silent
			_, _ = io.Copy(io.Discard, c)
		}()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, up.URL, nil)
		_, err = egressClient(t, caFile, &EgressProxy{URL: mustURL(t, "http://"+ln.Addr().String())}).Do(req)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

func TestEgress_InvalidURLIsRefusedAndTheEnvironmentIsIgnored(t *testing.T) {
	for _, u := range []string{"socks5://127.0.0.1:1080", "http://127.0.0.1", "http://:3128"} {
		if _, err := NewTransport(TransportOptions{Egress: &EgressProxy{URL: mustURL(t, u), Password: "pw-never-shown"}}); err == nil || strings.Contains(err.Error(), "pw-never-shown") {
			t.Errorf("%s: err = %v", u, err)
		}
	}
	// HTTPS_PROXY pointing nowhere changes nothing, with or without egress.
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	up, caFile, _ := upstreamTLS(t)
	eg := egresstest.Start(t, egresstest.Options{})
	for _, e := range []*EgressProxy{nil, {URL: eg.URL}} {
		if body, err := get(t, egressClient(t, caFile, e), up.URL); err != nil || body != "ups says hi" {
			t.Errorf("egress %v: %q, %v", e, body, err)
		}
	}
	if n := len(eg.Connects()); n != 1 {
		t.Errorf("egress proxy saw %d CONNECTs, want 1 (the request configured to use it)", n)
	}
	if s := fmt.Sprintf("%v %+v %#v %s", EgressProxy{URL: eg.URL, Username: "u", Password: "pw-never-shown"}, EgressProxy{URL: eg.URL, Password: "pw-never-shown"},
		EgressProxy{URL: eg.URL, Password: "pw-never-shown"}, EgressProxy{URL: eg.URL, Password: "pw-never-shown"}); strings.Contains(s, "pw-never-shown") {
		t.Errorf("printing an EgressProxy shows the password: %s", s)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
