package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"golang.org/x/net/netutil"

	"github.com/upsproxy/upsproxy/internal/admin"
	"github.com/upsproxy/upsproxy/internal/config"
	"github.com/upsproxy/upsproxy/internal/console"
	"github.com/upsproxy/upsproxy/internal/gcfloor"
	"github.com/upsproxy/upsproxy/internal/notify"
	"github.com/upsproxy/upsproxy/internal/proxy"
	"github.com/upsproxy/upsproxy/internal/tokens"
	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

func (c *cli) serveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the proxy and the admin listener until SIGINT/SIGTERM (SIGHUP reloads the config)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.serve(cmd.Context())
		},
	}
}

// daemon is a running `upsproxy serve`: what a reload may change.
type daemon struct {
	c         *cli
	cfg       *config.Config
	log       *zap.Logger
	level     zap.AtomicLevel
	broker    *tokens.Broker
	px        *proxy.Proxy
	oauthHTTP *http.Client
	// console is nil when the config has no console.
	console *console.Console
	// stopReminders ends the current reminder loop (restarted on reload).
	stopReminders context.CancelFunc
	// Notifications (notify.go): what they need, and how to stop them.
	store    *vaultstore.Store
	vault    *vaultapi.Client
	metrics  *admin.Metrics
	holder   string
	notifier func()
	// warm keeps spare connections to the UPS hosts the carriers use; a
	// reload gives it the new host list.
	warm *proxy.WarmPool
}

// gcHeapFloor is how far above the live heap the next collection is due,
// at least (gcfloor). 16 MB: CPU per request ×0.87 under load against
// GOGC=100; 32 MB was no faster and held 10,000 idle clients in 196 MB of
// RSS instead of 125 (16 MB: 132), as fewer collections during their
// arrival left more garbage behind.
const gcHeapFloor = 16 << 20

