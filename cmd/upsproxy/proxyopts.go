package main

import (
	"github.com/upsproxy/upsproxy/internal/config"
	"github.com/upsproxy/upsproxy/internal/proxy"
)

// proxyConfig turns a loaded configuration into the proxy's reloadable
// Config (serve hands it to proxy.New, and to Proxy.Update on SIGHUP).
func proxyConfig(cfg *config.Config) proxy.Config {
	out := proxy.Config{
		Carriers:       make([]proxy.Carrier, 0, len(cfg.Carriers)),
		Upstreams:      upstreams(cfg),
		AllowCIDRs:     cfg.AllowCIDRs,
		TransactionSrc: cfg.TransactionSrc,
		MaxRequestBody: cfg.Limits.MaxRequestBody,
		BodyScanLimit:  cfg.Limits.BodyScanLimit,
	}
	for i := range cfg.Carriers {
		car := &cfg.Carriers[i]
		pc := proxy.Carrier{
			Name:              car.Name,
			Environment:       car.Environment,
			Inactive:          car.Inactive,
			Default:           car.Default,
			FillShipperNumber: car.FillShipperNumber,
			ClientIDs:         car.ClientIDs,
			RedirectURI:       car.RedirectURI,
		}
		for _, a := range car.ShipperAccounts {
			pc.ShipperNumbers = append(pc.ShipperNumbers, a.Number)
		}
		if a, ok := car.DefaultShipperAccount(); ok {
			pc.DefaultShipper = a.Number
		}
		out.Carriers = append(out.Carriers, pc)
	}
	for _, c := range cfg.Clients {
		out.Clients = append(out.Clients, proxy.Client{Name: c.Name, PasswordHash: c.PasswordHash, Carrier: c.Carrier,
			RedirectURIs: c.RedirectURIs})
	}
	for _, r := range cfg.Rewrites {
		out.Rewrites = append(out.Rewrites, proxy.Rewrite{Name: r.Name, Match: r.Match, Replace: r.Replace})
	}
	return out
}

// connLimits turns the limits block into the proxy's connection limits
// (fixed at start-up).
func connLimits(cfg *config.Config) proxy.ConnLimits {
	l := cfg.Limits
	return proxy.ConnLimits{
		ReadHeaderTimeout:   l.ReadHeaderTimeout,
		IdleTimeout:         l.IdleTimeout,
		TLSHandshakeTimeout: l.TLSHandshakeTimeout,
		MaxHeaderBytes:      l.MaxHeaderBytes,
		BodyTimeout:         l.RequestBodyTimeout,
		BodyMinRate:         l.RequestBodyMinRate,
	}
}
