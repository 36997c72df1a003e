package vaultstore

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestAuthOptionsNeverPrintTheirCredentials(t *testing.T) {
	const secret = "s.super-secret-credential-value"
	wrapped := AppRoleAuth{RoleID: secret, SecretIDFile: "/run/secrets/id", Wrapped: true}.withState().(AppRoleAuth)
	wrapped.unwrapped.wrappingToken, wrapped.unwrapped.secretID = secret, secret
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"token auth with a token", TokenAuth{Token: secret}, "token=<set>"},
		{"token auth with a token file", &TokenAuth{Token: secret, TokenFile: "/etc/upsproxy/token"}, "/etc/upsproxy/token"},
		{"approle auth", AppRoleAuth{RoleID: secret, SecretIDEnv: "SECRET_ID"}, "SECRET_ID"},
		{"approle auth holding an unwrapped secret id", wrapped, "wrapped=true"},
		{"approle auth by pointer", &wrapped, "role_id=<set>"},
		{"kubernetes auth", KubernetesAuth{Role: "upsproxy"}, "serviceaccount/token"},
		{"client options", ClientOptions{Address: "http://127.0.0.1:8200", Token: secret}, "token=<set>"},
		{"session options", SessionOptions{Client: ClientOptions{Token: secret}, Auth: wrapped, Logger: zap.NewNop()}, "role_id=<set>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
				out := fmt.Sprintf(verb, tc.v)
				if strings.Contains(out, secret) {
					t.Errorf("%s prints the credential: %s", verb, out)
				}
				if !strings.Contains(out, tc.want) {
					t.Errorf("%s = %s, want it to show %q", verb, out, tc.want)
				}
			}
		})
	}
}

func TestCredentialsAreTrimmedAndMalformedOnesRefusedWithoutEchoingThem(t *testing.T) {
	for _, tc := range []struct {
		name, in, want, wantErr string
	}{
		{name: "a trailing newline as echo writes it is dropped", in: "hvs.abc\n", want: "hvs.abc"},
		{name: "windows line ending and spaces are dropped", in: "  hvs.abc\r\n", want: "hvs.abc"},
		{name: "a jwt keeps its dots and dashes", in: "eyJ.a-b_c.d\n", want: "eyJ.a-b_c.d"},
		{name: "empty is refused", in: "", wantErr: "is empty"},
		{name: "only whitespace is refused", in: " \n\t", wantErr: "is empty"},
		{name: "two lines are refused", in: "hvs.first\nhvs.second\n", wantErr: "whitespace"},
		{name: "a key=value line is kept as one word", in: "VAULT_TOKEN=hvs.abc", want: "VAULT_TOKEN=hvs.abc"},
		{name: "control characters are refused", in: "hvs.a\x00b", wantErr: "control"},
		{name: "non-ascii is refused", in: "hvs.é", wantErr: "non-ASCII"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCredential(tc.in, "vault token")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseCredential(%q) error = %v, want one mentioning %q", tc.in, err, tc.wantErr)
				}
				if s := strings.TrimSpace(tc.in); s != "" && strings.Contains(err.Error(), s) {
					t.Fatalf("error echoes the value: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseCredential(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func FuzzParseCredential(f *testing.F) {
	for _, seed := range []string{"", "hvs.CAESIJ\n", " a b ", "\x00", "é", "eyJ.x.y\r\n", "\n\n", "s.abc def"} {
		f.Add(seed)
	}
	_, errEmpty := parseCredential("", "x")
	_, errBad := parseCredential("a b", "x")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := parseCredential(in, "x")
		if err != nil {
			// The error text must not depend on the value: then it cannot
			// leak any of it.
			if err.Error() != errEmpty.Error() && err.Error() != errBad.Error() {
				t.Fatalf("parseCredential(%q) error %q depends on the input", in, err)
			}
			return
		}
		if got == "" || strings.ContainsFunc(got, func(r rune) bool { return r <= ' ' || r > '~' }) {
			t.Fatalf("parseCredential(%q) = %q: empty, or holding whitespace, control or non-ASCII", in, got)
		}
		if !strings.Contains(in, got) {
			t.Fatalf("parseCredential(%q) = %q, which is not part of the input", in, got)
		}
	})
}

func TestTokenFileWinsOverVaultTokenAndIsReadAtEachLogin(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	writeFile(t, file, "hvs.from-file-1\n")
	a := TokenAuth{Token: "hvs.from-env", TokenFile: file}
	for _, want := range []string{"hvs.from-file-1", "hvs.from-file-2"} {
		got, source, err := a.token()
		if err != nil || got != want || !strings.Contains(source, file) {
			t.Fatalf("token() = %q from %q, %v; want %q from the file", got, source, err, want)
		}
		writeFile(t, file, "hvs.from-file-2")
	}
	got, source, err := TokenAuth{Token: "hvs.from-env\n"}.token()
	if err != nil || got != "hvs.from-env" || source != EnvToken {
		t.Fatalf("token() without file = %q from %q, %v; want VAULT_TOKEN's, trimmed", got, source, err)
	}
}

func TestAuthMountPathsAcceptTheVaultAgentSpelling(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "approle"},
		{"approle", "approle"},
		{"/approle/", "approle"},
		{"auth/approle", "approle"},
		{"auth/teams/ops-approle/", "teams/ops-approle"},
	} {
		if got := authMountPath(tc.in, "approle"); got != tc.want {
			t.Errorf("authMountPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLoginRetriesBackOffExponentiallyWithJitterUpToTheMaximum(t *testing.T) {
	s := &Session{minRetry: 100 * time.Millisecond, maxRetry: time.Second}
	for _, tc := range []struct {
		failures int
		max      time.Duration
	}{
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{3, 400 * time.Millisecond},
		{4, 800 * time.Millisecond},
		{5, time.Second},
		{60, time.Second},
	} {
		for range 50 {
			d := s.backoff(tc.failures)
			if d < tc.max/2 || d > tc.max {
				t.Fatalf("backoff after %d failures = %s, want within [%s, %s]", tc.failures, d, tc.max/2, tc.max)
			}
		}
	}
}
