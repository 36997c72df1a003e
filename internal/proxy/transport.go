package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// TransportOptions tunes NewTransport. Zero values pick the defaults.
type TransportOptions struct {
	// CAFile holds extra PEM root certificates trusted on top of the
	// system pool (tests, or a TLS-terminating simulator).
	CAFile string
	// ResponseHeaderTimeout bounds the wait for UPS's response headers
	// once the request is sent; default 60s (Ship can take a while).
	// Exceeding it is answered 504 UPSPROXY_UPSTREAM_UNAVAILABLE.
	ResponseHeaderTimeout time.Duration
	// MaxIdleConnsPerHost is the keep-alive pool size per UPS host;
	// default 64.
	MaxIdleConnsPerHost int
	// Egress, when set, tunnels every connection through this forward
	// proxy with CONNECT; nil dials UPS directly.
	Egress *EgressProxy
}

// DefaultUpstreamTimeout is TransportOptions.ResponseHeaderTimeout's
// default (and the HCL's limits.upstream_timeout).
const DefaultUpstreamTimeout = 60 * time.Second

// Transport defaults.
const (
	defaultMaxIdleConnsPerHost = 64
	dialTimeout                = 10 * time.Second
	tlsHandshakeTimeout        = 10 * time.Second
	idleConnTimeout            = 90 * time.Second
)

// NewTransport builds the upstream transport: TLS always verified (TLS 1.2
// or later), pooled keep-alive connections, bounded dial and handshake
// times, no proxy taken from the environment, and the egress proxy, if
// any, tunnelled through at dial time.
func NewTransport(o TransportOptions) (*http.Transport, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			// No system pool (minimal containers): trust the file alone.
			pool = x509.NewCertPool()
		}
		pemBytes, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read upstream CA file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("upstream CA file %s: no PEM certificate found", o.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	rht := o.ResponseHeaderTimeout
	if rht <= 0 {
		rht = DefaultUpstreamTimeout
	}
	perHost := o.MaxIdleConnsPerHost
	if perHost <= 0 {
		perHost = defaultMaxIdleConnsPerHost
	}
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	dial := dialer.DialContext
	var dialTLS func(ctx context.Context, network, addr string) (net.Conn, error)
	if o.Egress != nil {
		ed, err := newEgressDialer(o.Egress, tlsConf, dialer)
		if err != nil {
			return nil, err
		}
		dial = ed.DialContext
		dialTLS = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return ed.DialTLSContext(ctx, network, addr, tlsConf)
		}
	}
	return &http.Transport{
		// Never $HTTP(S)_PROXY: the proxy itself usually runs with those
		// set for its clients, and would loop into itself. An egress proxy
		// is explicit configuration, applied at dial time.
		Proxy:                 nil,
		DialContext:           dial,
		DialTLSContext:        dialTLS,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ResponseHeaderTimeout: rht,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          4 * perHost,
		MaxIdleConnsPerHost:   perHost,
		IdleConnTimeout:       idleConnTimeout,
		// The client's own Accept-Encoding goes to UPS and a compressed
		// body streams back untouched; without this the transport would
		// ask for gzip itself and decode it, changing what the client gets.
		DisableCompression: true,
		// HTTP/1.1 keep-alive to UPS, like the client side (a custom
		// TLSClientConfig already turns HTTP/2 off unless forced).
		ForceAttemptHTTP2: false,
	}, nil
}
