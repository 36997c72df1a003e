package vaultstore

import (
	"errors"
	"fmt"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
)

// Sentinel errors. Callers test them with errors.Is; the text around them
// names the Vault path and the cause.
var (
	// ErrNotFound means no record is stored for the carrier/environment.
	ErrNotFound = errors.New("no token record in vault")
	// ErrConflict means a check-and-set write lost: someone else wrote the
	// record since it was read (or created it first). Re-read and decide again.
	ErrConflict = errors.New("token record changed in vault since it was read")
	// ErrUnavailable means Vault could not be asked: unreachable, sealed,
	// answering 5xx or 429, or timed out. The cause is wrapped too.
	ErrUnavailable = errors.New("vault unavailable")
	// ErrPermissionDenied means Vault answered 403: the token or its policy
	// does not allow the operation. Retrying will not help; an operator must.
	ErrPermissionDenied = errors.New("vault permission denied")
)

// casMismatch is the text of KV v2's answer (HTTP 400) to a check-and-set
// write whose version is not the current one.
const casMismatch = "check-and-set parameter did not match the current version"

// vaultError keeps a one-line message for logs while still unwrapping to the
// sentinel and to the library's error (e.g. *vaultapi.ResponseError, whose
// own Error text spans several lines).
type vaultError struct {
	msg   string
	kind  error // a sentinel, or nil
	cause error
}

func (e *vaultError) Error() string { return e.msg }

func (e *vaultError) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.kind != nil {
		errs = append(errs, e.kind)
	}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

// classify turns an error of the Vault client, for an operation on path,
// into the store's errors.
func classify(op, path string, err error) error {
	var re *vaultapi.ResponseError
	if !errors.As(err, &re) {
		// No HTTP answer at all: connection refused or reset, DNS, TLS, a
		// timeout, or the caller's context ended. All mean "cannot ask Vault".
		return &vaultError{
			msg:   fmt.Sprintf("%s %s: %v: %v", op, path, ErrUnavailable, err),
			kind:  ErrUnavailable,
			cause: err,
		}
	}
	answer := summarize(re)
	switch {
	case re.StatusCode == 400 && strings.Contains(strings.ToLower(answer), casMismatch):
		return &vaultError{msg: fmt.Sprintf("%s %s: %v", op, path, ErrConflict), kind: ErrConflict, cause: err}
	case re.StatusCode == 403:
		return &vaultError{
			msg:   fmt.Sprintf("vault denied access to %s (%s): check the policy of the vault token: %s", path, op, answer),
			kind:  ErrPermissionDenied,
			cause: err,
		}
	case re.StatusCode == 429 || re.StatusCode >= 500:
		// 503 is a sealed (or standby-without-forwarding) Vault; 429 a rate
		// limit quota. Both are transient from the store's point of view.
		return &vaultError{
			msg:   fmt.Sprintf("%s %s: %v: vault answered %d: %s", op, path, ErrUnavailable, re.StatusCode, answer),
			kind:  ErrUnavailable,
			cause: err,
		}
	case re.StatusCode == 404:
		// Reads turn 404 into "no secret"; a 404 error on a write means no
		// secrets engine is mounted there.
		return &vaultError{
			msg:   fmt.Sprintf("%s %s: vault has no such route (is a KV version 2 engine mounted there?): %s", op, path, answer),
			cause: err,
		}
	default:
		return &vaultError{
			msg:   fmt.Sprintf("%s %s: vault answered %d: %s", op, path, re.StatusCode, answer),
			cause: err,
		}
	}
}

// summarize renders Vault's error list on one line. A raw (non-JSON) body,
// e.g. a load balancer's HTML page, is cut short.
func summarize(re *vaultapi.ResponseError) string {
	s := strings.Join(re.Errors, "; ")
	s = strings.Join(strings.Fields(s), " ")
	const maxLen = 200
	if len(s) > maxLen {
		s = strings.ToValidUTF8(s[:maxLen], "") + "..."
	}
	if s == "" {
		return "no error message"
	}
	return s
}
