package tokens

import (
	"errors"
	"fmt"
	"time"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// Sentinel errors of the broker. The proxy maps each to one client-facing
// error code; nothing else should inspect their text.
var (
	// ErrNotLoggedIn: no token record exists for the carrier/environment.
	ErrNotLoggedIn = errors.New("not logged in")
	// ErrStoreUnavailable: Vault is unreachable or sealed and no usable
	// token is in memory.
	ErrStoreUnavailable = errors.New("token store unavailable")
	// ErrRefreshFailed: UPS's token endpoint failed transiently (5xx, 429,
	// timeout, garbage) and no valid access token is left.
	ErrRefreshFailed = errors.New("token refresh failed")
	// ErrNotStored: UPS rotated the pair but Vault has not accepted it
	// yet; it is held in memory (and retried) but lost if the process ends.
	ErrNotStored = errors.New("new tokens not stored in Vault")
)

// RefreshExpiredError means the refresh token is past its expiry or UPS
// rejected it: only an admin's `upsproxy login` can fix it.
type RefreshExpiredError struct {
	Carrier     string
	Environment ups.Environment
	ExpiredAt   time.Time // zero when unknown
	Rejected    bool      // UPS rejected it before its stated expiry
}

func (e *RefreshExpiredError) Error() string {
	what := "expired"
	if e.Rejected {
		what = "was rejected by UPS"
	}
	at := ""
	if !e.ExpiredAt.IsZero() && !e.Rejected {
		at = " at " + e.ExpiredAt.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("The UPS refresh token for carrier %q (%s) %s%s. An admin must run: %s",
		e.Carrier, e.Environment, what, at, LoginCommand(e.Carrier, e.Environment))
}

// LoginCommand is the command an admin runs to mint new tokens.
func LoginCommand(carrier string, env ups.Environment) string {
	return fmt.Sprintf("upsproxy login --carrier %s --env %s", carrier, env)
}
