package vaultstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
)

// DefaultAppRoleMountPath is where the AppRole auth method is mounted
// unless AppRoleAuth.MountPath says otherwise (auth/approle).
const DefaultAppRoleMountPath = "approle"

// AppRoleAuth logs in with Vault's AppRole auth method. The secret ID comes
// from SecretIDFile or from the environment variable SecretIDEnv (exactly
// one is set) and is read again at every login, so that it can be rotated
// without a restart. Its String method shows neither the role ID nor where
// the secret ID lives beyond file and variable names.
type AppRoleAuth struct {
	// RoleID is the role's role_id.
	RoleID string
	// SecretIDFile is a file holding the secret ID.
	SecretIDFile string
	// SecretIDEnv names an environment variable holding the secret ID.
	SecretIDEnv string
	// Wrapped means the file or variable holds a response-wrapping token
	// that wraps the secret ID (`vault write -wrap-ttl=... auth/approle/
	// role/<role>/secret-id`), as a trusted orchestrator delivers it. A
	// Session unwraps each wrapping token once and keeps the secret ID in
	// memory for later logins, also when the file is removed after the
	// first read; a new wrapping token in the file is unwrapped at the next
	// login.
	Wrapped bool
	// MountPath is the AppRole mount, default "approle"; a leading "auth/"
	// is accepted, as Vault Agent configurations write it.
	MountPath string
	// Getenv reads SecretIDEnv; nil means os.Getenv. Tests inject a map
	// instead of mutating the process environment.
	Getenv func(string) string

	// unwrapped remembers the secret ID behind the last wrapping token. A
	// wrapping token can be unwrapped only once, yet a Session logs in
	// again whenever its token reaches its max TTL: without the memory,
	// every re-login would need a fresh wrapping token. Vault Agent keeps
	// the secret ID in memory the same way. Set by the Session (withState);
	// nil for a bare AppRoleAuth, which then unwraps at every login.
	unwrapped *unwrapCache
}

type unwrapCache struct {
	mu            sync.Mutex
	wrappingToken string
	secretID      string
}

// Login reads the secret ID (unwrapping it when Wrapped) and logs in at
// auth/<MountPath>/login.
func (a AppRoleAuth) Login(ctx context.Context, client *vaultapi.Client) (*vaultapi.Secret, error) {
	if a.RoleID == "" {
		return nil, errors.New("vault approle login failed: no role ID: set role_id in the vault auth \"approle\" block")
	}
	value, source, err := a.secretIDValue()
	secretID := value
	switch {
	case err != nil && a.Wrapped && errors.Is(err, fs.ErrNotExist) && a.rememberedSecretID() != "":
		// The file was removed once read, as orchestrators delivering
		// wrapped secret IDs may do: keep the secret ID it gave.
		secretID = a.rememberedSecretID()
	case err != nil:
		return nil, fmt.Errorf("vault approle login failed: %w", err)
	case a.Wrapped:
		if secretID, err = a.unwrap(ctx, client, value, source); err != nil {
			return nil, err
		}
	}
	mount := authMountPath(a.MountPath, DefaultAppRoleMountPath)
	// The library's own file and environment readers are not used: they
	// would keep the value out of reach of the redaction below and trim
	// only a trailing "\n".
	method, err := approle.NewAppRoleAuth(a.RoleID, &approle.SecretID{FromString: secretID}, approle.WithMountPath(mount))
	if err != nil {
		return nil, fmt.Errorf("vault approle login failed: %w", err)
	}
	secret, err := method.Login(ctx, client)
	if err != nil {
		return nil, withMountHint(loginError(a.Method(), fmt.Sprintf("log in at auth/%s/login with the secret ID from %s", mount, source),
			err, secretID, value), "AppRole", mount)
	}
	return loginAnswer(a.Method(), secret)
}

