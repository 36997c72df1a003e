package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/upsproxy/upsproxy/internal/config"
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
	return cfg, nil
}

// newLogger builds the zap logger the config asks for, writing to w.
func newLogger(l config.Log, w io.Writer) (*zap.Logger, zap.AtomicLevel, error) {
	level, err := zap.ParseAtomicLevel(l.Level)
	if err != nil {
		return nil, level, fmt.Errorf("log level: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey = "ts"
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	encCfg.EncodeDuration = zapcore.StringDurationEncoder
	var enc zapcore.Encoder
	if l.Format == "console" {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)
	return zap.New(core), level, nil
}

// vaultClient connects to Vault as the config says.
func (c *cli) vaultClient(cfg *config.Config) (*vaultapi.Client, error) {
	addr := cfg.Vault.Address
	if addr == "" {
		addr = c.getenv("VAULT_ADDR")
	}
	if addr == "" {
		return nil, errors.New("no Vault address: set vault { address = ... } or VAULT_ADDR")
	}
	token := ""
	auth := cfg.Vault.Auth
	if auth.Method == "" || auth.Method == config.AuthToken {
		token = c.getenv("VAULT_TOKEN")
		if auth.Token != nil && auth.Token.TokenFile != "" {
			b, err := os.ReadFile(auth.Token.TokenFile)
			if err != nil {
				return nil, fmt.Errorf("vault token file: %w", err)
			}
			token = string(trimSpace(b))
		}
		if token == "" {
			return nil, errors.New("no Vault token: set VAULT_TOKEN (vault auth \"token\")")
		}
	} else {
		return nil, fmt.Errorf("vault auth %q is not supported yet", auth.Method)
	}
	return vaultstore.NewClient(vaultstore.ClientOptions{Address: addr, CACert: cfg.Vault.CACert, Token: token, Timeout: 10 * time.Second})
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// tokenStore opens the Vault token store.
func (c *cli) tokenStore(cfg *config.Config, log *zap.Logger) (*vaultstore.Store, error) {
	vc, err := c.vaultClient(cfg)
	if err != nil {
		return nil, err
	}
	return vaultstore.New(vaultstore.Options{Client: vc, Mount: cfg.Vault.Mount, Prefix: cfg.Vault.Prefix, Logger: log})
}

// upstreamURL is where an environment's requests go.
func upstreamURL(cfg *config.Config, env ups.Environment) *url.URL {
	if env == ups.Test {
		return cfg.UPS.TestURL
	}
	return cfg.UPS.ProductionURL
}

// upstreamTransport is the one verified, pooled transport to UPS.
func upstreamTransport(cfg *config.Config) (*http.Transport, error) {
	return proxy.NewTransport(proxy.TransportOptions{
		CAFile:                cfg.UPS.CAFile,
		ResponseHeaderTimeout: cfg.Limits.UpstreamTimeout,
	})
}

// oauthClient builds the UPS OAuth client for a carrier in an environment.
func oauthClient(cfg *config.Config, car *config.Carrier, env ups.Environment, hc *http.Client) (*ups.Client, error) {
	if car.ClientSecret.IsVaultRef() {
		return nil, fmt.Errorf("carrier %q: client_secret from vault() is not supported yet", car.Name)
	}
	return ups.NewClient(ups.Config{
		BaseURL:      upstreamURL(cfg, env),
		ClientID:     car.ClientID,
		ClientSecret: car.ClientSecret.Value,
		RedirectURI:  car.RedirectURI,
		Scope:        car.Scope,
		MerchantID:   car.MerchantID,
		HTTPClient:   hc,
	})
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
