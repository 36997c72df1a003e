package ups

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"golang.org/x/oauth2"
)

// randomURLString returns n random bytes from crypto/rand, base64url
// encoded without padding.
func randomURLString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// NewPKCE returns a fresh PKCE code verifier (43 characters: 32 random
// bytes, base64url, as RFC 7636 recommends) and its S256 code challenge,
// base64url(SHA-256(verifier)) without padding.
func NewPKCE() (verifier, challenge string, err error) {
	verifier, err = randomURLString(32)
	if err != nil {
		return "", "", fmt.Errorf("generate PKCE code verifier: %w", err)
	}
	return verifier, PKCEChallenge(verifier), nil
}

// PKCEChallenge returns the S256 code challenge of a code verifier; the
// simulator uses it to check a verifier against the challenge it saw.
func PKCEChallenge(verifier string) string {
	return oauth2.S256ChallengeFromVerifier(verifier)
}

// NewState returns an unguessable state value for the authorize URL (32
// random bytes, base64url), to tie the pasted redirect to this login.
func NewState() (string, error) {
	s, err := randomURLString(32)
	if err != nil {
		return "", fmt.Errorf("generate OAuth state: %w", err)
	}
	return s, nil
}
