package console

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/upsproxy/upsproxy/internal/tokens"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// Health of a row, as the console shows it.
const (
	healthOK          = "ok"
	healthExpiring    = "expiring"
	healthExpired     = "expired"
	healthRejected    = "rejected"
	healthNotLoggedIn = "not logged in"
	healthNotFetched  = "not fetched yet"
	healthUnknown     = "unknown"
)

// row is one carrier and environment on the overview and the carrier page.
// It holds no token values.
type row struct {
	Carrier     string
	Environment string
	Grant       string
	Active      bool
	// Health and Level (ok, warn, bad) decide how the row stands out.
	Health string
	Level  string
	Info   tokens.Info
	Stored bool
	// DaysLeft of the refresh token ("–" when unknown).
	DaysLeft string
	// ReadError: Vault could not be read for this row.
	ReadError string
	// What this replica knows of the last refresh.
	LastRefreshAt     time.Time
	LastRefreshResult string
	LastErrorCode     string
	LastError         string
	// Actions.
	CanLogin          bool
	RedirectURI       string
	RedirectToConsole bool
	Path              string
}

// judge reads a stored record (nil: nothing stored) into the fields the
// console shows. It is the console's only reading of token health, so
// switching to the tokens package's own judge is a change here alone.
func judge(car Carrier, rec *vaultstore.Record, now time.Time, warnBefore time.Duration) (info tokens.Info, health string) {
	cc := car.Grant == tokens.GrantClientCredentials
	if rec == nil || rec.Token.AccessToken == "" && rec.Token.RefreshToken == "" {
		info = tokens.Info{Carrier: car.Name, Environment: car.Environment, Grant: car.Grant}
		if cc {
			return info, healthNotFetched
		}
		return info, healthNotLoggedIn
	}
	info = tokens.Describe(*rec, now)
	info.Grant = car.Grant
	exp := rec.Token.RefreshExpiresAt
	switch {
	case cc:
		return info, healthOK // the proxy mints a new token whenever it needs one
	case rec.Rejected:
		return info, healthRejected
	case exp.IsZero():
		return info, healthOK // UPS did not say; the proxy finds out when it refreshes
	case !now.Before(exp):
		return info, healthExpired
	case exp.Sub(now) <= warnBefore:
		return info, healthExpiring
	}
	return info, healthOK
}

func level(health string) string {
	switch health {
	case healthOK, healthNotFetched:
		return "ok"
	case healthExpiring:
		return "warn"
	}
	return "bad"
}

// rows builds the rows of the given carriers from Vault and the broker.
func (c *Console) rows(ctx context.Context, cars []Carrier) []row {
	now := c.now()
	statuses := map[string]tokens.Status{}
	for _, st := range c.opts.Refresher.Status() {
		statuses[st.Carrier+"\x00"+string(st.Environment)] = st
	}
	warn := c.current().WarnBefore
	out := make([]row, 0, len(cars))
	for _, car := range cars {
		r := row{Carrier: car.Name, Environment: string(car.Environment), Grant: car.Grant, Active: !car.Inactive,
			RedirectURI: car.RedirectURI, Path: c.base + "/carriers/" + car.Name + "/" + string(car.Environment), DaysLeft: "–"}
		r.CanLogin = car.Grant != tokens.GrantClientCredentials && car.OAuth != nil
		r.RedirectToConsole = car.RedirectURI == c.callbackURL()
		rec, err := c.opts.Store.Get(ctx, car.Name, car.Environment)
		var recp *vaultstore.Record
		switch {
		case err == nil:
			recp, r.Stored = &rec, true
		case !errors.Is(err, vaultstore.ErrNotFound):
			r.ReadError = "Vault could not be read: " + err.Error()
		}
		r.Info, r.Health = judge(car, recp, now, warn)
		if r.ReadError != "" {
			r.Health = healthUnknown
		}
		r.Level = level(r.Health)
		if r.Stored && !r.Info.RefreshTokenExpires.IsZero() {
			r.DaysLeft = fmt.Sprint(r.Info.RefreshDaysLeft)
		}
		if st, ok := statuses[car.Name+"\x00"+string(car.Environment)]; ok {
			r.LastRefreshAt, r.LastRefreshResult = st.LastRefreshAt, st.LastRefreshResult
			r.LastErrorCode, r.LastError = st.LastErrorCode, st.LastError
		}
		out = append(out, r)
	}
	return out
}

// callbackURL is the redirect URI that brings UPS's redirect back here.
func (c *Console) callbackURL() string {
	u := *c.opts.PublicURL
	u.Path = c.base + "/callback"
	return u.String()
}
