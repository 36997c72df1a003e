package vaultstore

import (
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

// Environment variables NewClient and NewSession fall back to, as the vault
// CLI does.
const (
	EnvAddress = "VAULT_ADDR"
	EnvCACert  = "VAULT_CACERT"
	EnvToken   = "VAULT_TOKEN"
)

// ClientOptions configure NewClient and the client of NewSession. Empty
// fields fall back to the environment variables above.
type ClientOptions struct {
	// Address is Vault's URL, e.g. https://vault.internal:8200.
	Address string
	// CACert is a PEM file of the CA that signed Vault's certificate.
	CACert string
	// Token is the Vault token for token auth: NewClient's token, and
	// NewSession's when SessionOptions.Auth is nil.
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

// NewClient builds a Vault client that uses the token of the options (or
// VAULT_TOKEN) as it is. It does not contact Vault; Store.Ping does. It
// neither renews the token nor logs in again: NewSession does, for every
// auth method, and is what a long-running proxy wants.
//
// Other VAULT_* variables the Vault library reads itself (VAULT_SKIP_VERIFY,
// VAULT_MAX_RETRIES, VAULT_NAMESPACE, ...) still apply, as vault users
// expect; the address, CA and token are always set from the options or the
// fallbacks above, so they are what this function says.
func NewClient(opts ClientOptions) (*vaultapi.Client, error) {
	client, err := newBaseClient(opts)
	if err != nil {
		return nil, err
	}
	token := firstSet(opts.Token, opts.getenv()(EnvToken))
	if token == "" {
		return nil, fmt.Errorf("vault client for %s: vault token auth: no token: set %s or the vault token option", client.Address(), EnvToken)
	}
	client.SetToken(token)
	return client, nil
}

func (o ClientOptions) getenv() func(string) string {
	if o.Getenv == nil {
		return os.Getenv
	}
	return o.Getenv
}

// newBaseClient builds a Vault client without a token.
func newBaseClient(opts ClientOptions) (*vaultapi.Client, error) {
	getenv := opts.getenv()
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
		if err := configureCA(cfg, ca); err != nil {
			return nil, err
		}
	}
	client, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault client for %s: %w", addr, err)
	}
	// vaultapi.NewClient picks up VAULT_TOKEN from the process environment
	// on its own; clear it so only the chosen auth method decides.
	client.ClearToken()
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

// configureCA makes cfg trust the CA certificate file ca (and only it).
func configureCA(cfg *vaultapi.Config, ca string) error {
	if err := cfg.ConfigureTLS(&vaultapi.TLSConfig{CACert: ca}); err != nil {
		return fmt.Errorf("vault client: CA certificate %s: %w", ca, err)
	}
	return nil
}

// CheckCACert reports whether the Vault client could trust the CA
// certificate file ca (config validate: serve would fail at start).
func CheckCACert(ca string) error {
	return configureCA(vaultapi.DefaultConfig(), ca)
}
