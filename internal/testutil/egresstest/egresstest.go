// Package egresstest runs a real forward proxy (goproxy, as a plain CONNECT
// proxy) standing in for a corporate egress proxy such as squid. It records
// every CONNECT it receives, can require Basic proxy credentials (answering
// 407 otherwise), and can intercept tunnels with goproxy's own, untrusted
// CA, as a TLS-inspecting proxy would.
package egresstest

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/elazarl/goproxy"
)

// Options configure Start.
type Options struct {
	// Username and Password, when Username is set, are required as
	// Proxy-Authorization Basic; anything else is answered 407.
	Username, Password string
	// MITM intercepts every tunnel with a certificate of goproxy's public
	// built-in CA, which nobody trusts.
	MITM bool
	// TLS serves the proxy itself over TLS (an https:// egress proxy),
	// with httptest's certificate.
	TLS bool
}

// Connect is one CONNECT request as the proxy received it.
type Connect struct {
	// Target is the request's authority, host:port.
	Target string
	// ProxyAuthorization is the header as sent ("" if absent).
	ProxyAuthorization string
	// Allowed says whether the proxy opened the tunnel.
	Allowed bool
}

// Proxy is a running egress proxy.
type Proxy struct {
	// URL is http://127.0.0.1:PORT (https:// with Options.TLS), without
	// credentials.
	URL *url.URL
	// Server is the underlying test server (its Certificate() for TLS).
	Server *httptest.Server

	mu          sync.Mutex
	connects    []Connect
	intercepted int
}

// Start runs an egress proxy until the test ends.
func Start(t testing.TB, o Options) *Proxy {
	t.Helper()
	p := &Proxy{}
	want := ""
	if o.Username != "" {
		want = "Basic " + base64.StdEncoding.EncodeToString([]byte(o.Username+":"+o.Password))
	}
	gp := goproxy.NewProxyHttpServer()
	gp.Logger = discard{}
	// Dial targets directly, whatever HTTPS_PROXY the test process has.
	gp.ConnectDial = nil
	gp.Tr = &http.Transport{Proxy: nil}
	gp.OnRequest().HandleConnectFunc(func(host string, ctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
		got := ctx.Req.Header.Get("Proxy-Authorization")
		ok := want == "" || got == want
		p.mu.Lock()
		p.connects = append(p.connects, Connect{Target: host, ProxyAuthorization: got, Allowed: ok})
		p.mu.Unlock()
		if !ok {
			ctx.Resp = &http.Response{
				StatusCode: http.StatusProxyAuthRequired, Status: "407 Proxy Authentication Required",
				Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Header:        http.Header{"Proxy-Authenticate": {`Basic realm="corp"`}},
				Body:          http.NoBody,
				ContentLength: 0,
				Request:       ctx.Req,
			}
			return goproxy.RejectConnect, host
		}
		if o.MITM {
			return goproxy.MitmConnect, host
		}
		return goproxy.OkConnect, host
	})
	gp.OnRequest().DoFunc(func(r *http.Request, _ *goproxy.ProxyCtx) (*http.Request, *http.Response) {
		// Only reached inside an intercepted tunnel (or by a plain-HTTP
		// proxy request, which upsproxy never sends).
		p.mu.Lock()
		p.intercepted++
		p.mu.Unlock()
		return r, nil
	})
	if o.TLS {
		p.Server = httptest.NewTLSServer(gp)
	} else {
		p.Server = httptest.NewServer(gp)
	}
	t.Cleanup(p.Server.Close)
	p.URL, _ = url.Parse(p.Server.URL)
	return p
}

// URLWith is the proxy's URL with user info, as egress_proxy takes it.
func (p *Proxy) URLWith(user, password string) string {
	u := *p.URL
	u.User = url.UserPassword(user, password)
	return u.String()
}

// Connects returns the CONNECT requests received so far.
func (p *Proxy) Connects() []Connect {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Connect(nil), p.connects...)
}

// Intercepted counts the requests the proxy read inside intercepted
// tunnels: non-zero means a client accepted the proxy's certificate.
func (p *Proxy) Intercepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.intercepted
}

// ConnectsTo returns the allowed CONNECTs to target.
func (p *Proxy) ConnectsTo(target string) []Connect {
	var out []Connect
	for _, c := range p.Connects() {
		if c.Allowed && strings.EqualFold(c.Target, target) {
			out = append(out, c)
		}
	}
	return out
}

// discard is goproxy's logger in tests.
type discard struct{}

func (discard) Printf(string, ...any) {}
