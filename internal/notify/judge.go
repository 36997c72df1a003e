package notify

import (
	"sort"
	"time"

	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// Facts is what the notifier knows of one carrier/environment's tokens at
// a pass: the stored record (shared by every replica) plus this replica's
// view of its refreshes.
type Facts struct {
	Active bool
	Grant  string
	// LoggedIn: a token record exists.
	LoggedIn bool
	// RefreshIssuedAt identifies the login; RefreshExpiresAt is when only
	// a new login helps.
	RefreshIssuedAt  time.Time
	RefreshExpiresAt time.Time
	Rejected         bool
	RejectedAt       time.Time
	// AccessIssuedAt identifies the pair a failing refresh cannot renew:
	// one failing episode lasts as long as it stays the stored pair.
	AccessIssuedAt time.Time
	// FailingSince is when this replica first saw refreshes of that pair
	// fail; zero when they do not.
	FailingSince time.Time
	LastError    string
}

// factsOf reads a stored token record.
func factsOf(rec vaultstore.Record, active bool, grant string) Facts {
	return Facts{
		Active: active, Grant: grant, LoggedIn: true,
		RefreshIssuedAt: rec.Token.RefreshIssuedAt, RefreshExpiresAt: rec.Token.RefreshExpiresAt,
		Rejected: rec.Rejected, RejectedAt: rec.RejectedAt,
		AccessIssuedAt: rec.Token.IssuedAt,
	}
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

// health is the token-health verdict the events derive from.
type health int

const (
	healthOK health = iota
	healthExpiring
	healthExpired
	healthRejected
)

// assess is the one judge of a refresh token's health here. When
// tokens.Assess lands it replaces this body, with the same meaning:
// rejected beats expired beats expiring within the widest window.
func assess(f Facts, now time.Time, widest time.Duration) health {
	switch {
	case f.Rejected:
		return healthRejected
	case f.RefreshExpiresAt.IsZero():
		return healthOK
	case !now.Before(f.RefreshExpiresAt):
		return healthExpired
	case f.RefreshExpiresAt.Sub(now) <= widest:
		return healthExpiring
	}
	return healthOK
}

// judge lists the events due for f at now. Inactive carriers and carriers
// nobody logged in to get none. Of the notify_at thresholds only the
// tightest one crossed is due: a proxy started two days before expiry sends
// one reminder, not three.
func judge(f Facts, now time.Time, p Policy) []finding {
	if !f.Active || !f.LoggedIn {
		return nil
	}
	at := append([]time.Duration(nil), p.NotifyAt...)
	sort.Slice(at, func(i, j int) bool { return at[i] < at[j] })
	var widest time.Duration
	if len(at) > 0 {
		widest = at[len(at)-1]
	}
	var out []finding
	if f.Grant != ups.GrantClientCredentials {
		switch assess(f, now, widest) {
		case healthRejected:
			out = append(out, finding{kind: Rejected})
		case healthExpired:
			out = append(out, finding{kind: Expired})
		case healthExpiring:
			left := f.RefreshExpiresAt.Sub(now)
			for _, t := range at {
				if left <= t {
					out = append(out, finding{kind: Expiring, threshold: t, key: t.String()})
					break
				}
			}
		}
	}
	if p.FailingAfter > 0 && !f.FailingSince.IsZero() && now.Sub(f.FailingSince) >= p.FailingAfter &&
		(len(out) == 0 || out[0].kind == Expiring) {
		out = append(out, finding{kind: Failing, key: f.AccessIssuedAt.UTC().Format(time.RFC3339Nano)})
	}
	return out
}

// supersedes reports whether an expiring notice at threshold sent makes one
// at threshold t unnecessary: a tighter (or equal) threshold already went
// out for this login.
func supersedes(sent, t time.Duration) bool { return sent <= t }
