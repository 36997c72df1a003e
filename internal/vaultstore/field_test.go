package vaultstore

import (
	"errors"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/upsproxy/upsproxy/internal/testutil/vaultdevtest"
)

func TestReadField_AgainstARealVault(t *testing.T) {
	srv := vaultdevtest.Start(t)
	root := srv.Client(t)
	ctx := ctxT(t)
	const value, other = "the-client-secret-1", "another-value-42"
	kv := root.KVv2("secret")
	if _, err := kv.Put(ctx, "ups/main", map[string]any{"client_secret": value, "note": other, "n": 7, "blank": ""}); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "ups/gone", map[string]any{"client_secret": value}); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "ups/gone"); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().Mount("kv1", &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().WriteWithContext(ctx, "kv1/ups/main", map[string]any{"client_secret": value}); err != nil {
		t.Fatal(err)
	}

	got, err := ReadField(ctx, root, "secret/data/ups/main", "client_secret")
	if err != nil || got != value {
		t.Fatalf("ReadField = %q, %v; want the stored value", got, err)
	}

	tests := []struct {
		name, path, field string
		is                error
		sub               string
	}{
		{"missing secret", "secret/data/ups/nothing-here", "client_secret", ErrNoSecret, "read secret/data/ups/nothing-here"},
		{"deleted latest version", "secret/data/ups/gone", "client_secret", ErrNoSecret, "latest version is deleted"},
		{"missing field lists the names only", "secret/data/ups/main", "client_secert", ErrNoField, `field "client_secert": no such field in the vault secret (its fields: "blank", "client_secret", "n", "note")`},
		{"a number is not a string", "secret/data/ups/main", "n", ErrNoField, `field "n" is a number, not a string`},
		{"an empty field", "secret/data/ups/main", "blank", ErrNoField, `field "blank" is empty`},
		{"path without data/", "secret/ups/main", "client_secret", nil, "secret/ups/main"},
		{"a KV version 1 engine", "kv1/ups/main", "client_secret", nil, "not a KV version 2 secret"},
		{"no engine mounted", "nomount/data/ups/main", "client_secret", nil, "nomount/data/ups/main"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadField(ctx, root, tt.path, tt.field)
			if err == nil {
				t.Fatalf("no error, got a value of %d bytes", len(got))
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.sub) {
				t.Errorf("error %q does not say %q", err, tt.sub)
			}
			if strings.Contains(err.Error(), value) || strings.Contains(err.Error(), other) {
				t.Errorf("error shows a stored value: %q", err)
			}
		})
	}

	// A rotation is a new version: the next read gets it.
	if _, err := kv.Put(ctx, "ups/main", map[string]any{"client_secret": "rotated-secret-2"}); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadField(ctx, root, "secret/data/ups/main", "client_secret"); err != nil || got != "rotated-secret-2" {
		t.Fatalf("after rotation ReadField = %q, %v", got, err)
	}

	// A token whose policy does not cover the path: permission denied,
	// naming the path.
	limited := limitedClient(t, srv, "other", `path "secret/data/elsewhere" { capabilities = ["read"] }`)
	if _, err := ReadField(ctx, limited, "secret/data/ups/main", "client_secret"); !errors.Is(err, ErrPermissionDenied) || !strings.Contains(err.Error(), "secret/data/ups/main") {
		t.Errorf("read without the grant: %v, want permission denied naming the path", err)
	}

	// A sealed Vault is unavailable, not "missing".
	srv.Seal(t)
	if _, err := ReadField(ctx, root, "secret/data/ups/main", "client_secret"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("read from a sealed vault: %v, want ErrUnavailable", err)
	}
}
