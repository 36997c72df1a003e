package tokens

import (
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
	case rec.Grant == ups.GrantClientCredentials:
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
// information, Assess's verdict, and what this replica knows of its last
// refresh and of UPS refusing fresh tokens.
type Status struct {
	Info
	// Health is Assess's verdict on the record in memory, its ErrorCode
	// the code requests get now (the broker's live error included).
	Health            Health    `json:"health"`
	Active            bool      `json:"active"`
	Loaded            bool      `json:"loaded"`
	PendingWrite      bool      `json:"pending_vault_write"`
	LastRefreshAt     time.Time `json:"last_refresh_attempt,omitzero"`
	LastRefreshResult string    `json:"last_refresh_result,omitempty"`
	LastError         string    `json:"last_error,omitempty"`
	LastErrorCode     string    `json:"last_error_code,omitempty"`
	// Refused is set once UPS answered 401 to a token the broker would not
	// renew again (see Broker.Invalidate).
	Refused *Refused `json:"ups_refused_fresh_token,omitempty"`
}

// Refused says UPS keeps refusing tokens the broker has just renewed.
type Refused struct {
	Count  int64     `json:"count"`
	LastAt time.Time `json:"last_at"`
	Hint   string    `json:"hint"`
}

// Status reports every carrier/environment the broker serves, from memory.
func (b *Broker) Status() []Status {
	now := b.now()
	code := b.opts.ErrorCode
	if code == nil {
		code = func(error) string { return "" }
	}
	out := make([]Status, 0, len(b.entryMap()))
	for _, e := range b.entryMap() {
		c := *e.car()
		st := Status{Active: !c.Inactive}
		st.Carrier, st.Environment, st.Grant = c.Name, c.Environment, c.Grant
		var rec *vaultstore.Record
		if s := e.cur.Load(); s != nil {
			st.Loaded = true
			rec = &s.rec
			if s.rec.Token.AccessToken != "" || s.rec.Token.RefreshToken != "" {
				st.Info = Describe(s.rec, now)
				st.Grant = c.Grant // the config's, should the record predate a change
			}
			st.PendingWrite = s.dirty
			if s.err != nil {
				st.LastError = s.err.Error()
				st.LastErrorCode = code(s.err)
			}
		}
		if r := e.lastRefresh.Load(); r != nil {
			st.LastRefreshAt, st.LastRefreshResult = r.at, r.result
			if st.LastError == "" && r.err != "" {
				st.LastError, st.LastErrorCode = r.err, code(ErrRefreshFailed)
			}
		}
		if st.Loaded {
			st.Health = Assess(c.subject(), rec, now, time.Duration(b.warnBefore.Load())).WithCode(b.opts.ErrorCode)
		} else {
			// Not read from Vault yet: say so rather than guess.
			st.Health = Health{Carrier: c.Name, Environment: c.Environment, Grant: c.Grant, Active: !c.Inactive, State: StateUnknown}
		}
		if st.LastErrorCode != "" {
			st.Health.ErrorCode = st.LastErrorCode
		}
		if n, at := e.declined.Load(), e.declinedAt.Load(); n > 0 && at != nil {
			st.Refused = &Refused{Count: n, LastAt: *at, Hint: RefusedHint}
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
