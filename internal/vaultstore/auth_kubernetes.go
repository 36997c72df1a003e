package vaultstore

import (
	"context"
	"errors"
	"fmt"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/kubernetes"
)

// Defaults of KubernetesAuth.
const (
	DefaultKubernetesMountPath = "kubernetes"
	DefaultKubernetesTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
)

// KubernetesAuth logs in with Vault's Kubernetes auth method, presenting
// the pod's service-account token. It holds no secret itself; String is
// there for symmetry with the other methods.
type KubernetesAuth struct {
	// Role is the Vault role bound to the service account.
	Role string
	// TokenFile holds the service-account token, default
	// DefaultKubernetesTokenFile.
	TokenFile string
	// MountPath is the Kubernetes auth mount, default "kubernetes"; a
	// leading "auth/" is accepted.
	MountPath string
}

// Login reads the service-account token and logs in at
// auth/<MountPath>/login.
//
// The token is read at every login, not once: projected service-account
// tokens are rotated by the kubelet (hourly by default) and an old one is
// refused once it expires. kubernetes.WithServiceAccountTokenPath would not
// do: it reads the file once, when the login method is built.
func (a KubernetesAuth) Login(ctx context.Context, client *vaultapi.Client) (*vaultapi.Secret, error) {
	if a.Role == "" {
		return nil, errors.New("vault kubernetes login failed: no role: set role in the vault auth \"kubernetes\" block")
	}
	file := a.tokenFile()
	jwt, err := readCredentialFile(file, "kubernetes service account token")
	if err != nil {
		return nil, fmt.Errorf("vault kubernetes login failed: %w", err)
	}
	mount := authMountPath(a.MountPath, DefaultKubernetesMountPath)
	method, err := kubernetes.NewKubernetesAuth(a.Role, kubernetes.WithServiceAccountToken(jwt), kubernetes.WithMountPath(mount))
	if err != nil {
		return nil, fmt.Errorf("vault kubernetes login failed: %w", err)
	}
	secret, err := method.Login(ctx, client)
	if err != nil {
		return nil, withMountHint(loginError(a.Method(),
			fmt.Sprintf("log in at auth/%s/login as role %q with the service account token from %s", mount, a.Role, file), err, jwt),
			"Kubernetes", mount)
	}
	return loginAnswer(a.Method(), secret)
}

func (a KubernetesAuth) tokenFile() string {
	if a.TokenFile == "" {
		return DefaultKubernetesTokenFile
	}
	return a.TokenFile
}

// Method is "kubernetes".
func (KubernetesAuth) Method() string { return "kubernetes" }

// String shows the configuration.
func (a KubernetesAuth) String() string {
	return fmt.Sprintf("vaultstore.KubernetesAuth{role=%q token_file=%q mount_path=%q}",
		a.Role, a.tokenFile(), authMountPath(a.MountPath, DefaultKubernetesMountPath))
}

// GoString is String, as for the other methods.
func (a KubernetesAuth) GoString() string { return a.String() }
