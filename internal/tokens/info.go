package tokens

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// Info is the seed's "Access Token Information" of one stored record. It
// holds no token values.
type Info struct {
	Carrier             string          `json:"carrier"`
	Environment         ups.Environment `json:"environment"`
	Grant               string          `json:"grant"`
	TokenType           string          `json:"token_type"`
	TokenStatus         string          `json:"token_status"`
	TokenIssued         time.Time       `json:"token_issued"`
	TokenExpires        time.Time       `json:"token_expires"`
	TokenScope          string          `json:"token_scope"`
	RefreshTokenStatus  string          `json:"refresh_token_status"`
	RefreshTokenIssued  time.Time       `json:"refresh_token_issued,omitzero"`
	RefreshTokenExpires time.Time       `json:"refresh_token_expires,omitzero"`
	RefreshCount        int             `json:"refresh_count"`
	RefreshDaysLeft     int             `json:"refresh_token_days_left"`
	LastRefresh         time.Time       `json:"last_refresh,omitzero"`
	UpdatedBy           string          `json:"updated_by,omitempty"`
}

// Describe summarises a record as of now.
func Describe(rec vaultstore.Record, now time.Time) Info {
	t := rec.Token
	in := Info{
		Carrier: rec.Carrier, Environment: rec.Environment, Grant: rec.Grant,
		TokenType: t.TokenType, TokenIssued: t.IssuedAt, TokenExpires: t.ExpiresAt, TokenScope: t.Scope,
		RefreshTokenIssued: t.RefreshIssuedAt, RefreshTokenExpires: t.RefreshExpiresAt,
		RefreshCount: t.RefreshCount, LastRefresh: rec.LastRefresh, UpdatedBy: rec.UpdatedBy,
	}
	in.TokenStatus = status(t.Status, t.ExpiresAt, now)
	switch {
	case rec.Grant == GrantClientCredentials:
		in.RefreshTokenStatus = "none (client credentials)"
	case rec.Rejected:
		in.RefreshTokenStatus = "rejected by UPS at " + rec.RejectedAt.UTC().Format(time.RFC3339) + ": log in again"
	default:
		in.RefreshTokenStatus = status(t.RefreshTokenStatus, t.RefreshExpiresAt, now)
	}
	in.RefreshDaysLeft = DaysLeft(t.RefreshExpiresAt, now)
	return in
}

func status(upsStatus string, exp, now time.Time) string {
	if upsStatus == "" {
		upsStatus = "unknown"
	}
	if exp.IsZero() {
		return upsStatus
	}
	if !now.Before(exp) {
		return "expired"
	}
	return fmt.Sprintf("%s (valid for %s)", upsStatus, Humanize(exp.Sub(now)))
}

// Humanize shows a remaining lifetime the way a person reads it: days and
// hours beyond two days, otherwise hours, minutes and seconds.
func Humanize(d time.Duration) string {
	if d >= 48*time.Hour {
		days := d / (24 * time.Hour)
		return fmt.Sprintf("%dd%dh", days, (d-days*24*time.Hour)/time.Hour)
	}
	return d.Truncate(time.Second).String()
}

// Status is what /status shows of one carrier/environment: the token
// information plus what this replica knows of its last refresh.
type Status struct {
	Info
	Active            bool      `json:"active"`
	Loaded            bool      `json:"loaded"`
	PendingWrite      bool      `json:"pending_vault_write"`
	LastRefreshAt     time.Time `json:"last_refresh_attempt,omitzero"`
	LastRefreshResult string    `json:"last_refresh_result,omitempty"`
	LastError         string    `json:"last_error,omitempty"`
	LastErrorCode     string    `json:"last_error_code,omitempty"`
}

// Status reports every carrier/environment the broker serves, from memory.
func (b *Broker) Status() []Status {
	now := b.now()
	out := make([]Status, 0, len(b.entryMap()))
	for _, e := range b.entryMap() {
		st := Status{Active: !e.car().Inactive}
		st.Carrier, st.Environment, st.Grant = e.car().Name, e.car().Environment, e.car().Grant
		if s := e.cur.Load(); s != nil {
			st.Loaded = true
			if s.rec.Token.AccessToken != "" || s.rec.Token.RefreshToken != "" {
				st.Info = Describe(s.rec, now)
				st.Grant = e.car().Grant // the config's, should the record predate a change
			}
			st.PendingWrite = s.dirty
			if s.err != nil {
				st.LastError = s.err.Error()
				st.LastErrorCode = ErrorCode(s.err)
			}
		}
		if r := e.lastRefresh.Load(); r != nil {
			st.LastRefreshAt, st.LastRefreshResult = r.at, r.result
			if st.LastError == "" && r.err != "" {
				st.LastError, st.LastErrorCode = r.err, "UPSPROXY_TOKEN_REFRESH_FAILED"
			}
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Carrier != out[j].Carrier {
			return out[i].Carrier < out[j].Carrier
		}
		return out[i].Environment < out[j].Environment
	})
	return out
}

// ErrorCode is the client-facing code of a broker error ("" for others).
func ErrorCode(err error) string {
	var rerr *RefreshExpiredError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &rerr):
		return "UPSPROXY_REFRESH_TOKEN_EXPIRED"
	case errors.Is(err, ErrNotLoggedIn):
		return "UPSPROXY_NOT_LOGGED_IN"
	case errors.Is(err, ErrRefreshFailed):
		return "UPSPROXY_TOKEN_REFRESH_FAILED"
	case errors.Is(err, ErrStoreUnavailable):
		return "UPSPROXY_TOKEN_STORE_UNAVAILABLE"
	}
	return ""
}
