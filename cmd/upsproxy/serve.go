package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/config"
	"github.com/upsproxy/upsproxy/internal/proxy"
	"github.com/upsproxy/upsproxy/internal/tokens"
	"github.com/upsproxy/upsproxy/internal/ups"
)

func (c *cli) serveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the proxy until SIGINT/SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.serve(cmd.Context())
		},
	}
}

func (c *cli) serve(ctx context.Context) error {
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	log, _, err := newLogger(cfg.Log, c.errOut)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	store, err := c.tokenStore(cfg, log)
	if err != nil {
		return err
	}
	tr, err := upstreamTransport(cfg)
	if err != nil {
		return err
	}
	oauthHTTP := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	host, _ := os.Hostname()
	carriers := make([]tokens.Carrier, 0, len(cfg.Carriers))
	pcarriers := make([]proxy.Carrier, 0, len(cfg.Carriers))
	for i := range cfg.Carriers {
		car := &cfg.Carriers[i]
		oc, err := oauthClient(cfg, car, car.Environment, oauthHTTP)
		if err != nil {
			return err
		}
		carriers = append(carriers, tokens.Carrier{
			Name: car.Name, Environment: car.Environment, Grant: car.Grant, Inactive: car.Inactive, OAuth: oc,
		})
		pcarriers = append(pcarriers, proxy.Carrier{
			Name: car.Name, Environment: car.Environment, Inactive: car.Inactive, Default: car.Default,
		})
	}
	broker, err := tokens.New(tokens.Options{
		Store: store, Carriers: carriers, Logger: log.Named("tokens"),
		Holder: fmt.Sprintf("%s/%d", host, os.Getpid()),
	})
	if err != nil {
		return err
	}
	defer broker.Close()

	var ca *proxy.CA
	if cfg.MITM != nil {
		if ca, err = proxy.LoadCA(cfg.MITM.CACert, cfg.MITM.CAKey, 1024); err != nil {
			return err
		}
	}
	px, err := proxy.New(proxy.Options{
		Logger:         log.Named("proxy"),
		Tokens:         broker,
		Carriers:       pcarriers,
		Upstreams:      upstreams(cfg),
		Transport:      tr,
		CA:             ca,
		TransactionSrc: cfg.TransactionSrc,
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("proxy listener: %w", err)
	}
	srv := &http.Server{
		Handler:           px,
		ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout,
		IdleTimeout:       cfg.Limits.IdleTimeout,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}

	broker.Preload(ctx)
	go broker.RunReminders(ctx, cfg.Reminders.WarnBefore, cfg.Reminders.Interval)
	go broker.RunRefresher(ctx, time.Second)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("proxy listening", zap.String("addr", ln.Addr().String()), zap.Int("carriers", len(cfg.Carriers)))

	select {
	case err := <-errc:
		return fmt.Errorf("proxy server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", zap.Duration("grace", cfg.Limits.ShutdownGrace))
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Limits.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("in-flight requests cut off at the end of the grace period", zap.Error(err))
	}
	if err := broker.Flush(sctx); err != nil {
		log.Error("pending token writes could not be flushed", zap.Error(err))
	}
	log.Info("stopped")
	return nil
}

func upstreams(cfg *config.Config) map[ups.Environment]*url.URL {
	return map[ups.Environment]*url.URL{ups.Test: cfg.UPS.TestURL, ups.Production: cfg.UPS.ProductionURL}
}
