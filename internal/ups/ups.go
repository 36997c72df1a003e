// Package ups is the UPS OAuth 2.0 client: endpoints per environment, the
// authorization URL, code exchange, refresh, client credentials, UPS's
// string-typed token JSON and its error envelope.
package ups

import (
	"fmt"
	"time"
)

// Environment is a UPS environment: the Customer Integration Environment
// (test) or production. Tokens minted by one are useless on the other.
type Environment string

// The two UPS environments.
const (
	Test       Environment = "test"
	Production Environment = "production"
)

// Real UPS host names.
const (
	TestHost       = "wwwcie.ups.com"
	ProductionHost = "onlinetools.ups.com"
)

// Default base URLs.
const (
	DefaultTestURL       = "https://" + TestHost
	DefaultProductionURL = "https://" + ProductionHost
)

// OAuth paths, relative to the host. They have no /api prefix.
const (
	AuthorizePath = "/security/v1/oauth/authorize"
	TokenPath     = "/security/v1/oauth/token"
	RefreshPath   = "/security/v1/oauth/refresh"
)

// The OAuth grants a carrier can use (their grant_type values): the one
// definition that the configuration, the token store and the broker share.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantClientCredentials = "client_credentials"
)

// Valid reports whether e is one of the two environments.
func (e Environment) Valid() bool { return e == Test || e == Production }

// Token is what UPS's token endpoint returns, with the string-typed numbers
// converted. Times are absolute (computed on receipt from the *_in fields
// and the caller's clock). Its String method never shows token values.
type Token struct {
	TokenType          string    `json:"token_type"`
	AccessToken        string    `json:"access_token"`
	RefreshToken       string    `json:"refresh_token,omitempty"`
	Scope              string    `json:"scope"`
	ClientID           string    `json:"client_id"`
	Status             string    `json:"status"`
	RefreshTokenStatus string    `json:"refresh_token_status,omitempty"`
	IssuedAt           time.Time `json:"issued_at"`
	ExpiresAt          time.Time `json:"expires_at"`
	RefreshIssuedAt    time.Time `json:"refresh_token_issued_at,omitzero"`
	RefreshExpiresAt   time.Time `json:"refresh_token_expires_at,omitzero"`
	RefreshCount       int       `json:"refresh_count"`
}

// String describes the token without its secret values.
func (t Token) String() string {
	return fmt.Sprintf("ups.Token{type=%s status=%s scope=%q expires=%s refresh_expires=%s refresh_count=%d access_token=%s refresh_token=%s}",
		t.TokenType, t.Status, t.Scope, t.ExpiresAt.UTC().Format(time.RFC3339), t.RefreshExpiresAt.UTC().Format(time.RFC3339),
		t.RefreshCount, setOrNot(t.AccessToken), setOrNot(t.RefreshToken))
}

// GoString keeps %#v from printing secrets too.
func (t Token) GoString() string { return t.String() }

func setOrNot(s string) string {
	if s == "" {
		return "<not set>"
	}
	return "<set>"
}
