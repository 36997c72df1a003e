package ups

import (
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"testing"
)

// RFC 7636 section 4.1: 43 to 128 unreserved characters.
var verifierSyntax = regexp.MustCompile(`^[A-Za-z0-9\-._~]{43,128}$`)

func TestNewPKCEGivesAnRFC7636VerifierAndItsS256Challenge(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		verifier, challenge, err := NewPKCE()
		if err != nil {
			t.Fatal(err)
		}
		if !verifierSyntax.MatchString(verifier) {
			t.Fatalf("verifier %q violates RFC 7636", verifier)
		}
		sum := sha256.Sum256([]byte(verifier))
		if want := base64.RawURLEncoding.EncodeToString(sum[:]); challenge != want {
			t.Fatalf("challenge = %q, want base64url(sha256(verifier)) without padding %q", challenge, want)
		}
		if seen[verifier] {
			t.Fatal("NewPKCE repeated a verifier")
		}
		seen[verifier] = true
	}
}

func TestPKCEChallengeMatchesTheRFC7636Example(t *testing.T) {
	// RFC 7636 appendix B.
	if got := PKCEChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); got != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Errorf("PKCEChallenge = %q", got)
	}
}

func TestNewStateIsUnguessableAndURLSafe(t *testing.T) {
	a, err := NewState()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewState()
	if a == b || !verifierSyntax.MatchString(a) {
		t.Errorf("states %q and %q: want distinct URL-safe values of at least 43 characters", a, b)
	}
}
