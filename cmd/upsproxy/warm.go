package main

import (
	"net"
	"net/http"
	"slices"

	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/config"
	"github.com/upsproxy/upsproxy/internal/proxy"
)

// tuneUpstream adds warm spare connections, TLS session resumption and
// (when configured) HTTP/2 to the upstream transport of `serve`. Only the
// HTTPS UPS hosts that a configured carrier uses are kept warm.
func tuneUpstream(tr *http.Transport, cfg *config.Config, log *zap.Logger) *proxy.WarmPool {
	return proxy.TuneTransport(tr, proxy.UpstreamTuning{
		WarmHosts: warmHosts(cfg),
		WarmConns: cfg.UPS.WarmConnections,
		HTTP2:     cfg.UPS.HTTP2,
		Logger:    log.Named("upstream"),
	})
}

// warmHosts lists "host:port" of the HTTPS upstreams of the environments
// that active carriers use.
func warmHosts(cfg *config.Config) []string {
	var out []string
	for i := range cfg.Carriers {
		car := &cfg.Carriers[i]
		if car.Inactive {
			continue
		}
		u := cfg.UPS.URL(car.Environment)
		if u == nil || u.Scheme != "https" {
			continue
		}
		port := u.Port()
		if port == "" {
			port = "443"
		}
		addr := net.JoinHostPort(u.Hostname(), port)
		if !slices.Contains(out, addr) {
			out = append(out, addr)
		}
	}
	return out
}
