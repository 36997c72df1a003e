package config

import (
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
)

// Vault says where the tokens live and how to log in to Vault.
type Vault struct {
	// Address is empty when the file does not set it: the caller then uses
	// VAULT_ADDR.
	Address string
	// Mount is the KV v2 mount; Prefix the path under it, without slashes
	// at either end. Tokens live under <Mount>/data/<Prefix>/...
	Mount, Prefix string
	// CACert is a PEM bundle to verify Vault's certificate; empty means the
	// system roots (or VAULT_CACERT, as the caller decides).
	CACert string
	Auth   VaultAuth
}

// Vault auth methods.
const (
	AuthToken      = "token"
	AuthAppRole    = "approle"
	AuthKubernetes = "kubernetes"
)

// Defaults of the vault block.
const (
	DefaultVaultMount          = "secret"
	DefaultVaultPrefix         = "upsproxy"
	DefaultAppRoleMountPath    = "approle"
	DefaultKubernetesMountPath = "kubernetes"
	DefaultKubernetesTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
)

// VaultAuth is the one auth method configured. Method names it and exactly
// the matching pointer is non-nil. Without an auth block the method is token.
type VaultAuth struct {
	Method     string
	Token      *VaultTokenAuth
	AppRole    *VaultAppRoleAuth
	Kubernetes *VaultKubernetesAuth
}

// VaultTokenAuth uses a Vault token: from TokenFile when set, otherwise
// from VAULT_TOKEN.
type VaultTokenAuth struct {
	TokenFile string
}

// VaultAppRoleAuth logs in with AppRole. The secret ID is read at login time
// from SecretIDFile or from the environment variable SecretIDEnv (exactly
// one is set) so it can be rotated without editing the configuration.
type VaultAppRoleAuth struct {
	RoleID       string
	SecretIDFile string
	SecretIDEnv  string
	// Wrapped means the secret ID is a response-wrapping token to unwrap.
	Wrapped   bool
	MountPath string
}

// VaultKubernetesAuth logs in with the pod's service account token.
type VaultKubernetesAuth struct {
	Role      string
	TokenFile string
	MountPath string
}

type rawVault struct {
	Address *string    `hcl:"address,optional"`
	Mount   *string    `hcl:"mount,optional"`
	Prefix  *string    `hcl:"prefix,optional"`
	CACert  string     `hcl:"ca_cert,optional"`
	Auth    []*rawAuth `hcl:"auth,block"`
	Body    hcl.Body   `hcl:",body"`
}

// rawAuth defers the body: its schema depends on the label.
type rawAuth struct {
	Method      string    `hcl:"method,label"`
	MethodRange hcl.Range `hcl:"method,label_range"`
	Remain      hcl.Body  `hcl:",remain"`
	DeclRange   hcl.Range `hcl:",def_range"`
}

type rawTokenAuth struct {
	TokenFile string   `hcl:"token_file,optional"`
	Body      hcl.Body `hcl:",body"`
}

type rawAppRoleAuth struct {
	RoleID       *string  `hcl:"role_id,optional"`
	SecretIDFile string   `hcl:"secret_id_file,optional"`
	SecretIDEnv  string   `hcl:"secret_id_env,optional"`
	Wrapped      bool     `hcl:"wrapped,optional"`
	MountPath    *string  `hcl:"mount_path,optional"`
	Body         hcl.Body `hcl:",body"`
}

type rawKubernetesAuth struct {
	Role      *string  `hcl:"role,optional"`
	TokenFile *string  `hcl:"token_file,optional"`
	MountPath *string  `hcl:"mount_path,optional"`
	Body      hcl.Body `hcl:",body"`
}

// authMethodSchemas maps each auth block label to its body's schema. The
// example-configuration test walks it so a new method cannot go
// undocumented.
func authMethodSchemas() map[string]any {
	return map[string]any{
		AuthToken:      &rawTokenAuth{},
		AuthAppRole:    &rawAppRoleAuth{},
		AuthKubernetes: &rawKubernetesAuth{},
	}
}

func (r *rawVault) build(bd *builder) (Vault, hcl.Diagnostics) {
	out := Vault{
		Mount:  DefaultVaultMount,
		Prefix: DefaultVaultPrefix,
		Auth:   VaultAuth{Method: AuthToken, Token: &VaultTokenAuth{}},
	}
	if r == nil {
		return out, nil
	}
	var diags hcl.Diagnostics
	b := bd.block(r.Body, hcl.Range{})

	if b.given("address", r.Address != nil) {
		if _, why := httpURL(*r.Address); why != "" {
			diags = append(diags, b.errorf("address", "Invalid Vault address",
				"vault address must be an absolute URL like \"https://vault.internal:8200\": %s.", why))
		} else {
			out.Address = *r.Address
		}
	}
	pathPart := func(name string, p *string, def string) string {
		if !b.given(name, p != nil) {
			return def
		}
		v := strings.Trim(*p, "/")
		if v == "" {
			diags = append(diags, b.errorf(name, "Invalid Vault "+name, "vault %s must not be empty.", name))
			return def
		}
		return v
	}
	out.Mount = pathPart("mount", r.Mount, DefaultVaultMount)
	out.Prefix = pathPart("prefix", r.Prefix, DefaultVaultPrefix)
	out.CACert = bd.path(r.CACert)

	for i, a := range r.Auth {
		if i > 0 {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate auth block",
				Detail:   "Only one vault auth block is allowed; another was defined at " + position(&r.Auth[0].DeclRange) + ".",
				Subject:  a.DeclRange.Ptr(),
			})
			continue
		}
		auth, d := a.build(bd)
		diags = append(diags, d...)
		out.Auth = auth
	}
	return out, diags
}

