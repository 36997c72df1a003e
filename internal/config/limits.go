package config

import (
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Limits bound what one client or one request can cost the proxy.
type Limits struct {
	// MaxRequestBody is the largest request body accepted; larger ones get
	// UPSPROXY_REQUEST_TOO_LARGE.
	MaxRequestBody int64
	// BodyScanLimit is how much of a body is scanned for a shipper number.
	BodyScanLimit int64
	// MaxConnections caps concurrent client connections.
	MaxConnections    int
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	// UpstreamTimeout bounds one request to UPS.
	UpstreamTimeout time.Duration
	// ShutdownGrace is how long in-flight requests may finish on SIGTERM.
	ShutdownGrace time.Duration
}

// Defaults of the limits block.
const (
	DefaultMaxRequestBody    = 10 << 20
	DefaultBodyScanLimit     = 1 << 20
	DefaultMaxConnections    = 1024
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultUpstreamTimeout   = 60 * time.Second
	DefaultShutdownGrace     = 30 * time.Second
)

type rawLimits struct {
	MaxRequestBody    *string  `hcl:"max_request_body,optional"`
	BodyScanLimit     *string  `hcl:"body_scan_limit,optional"`
	MaxConnections    *int     `hcl:"max_connections,optional"`
	ReadHeaderTimeout *string  `hcl:"read_header_timeout,optional"`
	IdleTimeout       *string  `hcl:"idle_timeout,optional"`
	UpstreamTimeout   *string  `hcl:"upstream_timeout,optional"`
	ShutdownGrace     *string  `hcl:"shutdown_grace,optional"`
	Body              hcl.Body `hcl:",body"`
}

func defaultLimits() Limits {
	return Limits{
		MaxRequestBody:    DefaultMaxRequestBody,
		BodyScanLimit:     DefaultBodyScanLimit,
		MaxConnections:    DefaultMaxConnections,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		UpstreamTimeout:   DefaultUpstreamTimeout,
		ShutdownGrace:     DefaultShutdownGrace,
	}
}

func (r *rawLimits) build(bd *builder) (Limits, hcl.Diagnostics) {
	out := defaultLimits()
	if r == nil {
		return out, nil
	}
	var diags hcl.Diagnostics
	b := bd.block(r.Body, hcl.Range{})
	out.MaxRequestBody = b.size(&diags, "max_request_body", r.MaxRequestBody, DefaultMaxRequestBody)
	out.BodyScanLimit = b.size(&diags, "body_scan_limit", r.BodyScanLimit, DefaultBodyScanLimit)
	if b.given("max_connections", r.MaxConnections != nil) {
		if *r.MaxConnections <= 0 {
			diags = append(diags, b.errorf("max_connections", "Invalid max_connections",
				"max_connections must be positive, not %d.", *r.MaxConnections))
		} else {
			out.MaxConnections = *r.MaxConnections
		}
	}
	out.ReadHeaderTimeout = b.duration(&diags, "read_header_timeout", r.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	out.IdleTimeout = b.duration(&diags, "idle_timeout", r.IdleTimeout, DefaultIdleTimeout)
	out.UpstreamTimeout = b.duration(&diags, "upstream_timeout", r.UpstreamTimeout, DefaultUpstreamTimeout)
	out.ShutdownGrace = b.duration(&diags, "shutdown_grace", r.ShutdownGrace, DefaultShutdownGrace)
	return out, diags
}
