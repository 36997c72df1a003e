package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/config"
	"github.com/upsproxy/upsproxy/internal/fileperm"
	"github.com/upsproxy/upsproxy/internal/proxy"
	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// loadConfig reads and validates the config file, printing diagnostics
// (errors and warnings) with file, line and snippet to stderr.
func (c *cli) loadConfig() (*config.Config, error) {
	path := c.configFile()
	cfg, files, diags := config.Load(path)
	if len(diags) > 0 {
		if err := files.WriteDiagnostics(c.errOut, diags, false); err != nil {
			return nil, err
		}
	}
	if diags.HasErrors() || cfg == nil {
		return nil, &exitCodeError{code: exitError, msg: fmt.Sprintf("invalid configuration in %s", path)}
	}
	c.warnExposedSecretFiles(cfg, fileperm.CheckPrivate)
	return cfg, nil
}

// vaultSession logs in to Vault as the config says. serve keeps it alive
// with Run; one-shot commands just use it.
func (c *cli) vaultSession(ctx context.Context, cfg *config.Config, log *zap.Logger) (*vaultstore.Session, error) {
	var auth vaultstore.Authenticator
	switch a := cfg.Vault.Auth; a.Method {
	case config.AuthAppRole:
		auth = vaultstore.AppRoleAuth{RoleID: a.AppRole.RoleID, SecretIDFile: a.AppRole.SecretIDFile,
			SecretIDEnv: a.AppRole.SecretIDEnv, Wrapped: a.AppRole.Wrapped, MountPath: a.AppRole.MountPath, Getenv: c.getenv}
	case config.AuthKubernetes:
		auth = vaultstore.KubernetesAuth{Role: a.Kubernetes.Role, TokenFile: a.Kubernetes.TokenFile, MountPath: a.Kubernetes.MountPath}
	default:
		tf := ""
		if a.Token != nil {
			tf = a.Token.TokenFile
		}
		auth = vaultstore.TokenAuth{Token: c.getenv("VAULT_TOKEN"), TokenFile: tf}
	}
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return vaultstore.NewSession(lctx, vaultstore.SessionOptions{
		Client: vaultstore.ClientOptions{Address: cfg.Vault.Address, CACert: cfg.Vault.CACert, Timeout: 10 * time.Second, Getenv: c.getenv},
		Auth:   auth, Logger: log.Named("vault"),
	})
}

// tokenStore opens the Vault token store for a one-shot command.
func (c *cli) tokenStore(cfg *config.Config, log *zap.Logger) (*vaultstore.Store, error) {
	sess, err := c.vaultSession(context.Background(), cfg, log)
	if err != nil {
		return nil, fmt.Errorf("connecting to Vault: %w", err)
	}
	return vaultstore.New(vaultstore.Options{Client: sess.Client(), Mount: cfg.Vault.Mount, Prefix: cfg.Vault.Prefix, Logger: log})
}

// upstreamTransport is the one verified, pooled transport to UPS, for API
// requests and OAuth calls alike, through the egress proxy if configured.
func upstreamTransport(cfg *config.Config) (*http.Transport, error) {
	opts := proxy.TransportOptions{
		CAFile:                cfg.UPS.CAFile,
		ResponseHeaderTimeout: cfg.Limits.UpstreamTimeout,
	}
	if e := cfg.UPS.Egress; e != nil {
		opts.Egress = &proxy.EgressProxy{URL: e.URL, Username: e.Username, Password: e.Password.Value}
	}
	return proxy.NewTransport(opts)
}

// secretReader reads one field of a KV version 2 secret with the proxy's
// own Vault session (*vaultstore.Store).
type secretReader interface {
	ReadField(ctx context.Context, path, field string) (string, error)
}

// resolveClientSecret reads a carrier's client_secret = vault(...) from
// Vault into car.ClientSecret.Value; other secrets are left as they are.
// The error names the carrier and the reference, never a value.
func resolveClientSecret(ctx context.Context, vr secretReader, car *config.Carrier) error {
	s := &car.ClientSecret
	if !s.IsVaultRef() {
		return nil
	}
	v, err := vr.ReadField(ctx, s.VaultPath, s.VaultField)
	if err != nil {
		return fmt.Errorf("carrier %q: client_secret = vault(%q, %q): %w", car.Name, s.VaultPath, s.VaultField, err)
	}
	s.Value = v
	return nil
}

// oauthClient builds the UPS OAuth client for a carrier in an environment.
// A vault() client secret must have been resolved (resolveClientSecret).
func oauthClient(cfg *config.Config, car *config.Carrier, env ups.Environment, hc *http.Client) (*ups.Client, error) {
	if car.ClientSecret.IsVaultRef() && car.ClientSecret.Value == "" {
		return nil, fmt.Errorf("carrier %q: client_secret = vault(%q, %q) was not read from Vault", car.Name, car.ClientSecret.VaultPath, car.ClientSecret.VaultField)
	}
	return ups.NewClient(ups.Config{
		BaseURL:      upstreams(cfg)[env],
		ClientID:     car.ClientID,
		ClientSecret: car.ClientSecret.Value,
		RedirectURI:  car.RedirectURI,
		Scope:        car.Scope,
		MerchantID:   car.MerchantID,
		HTTPClient:   hc,
	})
}

// standaloneOAuth builds the UPS OAuth client of a one-shot command,
// reading a vault() client secret with the command's Vault session.
func standaloneOAuth(ctx context.Context, cfg *config.Config, car *config.Carrier, env ups.Environment, vr secretReader) (*ups.Client, error) {
	if err := resolveClientSecret(ctx, vr, car); err != nil {
		return nil, err
	}
	tr, err := upstreamTransport(cfg)
	if err != nil {
		return nil, err
	}
	return oauthClient(cfg, car, env, &http.Client{Transport: tr, Timeout: time.Minute})
}

// carrierEnv resolves --carrier and --env against the config.
func carrierEnv(cfg *config.Config, name, env string) (*config.Carrier, ups.Environment, error) {
	if name == "" {
		return nil, "", errors.New("--carrier is required")
	}
	car, ok := cfg.Carrier(name)
	if !ok {
		return nil, "", fmt.Errorf("no carrier %q in the configuration", name)
	}
	e := car.Environment
	if env != "" {
		e = ups.Environment(env)
		if !e.Valid() {
			return nil, "", fmt.Errorf("--env must be test or production, not %q", env)
		}
	}
	return car, e, nil
}