func (c *cli) serve(ctx context.Context) error {
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	log, level, err := newLogger(cfg.Log, c.errOut)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	// Fewer collections under load (see gcfloor); an operator's own GOGC
	// is left alone.
	if c.getenv("GOGC") == "" {
		defer gcfloor.Start(gcHeapFloor)()
	}

	// Signals and, under the Windows service manager, service controls
	// (c.controls) drive the same stop and reload.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	sess, err := c.vaultSession(ctx, cfg, log)
	if err != nil {
		return err
	}
	go sess.Run(ctx)
	store, err := vaultstore.New(vaultstore.Options{Client: sess.Client(), Mount: cfg.Vault.Mount, Prefix: cfg.Vault.Prefix, Logger: log.Named("vault")})
	if err != nil {
		return err
	}
	tr, err := upstreamTransport(cfg)
	if err != nil {
		return err
	}
	warm := tuneUpstream(tr, cfg, log)
	warm.Start(ctx)
	defer warm.Close()
	metrics := admin.NewMetrics(version, commit)
	d := &daemon{c: c, cfg: cfg, log: log, level: level, oauthHTTP: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		store: store, vault: sess.Client(), metrics: metrics, warm: warm}

	carriers, err := d.brokerCarriers(ctx, cfg)
	if err != nil {
		return err
	}
	d.holder = holderName("")
	d.broker, err = tokens.New(tokens.Options{
		Store: store, Carriers: carriers, Logger: log.Named("tokens"), Metrics: metrics,
		Holder: d.holder, ErrorCode: proxy.TokenErrorCode,
	})
	if err != nil {
		return err
	}
	d.initMetrics(cfg)
	defer d.broker.Close()

	var ca *proxy.CA
	if cfg.MITM != nil {
		if ca, err = proxy.LoadCA(cfg.MITM.CACert, cfg.MITM.CAKey, 1024); err != nil {
			return err
		}
	}
	d.px, err = proxy.New(proxy.Options{
		Logger:    log.Named("proxy"),
		Tokens:    d.broker,
		Transport: tr,
		CA:        ca,
		Observer:  metrics,
		Config:    proxyConfig(cfg),
		Limits:    connLimits(cfg),
	})
	if err != nil {
		return err
	}

	d.loadClientTokenKey(ctx)
	// A notify channel that cannot be built (its vault() secret unreadable,
	// its CA file bad) stops start-up, as a carrier's vault() secret does:
	// running on without it would lose every reminder unnoticed.
	notifier, err := d.newNotifier(ctx, cfg)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("proxy listener: %w", err)
	}
	if n := cfg.Limits.MaxConnections; n > 0 {
		ln = netutil.LimitListener(ln, n)
	}
	adminLn, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("admin listener: %w", err)
	}
	adminSrv := &http.Server{
		Handler: admin.NewHandler(admin.Options{
			Logger: log.Named("admin"), Metrics: metrics, Version: version, Commit: commit,
			Ready:  store.Ping,
			Status: func() any { return d.broker.Status() },
		}),
		ReadHeaderTimeout: 5 * time.Second,
		// Its endpoints read no body; without ReadTimeout net/http would
		// wait for a declared one forever after the answer.
		ReadTimeout:    10 * time.Second,
		IdleTimeout:    time.Minute,
		MaxHeaderBytes: 16 << 10,
		ErrorLog:       zap.NewStdLog(log.Named("admin-http")),
	}

	consoleSrv, consoleLn, err := d.startConsole(ctx, store)
	if err != nil {
		ln.Close()
		adminLn.Close()
		return err
	}

	if cfg.MITM != nil && cfg.MITM.SessionTickets {
		go d.px.RunTicketKeys(ctx, ticketStore{store: store, holder: d.holder}, cfg.MITM.TicketRotation)
	}
	d.broker.Preload(ctx)
	d.startReminders(ctx)
	d.startNotifier(ctx, notifier)
	defer d.stopNotifier()
	go d.broker.RunRefresher(ctx, time.Second)

	errc := make(chan error, 3)
	go func() { errc <- fmt.Errorf("proxy server: %w", d.px.Serve(ln)) }()
	go func() { errc <- fmt.Errorf("admin server: %w", adminSrv.Serve(adminLn)) }()
	log.Info("proxy listening", zap.String("addr", ln.Addr().String()), zap.Int("carriers", len(cfg.Carriers)))
	log.Info("admin listening", zap.String("addr", adminLn.Addr().String()))
	if consoleSrv != nil {
		go func() { errc <- fmt.Errorf("console server: %w", consoleSrv.Serve(consoleLn)) }()
		log.Info("console listening", zap.String("addr", consoleLn.Addr().String()), zap.String("public_url", cfg.Console.PublicURL.String()))
	}
	if c.ready != nil {
		c.ready()
	}

	for running := true; running; {
		ctl := controlNone
		select {
		case err := <-errc:
			return err
		case sig := <-sigs:
			ctl = signalControl(sig)
		case ctl = <-c.controls:
		case <-ctx.Done():
			ctl = controlStop
		}
		switch ctl {
		case controlReload:
			d.reload(ctx)
		case controlStop:
			running = false
		}
	}
	// Background work (Vault session, refresher, reminders) ends first, as
	// it did when a signal cancelled the context.
	cancel()

	grace := d.cfg.Limits.ShutdownGrace
	log.Info("shutting down: draining in-flight requests", zap.Duration("grace", grace))
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	// Plain connections and HTTPS tunnels alike: idle ones close at once,
	// busy ones after their answer.
	if err := d.px.Shutdown(sctx); err != nil {
		log.Warn("in-flight requests cut off at the end of the grace period", zap.Error(err))
	}
	_ = adminSrv.Shutdown(sctx)
	if consoleSrv != nil {
		_ = consoleSrv.Shutdown(sctx)
	}
	// Land any pair Vault has not accepted yet: after exit it would be gone.
	fctx, fcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer fcancel()
	if err := d.broker.Flush(fctx); err != nil {
		log.Error("pending token writes could not be flushed", zap.Error(err))
	}
	log.Info("stopped")
	return nil
}