func (a *rawAuth) build(bd *builder) (VaultAuth, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	// The body's schema depends on the method, so it is decoded here; its
	// diagnostics join the decode set so failed() knows about them.
	decode := func(v any) {
		diags = dropFollowUpErrors(gohcl.DecodeBody(a.Remain, bd.ctx, v))
		bd.decodeDiags = append(bd.decodeDiags, diags...)
	}
	switch a.Method {
	case AuthToken:
		var raw rawTokenAuth
		decode(&raw)
		return VaultAuth{Method: AuthToken, Token: &VaultTokenAuth{TokenFile: bd.path(raw.TokenFile)}}, diags

	case AuthAppRole:
		var raw rawAppRoleAuth
		decode(&raw)
		b := bd.block(raw.Body, a.DeclRange)
		out := &VaultAppRoleAuth{
			SecretIDFile: bd.path(raw.SecretIDFile),
			SecretIDEnv:  raw.SecretIDEnv,
			Wrapped:      raw.Wrapped,
			MountPath:    strings.Trim(deref(raw.MountPath, DefaultAppRoleMountPath), "/"),
		}
		switch {
		case b.absent("role_id", raw.RoleID != nil):
			diags = append(diags, b.missing("role_id", "AppRole login needs the role ID"))
		case !b.given("role_id", raw.RoleID != nil):
		case *raw.RoleID == "":
			diags = append(diags, b.errorf("role_id", "Invalid role_id", "role_id must not be empty."))
		default:
			out.RoleID = *raw.RoleID
		}
		switch {
		case raw.SecretIDFile == "" && raw.SecretIDEnv == "" && !b.failed("secret_id_file") && !b.failed("secret_id_env"):
			diags = append(diags, b.blockErrorf("Missing AppRole secret ID source",
				"An approle auth block needs secret_id_file (a file holding the secret ID) or secret_id_env (the environment variable holding it)."))
		case raw.SecretIDFile != "" && raw.SecretIDEnv != "":
			diags = append(diags, b.errorf("secret_id_env", "Conflicting AppRole secret ID sources",
				"Set only one of secret_id_file and secret_id_env."))
		}
		if b.given("mount_path", raw.MountPath != nil) && out.MountPath == "" {
			diags = append(diags, b.errorf("mount_path", "Invalid mount_path", "mount_path must not be empty."))
		}
		return VaultAuth{Method: AuthAppRole, AppRole: out}, diags

	case AuthKubernetes:
		var raw rawKubernetesAuth
		decode(&raw)
		b := bd.block(raw.Body, a.DeclRange)
		out := &VaultKubernetesAuth{
			TokenFile: bd.path(deref(raw.TokenFile, DefaultKubernetesTokenFile)),
			MountPath: strings.Trim(deref(raw.MountPath, DefaultKubernetesMountPath), "/"),
		}
		switch {
		case b.absent("role", raw.Role != nil):
			diags = append(diags, b.missing("role", "Kubernetes login needs the Vault role bound to the service account"))
		case !b.given("role", raw.Role != nil):
		case *raw.Role == "":
			diags = append(diags, b.errorf("role", "Invalid role", "role must not be empty."))
		default:
			out.Role = *raw.Role
		}
		if b.given("token_file", raw.TokenFile != nil) && *raw.TokenFile == "" {
			diags = append(diags, b.errorf("token_file", "Invalid token_file", "token_file must not be empty."))
		}
		if b.given("mount_path", raw.MountPath != nil) && out.MountPath == "" {
			diags = append(diags, b.errorf("mount_path", "Invalid mount_path", "mount_path must not be empty."))
		}
		return VaultAuth{Method: AuthKubernetes, Kubernetes: out}, diags

	default:
		return VaultAuth{}, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Unknown Vault auth method",
			Detail:   "The vault auth method " + strconv.Quote(a.Method) + " is not supported; use \"token\", \"approle\" or \"kubernetes\".",
			Subject:  a.MethodRange.Ptr(),
			Context:  a.DeclRange.Ptr(),
		}}
	}
}
