package vaultstore

import (
	"context"
	"errors"

	vaultapi "github.com/hashicorp/vault/api"
)

// Authenticator gives a Vault client its token. Token auth is the only
// method for now; AppRole and Kubernetes will log in here (and keep their
// lease renewed) behind the same interface.
type Authenticator interface {
	// Authenticate sets a token on client, logging in first when the
	// method needs to.
	Authenticate(ctx context.Context, client *vaultapi.Client) error
	// Method names the auth method for logs and errors ("token", ...).
	Method() string
}

// TokenAuth uses a Vault token as given (VAULT_TOKEN style). Its String
// method never shows the token.
type TokenAuth struct {
	Token string
}

// Authenticate sets the token; it needs no round trip to Vault.
func (a TokenAuth) Authenticate(_ context.Context, client *vaultapi.Client) error {
	if a.Token == "" {
		return errors.New("vault token auth: no token: set VAULT_TOKEN or the vault token option")
	}
	client.SetToken(a.Token)
	return nil
}

// Method is "token".
func (TokenAuth) Method() string { return "token" }

// String says whether a token is set, never what it is.
func (a TokenAuth) String() string { return "vaultstore.TokenAuth{token=" + setOrNot(a.Token) + "}" }

// GoString keeps %#v from printing the token too.
func (a TokenAuth) GoString() string { return a.String() }

func setOrNot(s string) string {
	if s == "" {
		return "<not set>"
	}
	return "<set>"
}
