package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/config"
	"github.com/upsproxy/upsproxy/internal/console"
	"github.com/upsproxy/upsproxy/internal/login"
	"github.com/upsproxy/upsproxy/internal/proxy"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// consoleKeyName is the Vault secret every replica's console shares.
const consoleKeyName = "console"

// startConsole opens the console's listener and server (nil, nil when the
// config has no console). The caller serves and shuts it down.
func (d *daemon) startConsole(ctx context.Context, store *vaultstore.Store) (*http.Server, net.Listener, error) {
	cc := d.cfg.Console
	if cc == nil {
		return nil, nil, nil
	}
	kctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	key, err := store.SharedKey(kctx, consoleKeyName)
	if err != nil {
		return nil, nil, fmt.Errorf("console: reading its shared key from Vault: %w", err)
	}
	svc, err := login.New(login.Options{Store: store})
	if err != nil {
		return nil, nil, err
	}
	settings, err := d.consoleSettings(d.cfg)
	if err != nil {
		return nil, nil, err
	}
	d.console, err = console.New(console.Options{
		Logger: d.log.Named("console"), PublicURL: cc.PublicURL, Key: key, Store: store,
		Login: svc, Refresher: d.broker, Settings: settings, ErrorCode: proxy.TokenErrorCode,
	})
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", cc.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("console listener: %w", err)
	}
	if cc.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cc.TLSCert, cc.TLSKey)
		if err != nil {
			ln.Close()
			return nil, nil, fmt.Errorf("console TLS certificate: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	srv := &http.Server{
		Handler:           d.console,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          zap.NewStdLog(d.log.Named("console-http")),
	}
	return srv, ln, nil
}

// consoleSettings is what the console takes from a (re)loaded config.
func (d *daemon) consoleSettings(cfg *config.Config) (console.Settings, error) {
	var s console.Settings
	if cfg.Console == nil {
		return s, nil
	}
	s.WarnBefore = cfg.Reminders.WarnBefore
	for _, u := range cfg.Console.Users {
		s.Users = append(s.Users, console.User{Name: u.Name, PasswordHash: u.PasswordHash})
	}
	for i := range cfg.Carriers {
		car := &cfg.Carriers[i]
		oc, err := oauthClient(cfg, car, car.Environment, d.oauthHTTP)
		if err != nil {
			return s, err
		}
		s.Carriers = append(s.Carriers, console.Carrier{Name: car.Name, Environment: car.Environment, Grant: car.Grant,
			Inactive: car.Inactive, RedirectURI: car.RedirectURI, OAuth: oc})
	}
	return s, nil
}
