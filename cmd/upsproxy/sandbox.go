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
		faults     []string
	)
	cmd := &cobra.Command{
		Use:   "sandbox --listen ADDR --client ID:SECRET",
		Short: "Run the UPS simulator (OAuth and common APIs) for tests and demos",
		Long: `Runs a stand-in for both UPS hosts: OAuth authorize (approves at once),
token, refresh (single-use refresh tokens), Rate/Shop, Ship, Void, Label
Recovery, Track and Address Validation, answering in UPS's shapes and error
envelope. Lists UPS returns one-or-many follow the version in the path as
UPS's specs say: before v2409 a Rate answer's RatedShipment is an object
(one rate), a Shop answer's an array.

Faults (--fault ENDPOINT:OPTIONS, repeatable) make an endpoint misbehave:
ENDPOINT is token, refresh, api or authorize; OPTIONS a status (503), html
(an HTML error page), delay=DURATION and times=N.`,
		Args: cobra.NoArgs,
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
			parsed := make([]upssim.Fault, 0, len(faults))
			for _, spec := range faults {
				f, err := upssim.ParseFault(spec)
				if err != nil {
					return err
				}
				parsed = append(parsed, f)
			}
			if accessTTL <= 0 || refreshTTL <= 0 {
				return fmt.Errorf("--access-ttl and --refresh-ttl must be positive")
			}
			sim := upssim.New(upssim.Options{Clients: reg, AccessTTL: accessTTL, RefreshTTL: refreshTTL, Logger: log})
			for _, f := range parsed {
				sim.SetFault(f)
			}
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
	fl.StringArrayVar(&faults, "fault", nil, "inject a fault, ENDPOINT:OPTIONS (repeatable): e.g. refresh:503, token:429,times=2, api:delay=3s, refresh:html")
	return cmd
}