// control is what a signal or a service control asks of a running serve.
type control int

const (
	controlNone control = iota
	// controlStop: drain in-flight requests, flush token writes, exit
	// (SIGINT, SIGTERM, service Stop and Shutdown).
	controlStop
	// controlReload: re-read the configuration (SIGHUP, service
	// ParamChange).
	controlReload
)

// signalControl maps a signal serve listens for to its control.
func signalControl(sig os.Signal) control {
	if sig == syscall.SIGHUP {
		return controlReload
	}
	return controlStop
}

// brokerCarriers builds the broker's carriers, one UPS OAuth client each,
// with the client secrets as Vault holds them now.
func (d *daemon) brokerCarriers(ctx context.Context, cfg *config.Config) ([]tokens.Carrier, error) {
	out := make([]tokens.Carrier, 0, len(cfg.Carriers))
	for i := range cfg.Carriers {
		car := &cfg.Carriers[i]
		if err := resolveClientSecret(ctx, d.store, car); err != nil {
			return nil, err
		}
		oc, err := oauthClient(cfg, car, car.Environment, d.oauthHTTP)
		if err != nil {
			return nil, err
		}
		out = append(out, tokens.Carrier{
			Name: car.Name, Environment: car.Environment, Grant: car.Grant, Inactive: car.Inactive, OAuth: oc,
		})
	}
	return out, nil
}

// initMetrics shows every configured carrier's token counters at zero.
func (d *daemon) initMetrics(cfg *config.Config) {
	for i := range cfg.Carriers {
		d.metrics.InitCarrier(cfg.Carriers[i].Name, cfg.Carriers[i].Environment)
	}
}

func (d *daemon) startReminders(ctx context.Context) {
	if d.stopReminders != nil {
		d.stopReminders()
	}
	rctx, cancel := context.WithCancel(ctx)
	d.stopReminders = cancel
	go d.broker.RunReminders(rctx, d.cfg.Reminders.WarnBefore, d.cfg.Reminders.Interval)
}

// reload re-reads the config file (SIGHUP, or the Windows service's
// ParamChange control). An invalid file is logged with
// its diagnostics and the running configuration stays; tokens in memory and
// open connections are untouched either way.
func (d *daemon) reload(ctx context.Context) {
	path := d.c.configFile()
	d.log.Info("reloading the configuration (SIGHUP or service control)", zap.String("path", path))
	cfg, files, diags := config.Load(path)
	if diags.HasErrors() || cfg == nil {
		var b strings.Builder
		if files != nil {
			_ = files.WriteDiagnostics(&b, diags, false)
		}
		d.log.Error("configuration reload failed; keeping the running configuration",
			zap.String("path", path), zap.String("diagnostics", b.String()))
		return
	}
	if len(diags) > 0 {
		// Warnings (a literal client_secret, say) are shown as at start-up;
		// WriteDiagnostics masks secret values in the snippets.
		var b strings.Builder
		_ = files.WriteDiagnostics(&b, diags, false)
		d.log.Warn("the reloaded configuration file has warnings", zap.String("path", path), zap.String("diagnostics", b.String()))
	}
	carriers, err := d.brokerCarriers(ctx, cfg)
	// The notification loop restarts when what it reads changed; its
	// channels are built first (vault() secrets, CA files), so one that
	// cannot be built keeps the running loop and configuration.
	restartNotifier := !reflect.DeepEqual(d.cfg.Reminders, cfg.Reminders) || !reflect.DeepEqual(d.cfg.Notify, cfg.Notify) ||
		!reflect.DeepEqual(d.cfg.Carriers, cfg.Carriers)
	var notifier *notify.Notifier
	if err == nil && restartNotifier {
		notifier, err = d.newNotifier(ctx, cfg)
	}
	if err == nil {
		err = d.px.Update(proxyConfig(cfg))
	}
	var consoleSettings console.Settings
	if err == nil && d.console != nil {
		consoleSettings, err = d.consoleSettings(cfg)
	}
	if err == nil {
		err = d.broker.Update(carriers)
	}
	if err != nil {
		d.log.Error("configuration reload failed; keeping the running configuration", zap.Error(err))
		return
	}
	if lvl, err := zap.ParseAtomicLevel(cfg.Log.Level); err == nil {
		d.level.SetLevel(lvl.Level())
	}
	for _, ch := range restartNeeded(d.cfg, cfg) {
		d.log.Warn("setting changed but only takes effect after a restart", zap.String("setting", ch))
	}
	if d.console != nil {
		d.console.Update(consoleSettings)
	}
	old := d.cfg
	d.cfg = cfg
	d.initMetrics(cfg)
	d.warm.SetHosts(warmHosts(cfg))
	if !reflect.DeepEqual(old.Reminders, cfg.Reminders) {
		d.startReminders(ctx)
	}
	if restartNotifier {
		d.startNotifier(ctx, notifier)
	}
	d.log.Info("configuration reloaded", zap.Int("carriers", len(cfg.Carriers)), zap.Int("clients", len(cfg.Clients)))
}