// secretIDValue reads the secret ID (or its wrapping token) and says where
// it came from.
func (a AppRoleAuth) secretIDValue() (value, source string, err error) {
	what := "approle secret ID"
	if a.Wrapped {
		what = "approle secret ID wrapping token"
	}
	switch {
	case a.SecretIDFile != "" && a.SecretIDEnv != "":
		return "", "", errors.New("both a secret ID file and a secret ID environment variable are set: set only one")
	case a.SecretIDFile != "":
		v, err := readCredentialFile(a.SecretIDFile, what)
		return v, "file " + a.SecretIDFile, err
	case a.SecretIDEnv != "":
		getenv := a.Getenv
		if getenv == nil {
			getenv = os.Getenv
		}
		v, err := credentialFromEnv(getenv, a.SecretIDEnv, what)
		return v, "environment variable " + a.SecretIDEnv, err
	default:
		return "", "", errors.New("no secret ID source: set secret_id_file or secret_id_env in the vault auth \"approle\" block")
	}
}

// unwrap exchanges a wrapping token for the secret ID it wraps, or returns
// the secret ID remembered for that same token.
//
// This does what approle.WithWrappingToken does, plus the memory: the
// library offers no way to keep the unwrapped secret ID.
func (a AppRoleAuth) unwrap(ctx context.Context, client *vaultapi.Client, wrappingToken, source string) (string, error) {
	if c := a.unwrapped; c != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.wrappingToken == wrappingToken && c.secretID != "" {
			return c.secretID, nil
		}
	}
	secret, err := client.Logical().UnwrapWithContext(ctx, wrappingToken)
	// On a client without a token, Unwrap sends the wrapping token as the
	// client's token and leaves it set; the login must not carry it.
	client.ClearToken()
	step := "unwrap the secret ID from " + source
	if err != nil {
		err = loginError(a.Method(), step, err, wrappingToken)
		var re *vaultapi.ResponseError
		if errors.As(err, &re) && re.StatusCode < 500 {
			return "", fmt.Errorf("%w: a wrapping token can be unwrapped only once and expires with its wrap TTL: deliver a fresh one", err)
		}
		return "", err
	}
	var secretID string
	if secret != nil && secret.Data != nil {
		secretID, _ = secret.Data["secret_id"].(string)
	}
	if secretID == "" {
		return "", fmt.Errorf("vault approle login failed: %s: the wrapped answer holds no secret_id: does it wrap an AppRole secret ID?", step)
	}
	if c := a.unwrapped; c != nil {
		c.wrappingToken, c.secretID = wrappingToken, secretID
	}
	return secretID, nil
}

// rememberedSecretID is the secret ID unwrapped last, if any.
func (a AppRoleAuth) rememberedSecretID() string {
	c := a.unwrapped
	if c == nil {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.secretID
}

// withState gives the copy a Session keeps its memory of unwrapped secret
// IDs.
func (a AppRoleAuth) withState() Authenticator {
	if a.Wrapped && a.unwrapped == nil {
		a.unwrapped = &unwrapCache{}
	}
	return a
}

// Method is "approle".
func (AppRoleAuth) Method() string { return "approle" }

// String shows the configuration without the role ID.
func (a AppRoleAuth) String() string {
	return fmt.Sprintf("vaultstore.AppRoleAuth{role_id=%s secret_id_file=%q secret_id_env=%q wrapped=%t mount_path=%q}",
		setOrNot(a.RoleID), a.SecretIDFile, a.SecretIDEnv, a.Wrapped, authMountPath(a.MountPath, DefaultAppRoleMountPath))
}

// GoString keeps %#v from printing the role ID and the remembered secret
// ID.
func (a AppRoleAuth) GoString() string { return a.String() }

// authMountPath cleans an auth method's mount path: no slashes at either
// end and no "auth/" in front, which the login path adds.
func authMountPath(p, def string) string {
	p = strings.Trim(p, "/")
	p = strings.TrimPrefix(p, "auth/")
	if p == "" {
		return def
	}
	return p
}

// withMountHint adds, to a login refused with 403, the likeliest cause
// besides a wrong credential: Vault answers a login at a path where no auth
// method is mounted with "permission denied" too.
func withMountHint(err error, kind, mount string) error {
	if errors.Is(err, ErrPermissionDenied) {
		return fmt.Errorf("%w (is the %s auth method enabled at auth/%s/?)", err, kind, mount)
	}
	return err
}

// stateful is implemented by authenticators that keep memory between
// logins; a Session gives itself its own copy.
type stateful interface {
	withState() Authenticator
}
