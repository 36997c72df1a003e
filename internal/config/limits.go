package config

import (
	"math"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/upsproxy/upsproxy/internal/proxy"
)

// Limits bound what one client or one request can cost the proxy.
type Limits struct {
	// MaxRequestBody is the largest request body accepted; larger ones get
	// UPSPROXY_REQUEST_TOO_LARGE.
	MaxRequestBody int64
	// BodyScanLimit is how much of a body is scanned for a shipper number.
	BodyScanLimit int64
	// MaxConnections caps concurrent client connections.
	MaxConnections int
	// ReadHeaderTimeout bounds a request's line and headers, on plain
	// connections and inside CONNECT tunnels.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection or tunnel with no next request.
	IdleTimeout time.Duration
	// TLSHandshakeTimeout bounds a CONNECT tunnel until its TLS handshake ends.
	TLSHandshakeTimeout time.Duration
	// MaxHeaderBytes caps a request's line and headers, everywhere.
	MaxHeaderBytes int
	// RequestBodyTimeout and RequestBodyMinRate pace request bodies: after
	// n bytes, at most RequestBodyTimeout + n/RequestBodyMinRate seconds
	// since the body was first read (see proxy.ConnLimits).
	RequestBodyTimeout time.Duration
	RequestBodyMinRate int64 // bytes per second
	// UpstreamTimeout bounds one request to UPS.
	UpstreamTimeout time.Duration
	// ShutdownGrace is how long in-flight requests may finish on SIGTERM.
	ShutdownGrace time.Duration
}

// defaultLimits is the limits block when nothing is written: every
// default in one place. The request path's own defaults are the proxy's.
func defaultLimits() Limits {
	return Limits{
		MaxRequestBody:      proxy.DefaultMaxRequestBody,
		BodyScanLimit:       proxy.DefaultBodyScanLimit,
		MaxConnections:      1024,
		ReadHeaderTimeout:   proxy.DefaultReadHeaderTimeout,
		IdleTimeout:         proxy.DefaultIdleTimeout,
		TLSHandshakeTimeout: proxy.DefaultTLSHandshakeTimeout,
		MaxHeaderBytes:      proxy.DefaultMaxHeaderBytes,
		RequestBodyTimeout:  proxy.DefaultBodyTimeout,
		RequestBodyMinRate:  proxy.DefaultBodyMinRate,
		UpstreamTimeout:     proxy.DefaultUpstreamTimeout,
		ShutdownGrace:       30 * time.Second,
	}
}

type rawLimits struct {
	MaxRequestBody      *string  `hcl:"max_request_body,optional"`
	BodyScanLimit       *string  `hcl:"body_scan_limit,optional"`
	MaxConnections      *int     `hcl:"max_connections,optional"`
	ReadHeaderTimeout   *string  `hcl:"read_header_timeout,optional"`
	IdleTimeout         *string  `hcl:"idle_timeout,optional"`
	TLSHandshakeTimeout *string  `hcl:"tls_handshake_timeout,optional"`
	MaxHeaderBytes      *string  `hcl:"max_header_bytes,optional"`
	RequestBodyTimeout  *string  `hcl:"request_body_timeout,optional"`
	RequestBodyMinRate  *string  `hcl:"request_body_min_rate,optional"`
	UpstreamTimeout     *string  `hcl:"upstream_timeout,optional"`
	ShutdownGrace       *string  `hcl:"shutdown_grace,optional"`
	Body                hcl.Body `hcl:",body"`
}

func (r *rawLimits) build(bd *builder) (Limits, hcl.Diagnostics) {
	out := defaultLimits()
	if r == nil {
		return out, nil
	}
	var diags hcl.Diagnostics
	b := bd.block(r.Body, hcl.Range{})
	// Each setter falls back to the value already in out: the default.
	out.MaxRequestBody = b.size(&diags, "max_request_body", r.MaxRequestBody, out.MaxRequestBody)
	out.BodyScanLimit = b.size(&diags, "body_scan_limit", r.BodyScanLimit, out.BodyScanLimit)
	if b.given("max_connections", r.MaxConnections != nil) {
		if *r.MaxConnections <= 0 {
			diags = append(diags, b.errorf("max_connections", "Invalid max_connections",
				"max_connections must be positive, not %d.", *r.MaxConnections))
		} else {
			out.MaxConnections = *r.MaxConnections
		}
	}
	out.ReadHeaderTimeout = b.duration(&diags, "read_header_timeout", r.ReadHeaderTimeout, out.ReadHeaderTimeout)
	out.IdleTimeout = b.duration(&diags, "idle_timeout", r.IdleTimeout, out.IdleTimeout)
	out.TLSHandshakeTimeout = b.duration(&diags, "tls_handshake_timeout", r.TLSHandshakeTimeout, out.TLSHandshakeTimeout)
	if n := b.size(&diags, "max_header_bytes", r.MaxHeaderBytes, int64(out.MaxHeaderBytes)); n > math.MaxInt32 {
		diags = append(diags, b.errorf("max_header_bytes", "Invalid size",
			"max_header_bytes must be at most 2GiB, not %q.", *r.MaxHeaderBytes))
	} else {
		out.MaxHeaderBytes = int(n)
	}
	out.RequestBodyTimeout = b.duration(&diags, "request_body_timeout", r.RequestBodyTimeout, out.RequestBodyTimeout)
	out.RequestBodyMinRate = b.size(&diags, "request_body_min_rate", r.RequestBodyMinRate, out.RequestBodyMinRate)
	out.UpstreamTimeout = b.duration(&diags, "upstream_timeout", r.UpstreamTimeout, out.UpstreamTimeout)
	out.ShutdownGrace = b.duration(&diags, "shutdown_grace", r.ShutdownGrace, out.ShutdownGrace)
	return out, diags
}
