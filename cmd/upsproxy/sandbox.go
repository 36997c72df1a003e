package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/config"
	"github.com/upsproxy/upsproxy/internal/upssim"
)

func (c *cli) sandboxCmd() *cobra.Command {
	var (
		listen     string
		clients    []string
		accessTTL  time.Duration
		refreshTTL time.Duration
	)
	cmd := &cobra.Command{
		Use:   "sandbox --listen ADDR --client ID:SECRET",
		Short: "Run the UPS simulator (OAuth and common APIs) for tests and demos",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reg := make(map[string]string, len(clients))
			for _, s := range clients {
				id, secret, ok := strings.Cut(s, ":")
				if !ok || id == "" {
					return fmt.Errorf("--client %q: want ID:SECRET (an empty SECRET registers a PKCE public client)", s)
				}
				reg[id] = secret
			}
			if len(reg) == 0 {
				return fmt.Errorf("at least one --client ID:SECRET is required")
			}
			log, _, err := newLogger(config.Log{Level: "info", Format: "json"}, c.errOut)
			if err != nil {
				return err
			}
			sim := upssim.New(upssim.Options{Clients: reg, AccessTTL: accessTTL, RefreshTTL: refreshTTL, Logger: log})
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("sandbox listener: %w", err)
			}
			srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			fmt.Fprintf(c.out, "UPS simulator listening on http://%s\n", ln.Addr())
			log.Info("UPS simulator listening", zap.String("addr", ln.Addr().String()), zap.Int("clients", len(reg)))
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&listen, "listen", "127.0.0.1:0", "address to listen on")
	fl.StringArrayVar(&clients, "client", nil, "registered client ID:SECRET (repeatable)")
	fl.DurationVar(&accessTTL, "access-ttl", 4*time.Hour, "access-token lifetime")
	fl.DurationVar(&refreshTTL, "refresh-ttl", 60*24*time.Hour, "refresh-token lifetime")
	return cmd
}
