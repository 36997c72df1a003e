package console

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/upsproxy/upsproxy/internal/tokens"
	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
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
	// HealthCode is the error code requests get because of the health
	// (UPSPROXY_...), when a login is needed.
	HealthCode string
	Info       tokens.Info
	Stored     bool
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
// console shows: the token information, and the tokens package's one
// verdict on its health.
func judge(car Carrier, rec *vaultstore.Record, now time.Time, warnBefore time.Duration) (tokens.Info, tokens.Health) {
	h := tokens.Assess(tokens.Subject{Carrier: car.Name, Environment: car.Environment, Grant: car.Grant, Inactive: car.Inactive},
		rec, now, warnBefore)
	if rec == nil || rec.Token.AccessToken == "" && rec.Token.RefreshToken == "" {
		return tokens.Info{Carrier: car.Name, Environment: car.Environment, Grant: car.Grant}, h
	}
	info := tokens.Describe(*rec, now)
	info.Grant = car.Grant
	return info, h
}

// level is how a row stands out: amber for a login due soon, red for one
// needed now (or a state nobody could read).
func level(s tokens.State) string {
	switch s {
	case tokens.StateOK, tokens.StateNotFetched:
		return "ok"
	case tokens.StateExpiring:
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
		r.CanLogin = car.Grant != ups.GrantClientCredentials && car.OAuth != nil
		r.RedirectToConsole = car.RedirectURI == c.callbackURL()
		rec, err := c.opts.Store.Get(ctx, car.Name, car.Environment)
		var recp *vaultstore.Record
		switch {
		case err == nil:
			recp, r.Stored = &rec, true
		case !errors.Is(err, vaultstore.ErrNotFound):
			r.ReadError = "Vault could not be read: " + err.Error()
		}
		var h tokens.Health
		r.Info, h = judge(car, recp, now, warn)
		h = h.WithCode(c.opts.ErrorCode)
		r.Health, r.HealthCode = string(h.State), h.ErrorCode
		if r.ReadError != "" {
			r.Health = string(tokens.StateUnknown)
		}
		r.Level = level(tokens.State(r.Health))
		if h.DaysLeft != nil {
			r.DaysLeft = fmt.Sprint(*h.DaysLeft)
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
