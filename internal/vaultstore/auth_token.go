package vaultstore

import (
	"context"
	"errors"
	"fmt"

	vaultapi "github.com/hashicorp/vault/api"
)

// TokenAuth uses a Vault token obtained elsewhere: from TokenFile when it is
// set, read again at every login so that a token rotated by an operator or
// by Vault Agent is picked up, otherwise Token (VAULT_TOKEN). Its String
// method never shows the token.
type TokenAuth struct {
	// Token is the token itself, usually the value of VAULT_TOKEN.
	Token string
	// TokenFile is a file holding the token; it wins over Token.
	TokenFile string
}

// Login checks the token with auth/token/lookup-self, which also tells its
// remaining TTL and whether it is renewable: a root or dev token never
// expires, a renewable one is renewed by the Session, and for any other the
// Session reads TokenFile again before it expires.
func (a TokenAuth) Login(ctx context.Context, client *vaultapi.Client) (*vaultapi.Secret, error) {
	token, source, err := a.token()
	if err != nil {
		return nil, fmt.Errorf("vault token login failed: %w", err)
	}
	client.SetToken(token)
	info, err := client.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		err = loginError(a.Method(), "check the token from "+source, err, token)
		if errors.Is(err, ErrPermissionDenied) {
			// Vault answers an unknown token and a token without this
			// permission alike.
			return nil, fmt.Errorf("%w: the token is invalid or expired, or its policy does not allow auth/token/lookup-self", err)
		}
		return nil, err
	}
	if info == nil || info.Data == nil {
		return nil, fmt.Errorf("vault token login failed: check the token from %s: empty answer from auth/token/lookup-self", source)
	}
	ttl, err := info.TokenTTL()
	if err != nil {
		return nil, fmt.Errorf("vault token login failed: check the token from %s: bad ttl in vault's answer: %w", source, err)
	}
	renewable, err := info.TokenIsRenewable()
	if err != nil {
		return nil, fmt.Errorf("vault token login failed: check the token from %s: bad renewable flag in vault's answer: %w", source, err)
	}
	// Best effort: policies only go to the log.
	policies, _ := info.TokenPolicies()
	// Shaped like a login answer so that the Session treats every method
	// alike.
	return &vaultapi.Secret{Auth: &vaultapi.SecretAuth{
		ClientToken:   token,
		Policies:      policies,
		TokenPolicies: policies,
		Renewable:     renewable,
		LeaseDuration: int(ttl.Seconds()),
	}}, nil
}

// token returns the token and where it came from, for errors.
func (a TokenAuth) token() (token, source string, err error) {
	if a.TokenFile != "" {
		t, err := readCredentialFile(a.TokenFile, "vault token")
		if err != nil {
			return "", "", err
		}
		return t, "token file " + a.TokenFile, nil
	}
	if a.Token == "" {
		return "", "", fmt.Errorf("no token: set %s, or a token file in the vault auth \"token\" block", EnvToken)
	}
	t, err := parseCredential(a.Token, "vault token")
	if err != nil {
		return "", "", fmt.Errorf("the token from %s: %w", EnvToken, err)
	}
	return t, EnvToken, nil
}

// Method is "token".
func (TokenAuth) Method() string { return "token" }

// String says whether a token is set, never what it is.
func (a TokenAuth) String() string {
	return fmt.Sprintf("vaultstore.TokenAuth{token=%s token_file=%q}", setOrNot(a.Token), a.TokenFile)
}

// GoString keeps %#v from printing the token too.
func (a TokenAuth) GoString() string { return a.String() }
