package redact

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	const tok = "hvs.CAESIJlU9Xq8" // a Vault-token-like value
	tests := []struct {
		name, in string
		secrets  []string
		want     string
	}{
		{"a short value never garbles the message", "vault token login failed: check the token from VAULT_TOKEN: permission denied",
			[]string{"t"}, "vault token login failed: check the token from VAULT_TOKEN: permission denied"},
		{"a seven-byte value is too short to be a credential", "the secret abcdefg is wrong", []string{"abcdefg"}, "the secret abcdefg is wrong"},
		{"a whole token is masked", "vault said: bad token " + tok + ".", []string{tok}, "vault said: bad token <redacted>."},
		{"in JSON and key=value", `{"token":"` + tok + `"} token=` + tok + `&x=1`, []string{tok}, `{"token":"<redacted>"} token=<redacted>&x=1`},
		{"every occurrence", tok + " " + tok, []string{tok}, "<redacted> <redacted>"},
		{"not inside a longer word", "password1 mypassword1x", []string{"password1"}, "<redacted> mypassword1x"},
		{"a secret ending in punctuation is masked next to letters", "x=s3cret+/=abc", []string{"s3cret+/="}, "x=<redacted>abc"},
		{"the longer secret first", "id:" + tok + "-more", []string{tok, tok + "-more"}, "id:<redacted>"},
		{"empty secrets are ignored", "nothing to hide", []string{"", ""}, "nothing to hide"},
		{"a glued occurrence does not hide a later whole one", "a" + tok + " " + tok, []string{tok}, "a" + tok + " <redacted>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := String(tt.in, tt.secrets...); got != tt.want {
				t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzString: masking never lets a masked-length secret through as a whole
// token, and never changes text that does not contain the secret.
func FuzzString(f *testing.F) {
	f.Add("vault said hvs.CAESIJlU9Xq8 twice hvs.CAESIJlU9Xq8", "hvs.CAESIJlU9Xq8")
	f.Add("tttt t", "t")
	f.Add("aaaaaaaaaaaa", "aaaaaaaa")
	f.Fuzz(func(t *testing.T, s, secret string) {
		got := String(s, secret)
		if !strings.Contains(s, secret) || len(secret) < MinLen {
			if got != s {
				t.Fatalf("String(%q, %q) changed text without a maskable secret: %q", s, secret, got)
			}
			return
		}
		if got == s && wholeTokenSomewhere(s, secret) {
			t.Fatalf("String(%q, %q) masked nothing", s, secret)
		}
	})
}

func wholeTokenSomewhere(s, secret string) bool {
	for i := 0; i+len(secret) <= len(s); i++ {
		if s[i:i+len(secret)] == secret && wholeToken(s, i, i+len(secret), secret) {
			return true
		}
	}
	return false
}
