package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/config"
	"github.com/upsproxy/upsproxy/internal/notify"
	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

func (c *cli) notifyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "notify",
		Short: "Reminder channels (email, webhooks)",
	}
	var channel, carrier string
	test := &cobra.Command{
		Use:   "test --channel NAME",
		Short: "Send a test message through one notify channel",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.notifyTest(cmd.Context(), channel, carrier)
		},
	}
	test.Flags().StringVar(&channel, "channel", "", "name of the notify block (required)")
	test.Flags().StringVar(&carrier, "carrier", "", "carrier the message names (default: the first the channel serves)")
	cmd.AddCommand(test)
	return cmd
}

func (c *cli) notifyTest(ctx context.Context, name, carrier string) error {
	if name == "" {
		return errors.New("--channel is required")
	}
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	var nb *config.Notify
	for i := range cfg.Notify {
		if cfg.Notify[i].Name == name {
			nb = &cfg.Notify[i]
		}
	}
	if nb == nil {
		var names []string
		for _, n := range cfg.Notify {
			names = append(names, n.Name)
		}
		return fmt.Errorf("no notify block %q in the configuration (there are: %s)", name, strings.Join(names, ", "))
	}
	log := zap.NewNop()
	var vc *vaultapi.Client
	if needsVault(*nb) {
		sess, err := c.vaultSession(ctx, cfg, log)
		if err != nil {
			return fmt.Errorf("connecting to Vault: %w", err)
		}
		vc = sess.Client()
	}
	ch, err := buildChannel(ctx, *nb, vc)
	if err != nil {
		return err
	}
	if carrier == "" {
		if len(nb.Carriers) > 0 {
			carrier = nb.Carriers[0]
		} else if len(cfg.Carriers) > 0 {
			carrier = cfg.Carriers[0].Name
		}
	}
	var env ups.Environment
	if car, ok := cfg.Carrier(carrier); ok {
		env = car.Environment
	} else if carrier != "" {
		return fmt.Errorf("no carrier %q in the configuration", carrier)
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := notify.SendTest(sctx, ch, carrier, env, consoleURL(cfg), time.Now()); err != nil {
		return fmt.Errorf("notify channel %q: %w", name, err)
	}
	fmt.Fprintf(c.out, "test message sent through %q\n", name)
	return nil
}

// consoleURL is the console's public URL for links in messages ("" when
// the console is off).
func consoleURL(cfg *config.Config) string {
	if cfg.Console == nil {
		return ""
	}
	return cfg.Console.PublicURL.String()
}

// needsVault reports whether a channel's secrets are Vault references.
func needsVault(n config.Notify) bool {
	if n.Email != nil && n.Email.Password.IsVaultRef() {
		return true
	}
	if n.Webhook != nil {
		if n.Webhook.URL.IsVaultRef() {
			return true
		}
		for _, h := range n.Webhook.Headers {
			if h.IsVaultRef() {
				return true
			}
		}
	}
	return false
}

// buildRoutes turns the notify blocks into channels, reading vault()
// secrets with the proxy's own Vault client.
func buildRoutes(ctx context.Context, cfg *config.Config, vc *vaultapi.Client) ([]notify.Route, error) {
	var out []notify.Route
	for _, nb := range cfg.Notify {
		ch, err := buildChannel(ctx, nb, vc)
		if err != nil {
			return nil, err
		}
		r := notify.Route{Channel: ch, Carriers: nb.Carriers}
		for _, e := range nb.Events {
			r.Events = append(r.Events, notify.Kind(e))
		}
		out = append(out, r)
	}
	return out, nil
}

func buildChannel(ctx context.Context, nb config.Notify, vc *vaultapi.Client) (notify.Channel, error) {
	secret := func(what string, s config.Secret) (string, error) {
		if !s.IsVaultRef() {
			return s.Value, nil
		}
		v, err := vaultstore.ReadField(ctx, vc, s.VaultPath, s.VaultField)
		if err != nil {
			return "", fmt.Errorf("notify %q: %s: %w", nb.Name, what, err)
		}
		return v, nil
	}
	switch {
	case nb.Email != nil:
		e := nb.Email
		pw, err := secret("password", e.Password)
		if err != nil {
			return nil, err
		}
		roots, err := emailRoots(nb)
		if err != nil {
			return nil, err
		}
		return notify.NewEmail(nb.Name, notify.EmailOptions{
			Host: e.Host, Port: e.Port, TLS: e.TLS, RootCAs: roots,
			Username: e.Username, Password: pw, From: e.From, To: e.To,
		})
	case nb.Webhook != nil:
		u, err := secret("url", nb.Webhook.URL)
		if err != nil {
			return nil, err
		}
		headers := map[string]string{}
		for k, v := range nb.Webhook.Headers {
			if headers[k], err = secret("header "+k, v); err != nil {
				return nil, err
			}
		}
		return notify.NewWebhook(nb.Name, notify.WebhookOptions{URL: u, Headers: headers})
	}
	return nil, fmt.Errorf("notify %q: neither email nor webhook", nb.Name)
}

// newNotifier builds the notification loop of a configuration (nil when
// it has no notify block), reading its vault() secrets. Nothing runs yet:
// a reload builds it before committing to the new configuration, so a
// channel that cannot be built keeps the running one.
func (d *daemon) newNotifier(ctx context.Context, cfg *config.Config) (*notify.Notifier, error) {
	if len(cfg.Notify) == 0 {
		return nil, nil
	}
	routes, err := buildRoutes(ctx, cfg, d.vault)
	if err != nil {
		return nil, err
	}
	var carriers []notify.Carrier
	for _, c := range cfg.Carriers {
		carriers = append(carriers, notify.Carrier{Name: c.Name, Environment: c.Environment, Grant: c.Grant, Inactive: c.Inactive})
	}
	r := cfg.Reminders
	return notify.New(notify.Options{
		Tokens: d.store, Ledger: d.store, Routes: routes, Carriers: carriers,
		Policy:     notify.Policy{NotifyAt: r.NotifyAt, FailingAfter: r.NotifyFailingAfter},
		Refreshes:  d.refreshView,
		ConsoleURL: consoleURL(cfg),
		Holder:     d.holder, Logger: d.log.Named("notify"), Metrics: d.metrics,
		Interval: r.NotifyInterval,
	})
}

// startNotifier (re)starts the notification loop with n (none when nil).
// It runs on its own goroutine: nothing it does waits on the request path
// or the token refresher, nor they on it.
func (d *daemon) startNotifier(ctx context.Context, n *notify.Notifier) {
	d.stopNotifier()
	if n == nil {
		return
	}
	nctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	d.notifier = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
		}
	}
	go func() {
		defer close(done)
		n.Run(nctx)
	}()
}

// stopNotifier ends the notification loop, if any, giving it a moment to
// release the claims it could not deliver.
func (d *daemon) stopNotifier() {
	if d.notifier != nil {
		d.notifier()
		d.notifier = nil
	}
}

// refreshView is the broker's last refresh attempt of a carrier.
func (d *daemon) refreshView(carrier string, env ups.Environment) notify.RefreshView {
	for _, st := range d.broker.Status() {
		if st.Carrier == carrier && st.Environment == env {
			return notify.RefreshView{At: st.LastRefreshAt, Result: st.LastRefreshResult, Error: st.LastError}
		}
	}
	return notify.RefreshView{}
}

// emailRoots is the certificate pool an email channel trusts: the
// system's plus its ca_file; nil without a ca_file (the system's alone).
func emailRoots(nb config.Notify) (*x509.CertPool, error) {
	e := nb.Email
	if e == nil || e.CAFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(e.CAFile)
	if err != nil {
		return nil, fmt.Errorf("notify %q: ca_file: %w", nb.Name, err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("notify %q: ca_file %s holds no PEM certificate", nb.Name, e.CAFile)
	}
	return roots, nil
}
