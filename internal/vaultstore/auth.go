package vaultstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"unicode"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/upsproxy/upsproxy/internal/redact"
)

// Authenticator obtains a Vault token. TokenAuth, AppRoleAuth and
// KubernetesAuth implement it; a Session calls it for the first login and
// again whenever the token can no longer be renewed.
type Authenticator interface {
	// Login obtains a token using client, which carries no token of its
	// own (the Session passes a clone of its client, so that a login never
	// disturbs requests in flight). The answer's Auth holds the token and
	// its lease (ClientToken, Renewable, LeaseDuration). Credentials kept
	// in files or environment variables are read again at every call, so
	// that rotated ones are picked up. Errors read "vault <method> login
	// failed: ..." and never contain a credential.
	Login(ctx context.Context, client *vaultapi.Client) (*vaultapi.Secret, error)
	// Method names the auth method for logs and errors: "token",
	// "approle" or "kubernetes".
	Method() string
}

// maxCredentialSize bounds what is read from a credential file. Vault
// tokens and AppRole secret IDs are under 200 bytes and Kubernetes
// service-account tokens a few kilobytes; a bigger file is the wrong file.
const maxCredentialSize = 64 << 10

// readCredentialFile reads a token, secret ID or JWT from path. what names
// the credential in errors, which never quote the file's content.
func readCredentialFile(path, what string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read %s from %s: %w", what, path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCredentialSize+1))
	if err != nil {
		return "", fmt.Errorf("read %s from %s: %w", what, path, err)
	}
	if len(b) > maxCredentialSize {
		return "", fmt.Errorf("read %s from %s: the file is larger than %d bytes: is it the right file?", what, path, maxCredentialSize)
	}
	v, err := parseCredential(string(b), what)
	if err != nil {
		return "", fmt.Errorf("read %s from %s: %w", what, path, err)
	}
	return v, nil
}

// credentialFromEnv reads a credential from the environment variable name.
func credentialFromEnv(getenv func(string) string, name, what string) (string, error) {
	v, err := parseCredential(getenv(name), what)
	if err != nil {
		return "", fmt.Errorf("read %s from environment variable %s: %w", what, name, err)
	}
	return v, nil
}

// parseCredential trims the surrounding whitespace that editors, `echo` and
// Kubernetes secrets add, and refuses what cannot be a credential: Vault
// tokens, secret IDs and JWTs are single printable words, and anything else
// would only fail later as an HTTP header or as a confusing login error.
func parseCredential(s, what string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("the %s is empty", what)
	}
	for _, r := range s {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || unicode.IsSpace(r) {
			// Say what is wrong without echoing any of the value.
			return "", fmt.Errorf("the %s holds whitespace, control or non-ASCII characters: is it the right file?", what)
		}
	}
	return s, nil
}

// loginError turns a failed login step into the error users see: one line,
// "vault <method> login failed: <step>: <why>", the sentinels ErrUnavailable
// (Vault could not be asked) or ErrPermissionDenied (403) kept for
// errors.Is, and every credential in secrets blanked out of the text should
// Vault ever echo one back.
func loginError(method, step string, err error, secrets ...string) error {
	var (
		why  string
		kind error
		re   *vaultapi.ResponseError
	)
	switch {
	case errors.As(err, &re):
		why = fmt.Sprintf("vault answered %d: %s", re.StatusCode, summarize(re))
		switch {
		case re.StatusCode == 403:
			kind = ErrPermissionDenied
		case re.StatusCode == 429 || re.StatusCode >= 500:
			kind = ErrUnavailable
		}
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		why = fmt.Sprintf("%v: %v", ErrUnavailable, err)
		kind = ErrUnavailable
	default:
		why = err.Error()
		// Anything else from the HTTP client (refused, reset, DNS, TLS) means
		// Vault could not be asked; our own file and validation errors are
		// made without an HTTP request and are not wrapped in a url.Error.
		if isTransportError(err) {
			why = fmt.Sprintf("%v: %v", ErrUnavailable, err)
			kind = ErrUnavailable
		}
	}
	msg := "vault " + method + " login failed"
	if step != "" {
		msg += ": " + step
	}
	// The safety net: whole tokens only, and never a value too short to be
	// a real credential (VAULT_TOKEN=t must not garble every "t").
	msg = redact.String(msg+": "+why, secrets...)
	return &vaultError{msg: msg, kind: kind, cause: err}
}

// isTransportError reports whether err comes from the HTTP client rather
// than from an answer of Vault.
func isTransportError(err error) bool {
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne)
}

// loginAnswer checks that a login answer carries a token.
func loginAnswer(method string, secret *vaultapi.Secret) (*vaultapi.Secret, error) {
	if secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "" {
		return nil, fmt.Errorf("vault %s login failed: vault's answer holds no client token", method)
	}
	return secret, nil
}

// setOrNot is how String methods show a secret: only whether it is there.
func setOrNot(s string) string {
	if s == "" {
		return "<not set>"
	}
	return "<set>"
}
