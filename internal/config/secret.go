package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Secret is a configuration value that must never be printed: a UPS client
// secret, for example. It holds either the value itself (from env() or
// file()) or a reference into Vault (from vault()) that the caller resolves
// after connecting to Vault; the configuration loader never contacts Vault.
//
// Every way of printing a Secret (String, GoString, any fmt verb, JSON or
// text marshalling) shows only whether it is set or where it points.
type Secret struct {
	// Value is the secret itself; empty when unset or when it is a Vault
	// reference not yet resolved.
	Value string
	// VaultPath and VaultField locate the secret in Vault when the
	// configuration used vault("path", "field").
	VaultPath, VaultField string
}

// IsSet reports whether the secret has a value or a Vault reference.
func (s Secret) IsSet() bool { return s.Value != "" || s.IsVaultRef() }

// IsVaultRef reports whether the secret must still be read from Vault.
func (s Secret) IsVaultRef() bool { return s.VaultPath != "" }

// String returns "<set>", "<not set>" or "vault:path#field"; never the value.
func (s Secret) String() string {
	switch {
	case s.Value != "":
		return "<set>"
	case s.IsVaultRef():
		return "vault:" + s.VaultPath + "#" + s.VaultField
	default:
		return "<not set>"
	}
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return "config.Secret(" + s.String() + ")" }

// Format makes every fmt verb print the redacted form: without it %d or %x
// would fall back to printing the struct fields, value included.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = fmt.Fprint(f, s.GoString())
		return
	}
	_, _ = fmt.Fprint(f, s.String())
}

// MarshalText keeps encoding/json, zap's reflection encoder and friends from
// serialising the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// literalSecretWarning is the summary of the warning for a secret written
// in clear in the configuration file.
const literalSecretWarning = "client_secret is a literal in the config file; use env(), file() or vault()"

// secret evaluates a secret-valued attribute: a string (from env(), file()
// or, with a warning, a literal) or a vault() reference.
func (bd *builder) secret(b block, name string, expr hcl.Expression) (Secret, hcl.Diagnostics) {
	if expr == nil {
		return Secret{}, nil
	}
	v, diags := expr.Value(bd.ctx)
	if diags.HasErrors() || v.IsNull() || !v.IsWhollyKnown() {
		return Secret{}, diags
	}
	if v.Type().Equals(vaultRefType) {
		ref, ok := v.EncapsulatedValue().(*vaultRef)
		if !ok || ref == nil {
			return Secret{}, diags
		}
		return Secret{VaultPath: ref.Path, VaultField: ref.Field}, diags
	}
	sv, err := convert.Convert(v, cty.String)
	if err != nil || sv.IsNull() || sv.IsMarked() {
		return Secret{}, append(diags, b.errorf(name, "Invalid "+name,
			"%s must be a string: use env(\"NAME\"), file(\"path\") or vault(\"path\", \"field\").", name))
	}
	s := Secret{Value: sv.AsString()}
	if s.Value != "" && isLiteral(expr) {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  literalSecretWarning,
			Detail:   "Anyone who can read this file or its backups can use the UPS application. Move the secret to an environment variable, a file readable only by upsproxy, or Vault.",
			Subject:  b.valueRange(name),
			Context:  b.attrRange(name),
		})
	}
	return s, diags
}

// isLiteral reports whether expr computes its value without any function
// call or variable: evaluating it without an evaluation context succeeds
// only then. That covers quoted strings, heredocs and constant templates.
func isLiteral(expr hcl.Expression) bool {
	_, diags := expr.Value(nil)
	return !diags.HasErrors()
}