// restartNeeded lists settings a reload cannot apply.
func restartNeeded(old, cfg *config.Config) []string {
	var out []string
	if old.Listen != cfg.Listen {
		out = append(out, "listen")
	}
	if old.AdminListen != cfg.AdminListen {
		out = append(out, "admin_listen")
	}
	if old.Log.Format != cfg.Log.Format {
		out = append(out, "log.format")
	}
	if !reflect.DeepEqual(old.Vault, cfg.Vault) {
		out = append(out, "vault")
	}
	if (old.Console == nil) != (cfg.Console == nil) || old.Console != nil && (old.Console.Listen != cfg.Console.Listen ||
		*old.Console.PublicURL != *cfg.Console.PublicURL || old.Console.TLSCert != cfg.Console.TLSCert || old.Console.TLSKey != cfg.Console.TLSKey) {
		out = append(out, "console (listen, public_url, tls_cert, tls_key)")
	}
	if !reflect.DeepEqual(old.MITM, cfg.MITM) {
		out = append(out, "mitm")
	}
	if old.UPS.CAFile != cfg.UPS.CAFile {
		out = append(out, "ups.ca_file")
	}
	if !reflect.DeepEqual(old.UPS.Egress, cfg.UPS.Egress) {
		out = append(out, "ups.egress_proxy")
	}
	if old.UPS.WarmConnections != cfg.UPS.WarmConnections || old.UPS.HTTP2 != cfg.UPS.HTTP2 {
		out = append(out, "ups.warm_connections, ups.http2")
	}
	o, n := old.Limits, cfg.Limits
	if o.MaxConnections != n.MaxConnections || connLimits(old) != connLimits(cfg) || o.UpstreamTimeout != n.UpstreamTimeout {
		out = append(out, "limits (connection deadlines, max_header_bytes, upstream_timeout, max_connections)")
	}
	return out
}

func upstreams(cfg *config.Config) map[ups.Environment]*url.URL {
	return map[ups.Environment]*url.URL{ups.Test: cfg.UPS.TestURL, ups.Production: cfg.UPS.ProductionURL}
}

// holderName names this process in the Vault leases it takes (and in
// logs): host and pid, which people can read, plus 4 random bytes, since
// replicas in containers often share both (a fixed hostname, pid 1) and
// would otherwise take each other's live lease for their own. role, when
// set, says what the process is (token-refresh).
func holderName(role string) string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	if role != "" {
		name += "/" + role
	}
	return name
}
