package notify

import (
	"sort"
	"time"

	"github.com/upsproxy/upsproxy/internal/tokens"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// Facts is what the notifier knows of one carrier/environment's tokens at
// a pass: the stored record (shared by every replica), judged by
// tokens.Assess, plus this replica's view of its refreshes.
type Facts struct {
	// Subject is the carrier as configured.
	Subject tokens.Subject
	// Record is the stored token record; nil when nobody logged in.
	Record *vaultstore.Record
	// FailingSince is when this replica first saw refreshes of the stored
	// pair fail; zero when they do not. One failing episode lasts as long
	// as that pair stays stored.
	FailingSince time.Time
	LastError    string
}

// factsOf is the facts of a stored token record.
func factsOf(c Carrier, rec *vaultstore.Record) Facts {
	return Facts{Subject: tokens.Subject{Carrier: c.Name, Environment: c.Environment, Grant: c.Grant, Inactive: c.Inactive}, Record: rec}
}

// login identifies the login the stored refresh token comes from (zero
// when nobody logged in).
func (f Facts) login() time.Time {
	if f.Record == nil {
		return time.Time{}
	}
	return f.Record.Token.RefreshIssuedAt
}

// pair identifies the stored access token, the pair a failing refresh
// cannot renew.
func (f Facts) pair() time.Time {
	if f.Record == nil {
		return time.Time{}
	}
	return f.Record.Token.IssuedAt
}

// Policy is when events fire.
type Policy struct {
	// NotifyAt are the thresholds before the refresh token's expiry at
	// which an "expiring" reminder goes out, once each.
	NotifyAt []time.Duration
	// FailingAfter is how long refreshes must fail before a "failing"
	// message goes out.
	FailingAfter time.Duration
}

// finding is one event the judge says is due, before delivery.
type finding struct {
	kind Kind
	// threshold is the crossed notify_at threshold of an expiring event.
	threshold time.Duration
	// key tells notices of the same kind apart in the ledger.
	key string
}

// judge lists the events due for f at now. Inactive carriers and carriers
// nobody logged in to get none. Of the notify_at thresholds only the
// tightest one crossed is due: a proxy started two days before expiry sends
// one reminder, not three.
func judge(f Facts, now time.Time, p Policy) []finding {
	if f.Subject.Inactive || f.Record == nil {
		return nil
	}
	at := append([]time.Duration(nil), p.NotifyAt...)
	sort.Slice(at, func(i, j int) bool { return at[i] < at[j] })
	var widest time.Duration
	if len(at) > 0 {
		widest = at[len(at)-1]
	}
	// tokens.Assess is the one judge of the refresh token's health: a
	// client_credentials carrier has none and is never expiring.
	h := tokens.Assess(f.Subject, f.Record, now, widest)
	var out []finding
	switch h.State {
	case tokens.StateRejected:
		out = append(out, finding{kind: Rejected})
	case tokens.StateExpired:
		out = append(out, finding{kind: Expired})
	case tokens.StateExpiring:
		left := h.RefreshExpires.Sub(now)
		for _, t := range at {
			if left <= t {
				out = append(out, finding{kind: Expiring, threshold: t, key: t.String()})
				break
			}
		}
	}
	if p.FailingAfter > 0 && !f.FailingSince.IsZero() && now.Sub(f.FailingSince) >= p.FailingAfter &&
		(len(out) == 0 || out[0].kind == Expiring) {
		out = append(out, finding{kind: Failing, key: f.pair().UTC().Format(time.RFC3339Nano)})
	}
	return out
}

// supersedes reports whether an expiring notice at threshold sent makes one
// at threshold t unnecessary: a tighter (or equal) threshold already went
// out for this login.
func supersedes(sent, t time.Duration) bool { return sent <= t }
