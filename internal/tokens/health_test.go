package tokens

import (
	"errors"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/testutil/fakeclock"
	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

func TestAssess_OneVerdictForEveryCaseOnTheFakeClock(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	now := clock.Now()
	week := 7 * 24 * time.Hour
	pair := func(accessLeft, refreshLeft time.Duration) *vaultstore.Record {
		return &vaultstore.Record{Carrier: "main", Environment: ups.Test, Grant: ups.GrantAuthorizationCode, Token: ups.Token{
			AccessToken: "a", RefreshToken: "r", IssuedAt: now.Add(-time.Hour),
			ExpiresAt: now.Add(accessLeft), RefreshExpiresAt: now.Add(refreshLeft),
		}}
	}
	rejected := pair(time.Hour, 30*24*time.Hour)
	rejected.Rejected, rejected.RejectedAt = true, now.Add(-time.Minute)
	unknownExpiry := pair(time.Hour, 0)
	unknownExpiry.Token.RefreshExpiresAt = time.Time{}
	main := Subject{Carrier: "main", Environment: ups.Test, Grant: ups.GrantAuthorizationCode}
	cc := Subject{Carrier: "cc", Environment: ups.Production, Grant: ups.GrantClientCredentials}
	intp := func(i int) *int { return &i }

	cases := []struct {
		name      string
		sub       Subject
		rec       *vaultstore.Record
		state     State
		serving   bool
		daysLeft  *int
		wantErr   bool // Err(): requests fail now
		wantCause bool
		expired   bool // the cause is a *RefreshExpiredError
	}{
		{"fine, 30 days left", main, pair(3*time.Hour, 30*24*time.Hour), StateOK, true, intp(30), false, false, false},
		{"expiry not told by UPS", main, unknownExpiry, StateOK, true, nil, false, false, false},
		{"within the warning window", main, pair(3*time.Hour, 3*24*time.Hour+time.Hour), StateExpiring, true, intp(3), false, false, false},
		{"exactly at the window's edge", main, pair(3*time.Hour, week), StateExpiring, true, intp(7), false, false, false},
		{"less than a day left", main, pair(3*time.Hour, time.Hour), StateExpiring, true, intp(0), false, false, false},
		{"refresh expired, access still serves", main, pair(time.Hour, -time.Minute), StateExpired, true, intp(0), false, true, true},
		{"refresh and access expired", main, pair(-time.Second, -time.Minute), StateExpired, false, intp(0), true, true, true},
		{"rejected by UPS", main, rejected, StateRejected, false, intp(30), true, true, true},
		{"nothing stored", main, nil, StateNotLoggedIn, false, nil, true, true, false},
		{"an empty record", main, &vaultstore.Record{Carrier: "main", Environment: ups.Test}, StateNotLoggedIn, false, nil, true, true, false},
		{"client credentials, never minted", cc, nil, StateNotFetched, true, nil, false, false, false},
		{"client credentials, minted", cc, &vaultstore.Record{Grant: ups.GrantClientCredentials, Token: ups.Token{AccessToken: "a", ExpiresAt: now.Add(time.Hour)}}, StateOK, true, nil, false, false, false},
		{"the record's grant when the subject names none", Subject{Carrier: "cc", Environment: ups.Production},
			&vaultstore.Record{Grant: ups.GrantClientCredentials, Token: ups.Token{AccessToken: "a"}}, StateOK, true, nil, false, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := Assess(c.sub, c.rec, now, week)
			if h.State != c.state || h.Serving != c.serving {
				t.Fatalf("state %q serving %v, want %q %v", h.State, h.Serving, c.state, c.serving)
			}
			if (c.daysLeft == nil) != (h.DaysLeft == nil) || c.daysLeft != nil && *c.daysLeft != *h.DaysLeft {
				t.Errorf("days left %v, want %v", h.DaysLeft, c.daysLeft)
			}
			if (h.Err() != nil) != c.wantErr || (h.Cause != nil) != c.wantCause {
				t.Errorf("Err() %v, Cause %v", h.Err(), h.Cause)
			}
			var rerr *RefreshExpiredError
			if errors.As(h.Cause, &rerr) != c.expired {
				t.Errorf("cause %v, want a RefreshExpiredError: %v", h.Cause, c.expired)
			}
			if c.state == StateNotLoggedIn && !errors.Is(h.Cause, ErrNotLoggedIn) {
				t.Errorf("cause %v, want ErrNotLoggedIn", h.Cause)
			}
			if h.State.NeedsLogin() != (h.LoginCommand != "") {
				t.Errorf("login command %q for state %q", h.LoginCommand, h.State)
			}
			if h.Carrier != c.sub.Carrier || h.Environment != c.sub.Environment || !h.Active {
				t.Errorf("subject %s/%s active %v", h.Carrier, h.Environment, h.Active)
			}
			if h.ErrorCode != "" {
				t.Errorf("Assess filled an error code %q; that is the proxy's mapper's job", h.ErrorCode)
			}
			coded := h.WithCode(func(error) string { return "UPSPROXY_X" })
			if (coded.ErrorCode != "") != c.wantCause {
				t.Errorf("WithCode gave %q", coded.ErrorCode)
			}
		})
	}

	// The window moves with the clock: the same record, days later.
	rec := pair(3*time.Hour, 10*24*time.Hour)
	clock.Advance(3*24*time.Hour + time.Minute)
	if h := Assess(main, rec, clock.Now(), week); h.State != StateExpiring || *h.DaysLeft != 6 {
		t.Errorf("3 days on: %q, %d days left", h.State, *h.DaysLeft)
	}
	clock.Advance(7 * 24 * time.Hour)
	if h := Assess(main, rec, clock.Now(), week); h.State != StateExpired || h.Serving {
		t.Errorf("10 days on: %q serving %v", h.State, h.Serving)
	}
	if h := Assess(Subject{Carrier: "x", Environment: ups.Test, Inactive: true}, nil, now, week); h.Active {
		t.Error("an inactive carrier is assessed as active")
	}
}
