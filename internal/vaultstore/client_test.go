package vaultstore

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestNewClientTakesAddressAndTokenFromOptionsThenEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      ClientOptions
		env       map[string]string
		wantAddr  string
		wantToken string
		wantErr   string
	}{
		{
			name:      "options win over the environment",
			opts:      ClientOptions{Address: "https://vault.opts:8200", Token: "opts-token"},
			env:       map[string]string{EnvAddress: "https://vault.env:8200", EnvToken: "env-token"},
			wantAddr:  "https://vault.opts:8200",
			wantToken: "opts-token",
		},
		{
			name:      "environment fills empty options",
			env:       map[string]string{EnvAddress: "http://127.0.0.1:8200", EnvToken: "env-token"},
			wantAddr:  "http://127.0.0.1:8200",
			wantToken: "env-token",
		},
		{
			name:      "address from options, token from environment",
			opts:      ClientOptions{Address: "http://127.0.0.1:1234"},
			env:       map[string]string{EnvToken: "env-token"},
			wantAddr:  "http://127.0.0.1:1234",
			wantToken: "env-token",
		},
		{
			name:    "no address anywhere is an error naming VAULT_ADDR",
			env:     map[string]string{EnvToken: "env-token"},
			wantErr: "VAULT_ADDR",
		},
		{
			name:    "no token anywhere is an error naming VAULT_TOKEN",
			opts:    ClientOptions{Address: "http://127.0.0.1:8200"},
			wantErr: "VAULT_TOKEN",
		},
		{
			name:    "address without a scheme is refused",
			opts:    ClientOptions{Address: "vault.internal:8200", Token: "t"},
			wantErr: "invalid address",
		},
		{
			name:    "a CA file that does not exist is an error naming it",
			opts:    ClientOptions{Address: "https://vault.internal:8200", Token: "t", CACert: "/nonexistent/ca.pem"},
			wantErr: "/nonexistent/ca.pem",
		},
		{
			name:    "a CA file from VAULT_CACERT is used too",
			opts:    ClientOptions{Address: "https://vault.internal:8200", Token: "t"},
			env:     map[string]string{EnvCACert: "/nonexistent/env-ca.pem"},
			wantErr: "/nonexistent/env-ca.pem",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Getenv = envMap(tc.env)
			c, err := NewClient(tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NewClient error = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Address() != tc.wantAddr {
				t.Errorf("address = %q, want %q", c.Address(), tc.wantAddr)
			}
			if c.Token() != tc.wantToken {
				t.Errorf("token is not the expected one")
			}
		})
	}
}

func TestNewClientErrorsNeverContainTheToken(t *testing.T) {
	const token = "hvs.never-in-errors"
	_, err := NewClient(ClientOptions{Address: "not a url", Token: token, Getenv: envMap(nil)})
	if err == nil {
		t.Fatal("want an error for a bad address")
	}
	if strings.Contains(err.Error(), token) {
		t.Fatalf("error contains the token: %v", err)
	}
}

func TestNewClientTimeoutDefaultsAndOverrides(t *testing.T) {
	env := envMap(map[string]string{EnvAddress: "http://127.0.0.1:8200", EnvToken: "t"})
	c, err := NewClient(ClientOptions{Getenv: env})
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientTimeout() != DefaultTimeout {
		t.Errorf("default timeout = %s, want %s", c.ClientTimeout(), DefaultTimeout)
	}
	c, err = NewClient(ClientOptions{Getenv: env, Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientTimeout() != 3*time.Second {
		t.Errorf("timeout = %s, want 3s", c.ClientTimeout())
	}
}

func TestNewClientAcceptsAReadableCAFile(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, selfSignedPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := NewClient(ClientOptions{Address: "https://vault.internal:8200", Token: "t", CACert: ca, Getenv: envMap(nil)})
	if err != nil {
		t.Fatalf("NewClient with a valid CA file: %v", err)
	}
}

func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
