package tokens

import (
	"time"

	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// State is the verdict on a carrier/environment's tokens, as an admin must
// act on it. Only the refresh token matters: the proxy renews access tokens
// itself, and only a login renews a refresh token.
type State string

// The states Assess returns.
const (
	// StateOK: nothing to do.
	StateOK State = "ok"
	// StateExpiring: the refresh token expires within the warning window;
	// an admin should log in again before it does.
	StateExpiring State = "expiring"
	// StateExpired: the refresh token has expired. Requests are still
	// served while the last access token lives (Health.Err is nil until
	// then); an admin must log in again.
	StateExpired State = "expired"
	// StateRejected: UPS refused the refresh token before its expiry (a
	// login elsewhere, a revoked app); an admin must log in again.
	StateRejected State = "rejected"
	// StateNotLoggedIn: no tokens are stored; an admin must log in.
	StateNotLoggedIn State = "not logged in"
	// StateNotFetched: a client_credentials carrier the proxy has not
	// minted a token for yet, which it does on the first request.
	StateNotFetched State = "not fetched yet"
	// StateUnknown: not judged yet (/status of a carrier whose record this
	// replica has not read yet). Assess never returns it.
	StateUnknown State = "unknown"
)

// NeedsLogin reports whether only an admin's `upsproxy login` fixes s.
func (s State) NeedsLogin() bool {
	return s == StateExpiring || s == StateExpired || s == StateRejected || s == StateNotLoggedIn
}

// Subject names what Assess judges: a carrier in one environment, as
// configured (or as stored, for tokens of a carrier no longer configured).
type Subject struct {
	Carrier     string
	Environment ups.Environment
	// Grant is ups.GrantAuthorizationCode or ups.GrantClientCredentials; "" means
	// the stored record's, else authorization code.
	Grant string
	// Inactive: the carrier is configured inactive (its requests are
	// refused, so its tokens are not kept fresh).
	Inactive bool
}

// Health is the one judgement of a carrier/environment's tokens. Every
// place that tells a person about token health renders it: `token list`,
// `token check`, the reminder log lines, the broker's error state and
// /status; email reminders and a web console can render it too. It holds
// no token values and marshals as JSON.
type Health struct {
	Carrier     string          `json:"carrier"`
	Environment ups.Environment `json:"environment"`
	Grant       string          `json:"grant"`
	// State is the verdict (see the State constants).
	State State `json:"state"`
	// Active is false for a carrier configured inactive.
	Active bool `json:"active"`
	// AccessExpires is when the current access token expires (zero: none).
	AccessExpires time.Time `json:"access_token_expires,omitzero"`
	// RefreshExpires is when the refresh token expires (zero: unknown, or a
	// client_credentials carrier, which has none).
	RefreshExpires time.Time `json:"refresh_token_expires,omitzero"`
	// DaysLeft is the whole days until RefreshExpires (0 when less than a
	// day or past); nil when RefreshExpires is unknown or not applicable.
	DaysLeft *int `json:"days_left,omitempty"`
	// RejectedAt is when UPS rejected the refresh token (StateRejected).
	RejectedAt time.Time `json:"rejected_at,omitzero"`
	// LoginCommand is what an admin runs when State.NeedsLogin.
	LoginCommand string `json:"login_command,omitempty"`
	// Serving: requests are answered with a token from this record now.
	// An expired refresh token's last access token still serves until it
	// expires; not-fetched client_credentials carriers mint one on demand.
	Serving bool `json:"serving"`
	// Cause is why State needs a login (*RefreshExpiredError or
	// ErrNotLoggedIn), nil otherwise: what requests get once nothing can be
	// served (Err).
	Cause error `json:"-"`
	// ErrorCode is the client-facing code of Cause (UPSPROXY_...), or of
	// the broker's last error on /status. Assess leaves it empty: codes
	// belong to the proxy's one error mapper, so whoever renders Health
	// fills it in with WithCode.
	ErrorCode string `json:"error_code,omitempty"`
}

// Err is what a request for this carrier gets right now because of the
// stored tokens, nil while requests are served: the broker's error state.
func (h Health) Err() error {
	if h.Serving {
		return nil
	}
	return h.Cause
}

// Assess judges the stored record of sub as of now; rec is nil when
// nothing is stored. warnBefore is the reminder window (reminders'
// warn_before): a refresh token expiring within it is StateExpiring.
func Assess(sub Subject, rec *vaultstore.Record, now time.Time, warnBefore time.Duration) Health {
	h := Health{
		Carrier: sub.Carrier, Environment: sub.Environment, Grant: sub.Grant, Active: !sub.Inactive,
	}
	if h.Grant == "" && rec != nil {
		h.Grant = rec.Grant
	}
	if h.Grant == "" {
		h.Grant = ups.GrantAuthorizationCode
	}
	login := LoginCommand(sub.Carrier, sub.Environment)
	if h.Grant == ups.GrantClientCredentials {
		// No refresh token, no login: the proxy mints access tokens itself.
		h.State, h.Serving = StateNotFetched, true
		if rec != nil {
			h.State, h.AccessExpires = StateOK, rec.Token.ExpiresAt
		}
		return h
	}
	if rec == nil || (rec.Token.AccessToken == "" && rec.Token.RefreshToken == "") {
		h.State, h.Cause, h.LoginCommand = StateNotLoggedIn, ErrNotLoggedIn, login
		return h
	}
	h.AccessExpires, h.RefreshExpires = rec.Token.ExpiresAt, rec.Token.RefreshExpiresAt
	if exp := h.RefreshExpires; !exp.IsZero() {
		d := DaysLeft(exp, now)
		h.DaysLeft = &d
	}
	exp := h.RefreshExpires
	h.Serving = true
	switch {
	case rec.Rejected:
		// Refused by UPS: even a live access token is not trusted.
		h.State, h.RejectedAt, h.Serving = StateRejected, rec.RejectedAt, false
		h.Cause = &RefreshExpiredError{Carrier: sub.Carrier, Environment: sub.Environment, ExpiredAt: rec.RejectedAt, Rejected: true}
	case exp.IsZero():
		h.State = StateOK // UPS did not say; the proxy finds out when it refreshes
	case !now.Before(exp):
		h.State = StateExpired
		h.Cause = &RefreshExpiredError{Carrier: sub.Carrier, Environment: sub.Environment, ExpiredAt: exp}
		// The last access token serves until it expires.
		h.Serving = now.Before(rec.Token.ExpiresAt)
	case exp.Sub(now) <= warnBefore:
		h.State = StateExpiring
	default:
		h.State = StateOK
	}
	if h.State.NeedsLogin() {
		h.LoginCommand = login
	}
	return h
}

// WithCode fills ErrorCode from Cause with code (the proxy's mapper,
// proxy.TokenErrorCode); a nil code leaves it as it is.
func (h Health) WithCode(code func(error) string) Health {
	if code != nil && h.Cause != nil {
		h.ErrorCode = code(h.Cause)
	}
	return h
}

// DaysLeft is the whole days from now until t (0 when less than a day or past).
func DaysLeft(t, now time.Time) int {
	d := t.Sub(now)
	if d <= 0 {
		return 0
	}
	return int(d / (24 * time.Hour))
}
