package vaultstore

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// DefaultTimeout bounds each Vault request when ClientOptions.Timeout is
// zero. The Vault library's own default (60s) would keep /readyz and a
// refresh hanging long after a Vault node died.
const DefaultTimeout = 10 * time.Second

// Environment variables NewClient falls back to, as the vault CLI does.
const (
	EnvAddress = "VAULT_ADDR"
	EnvCACert  = "VAULT_CACERT"
	EnvToken   = "VAULT_TOKEN"
)

// ClientOptions configure NewClient. Empty fields fall back to the
// environment variables above.
type ClientOptions struct {
	// Address is Vault's URL, e.g. https://vault.internal:8200.
	Address string
	// CACert is a PEM file of the CA that signed Vault's certificate.
	CACert string
	// Token is the Vault token (token auth).
	Token string
	// Timeout bounds each request; default DefaultTimeout.
	Timeout time.Duration
	// Getenv reads the fallbacks; nil means os.Getenv. Tests inject a map
	// instead of mutating the process environment.
	Getenv func(string) string
}

// String shows the options without the token.
func (o ClientOptions) String() string {
	return fmt.Sprintf("vaultstore.ClientOptions{address=%s cacert=%s token=%s timeout=%s}",
		o.Address, o.CACert, setOrNot(o.Token), o.Timeout)
}

// GoString keeps %#v from printing the token too.
func (o ClientOptions) GoString() string { return o.String() }

// NewClient builds an authenticated Vault client. It does not contact Vault
// (token auth needs no login); Store.Ping does.
//
// Other VAULT_* variables the Vault library reads itself (VAULT_SKIP_VERIFY,
// VAULT_MAX_RETRIES, VAULT_NAMESPACE, ...) still apply, as vault users
// expect; the address, CA and token are always set from the options or the
// fallbacks above, so they are what this function says.
func NewClient(opts ClientOptions) (*vaultapi.Client, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	addr := firstSet(opts.Address, getenv(EnvAddress))
	if addr == "" {
		return nil, fmt.Errorf("vault client: no address: set the vault address option or %s", EnvAddress)
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("vault client: invalid address %q: want http(s)://host:port", addr)
	}

	cfg := vaultapi.DefaultConfig()
	if cfg.Error != nil {
		return nil, fmt.Errorf("vault client: read VAULT_* environment: %w", cfg.Error)
	}
	cfg.Address = addr
	cfg.Timeout = DefaultTimeout
	if opts.Timeout > 0 {
		cfg.Timeout = opts.Timeout
	}
	if ca := firstSet(opts.CACert, getenv(EnvCACert)); ca != "" {
		if err := cfg.ConfigureTLS(&vaultapi.TLSConfig{CACert: ca}); err != nil {
			return nil, fmt.Errorf("vault client: CA certificate %s: %w", ca, err)
		}
	}
	client, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault client for %s: %w", addr, err)
	}
	// vaultapi.NewClient picks up VAULT_TOKEN from the process environment
	// on its own; clear it so only the chosen authenticator decides.
	client.ClearToken()

	auth := TokenAuth{Token: firstSet(opts.Token, getenv(EnvToken))}
	// Token auth makes no request; the bound is there for methods that will.
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	if err := auth.Authenticate(ctx, client); err != nil {
		return nil, fmt.Errorf("vault client for %s: %w", addr, err)
	}
	return client, nil
}

func firstSet(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
