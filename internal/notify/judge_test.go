package notify

import (
	"fmt"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/ups"
)

func TestJudge(t *testing.T) {
	now := testNow
	p := Policy{NotifyAt: []time.Duration{24 * time.Hour, 168 * time.Hour, 72 * time.Hour}, FailingAfter: time.Hour}
	ok := Facts{Active: true, LoggedIn: true, Grant: ups.GrantAuthorizationCode, RefreshIssuedAt: now.Add(-50 * 24 * time.Hour),
		RefreshExpiresAt: now.Add(10 * 24 * time.Hour), AccessIssuedAt: now.Add(-time.Hour)}
	with := func(edit func(*Facts)) Facts { f := ok; edit(&f); return f }
	for _, c := range []struct {
		name string
		f    Facts
		want string
	}{
		{"fine", ok, "[]"},
		{"8 days left", with(func(f *Facts) { f.RefreshExpiresAt = now.Add(8 * 24 * time.Hour) }), "[]"},
		{"exactly 7 days left", with(func(f *Facts) { f.RefreshExpiresAt = now.Add(168 * time.Hour) }), "[expiring/168h0m0s]"},
		{"5 days left", with(func(f *Facts) { f.RefreshExpiresAt = now.Add(5 * 24 * time.Hour) }), "[expiring/168h0m0s]"},
		{"3 days left: only the tightest", with(func(f *Facts) { f.RefreshExpiresAt = now.Add(71 * time.Hour) }), "[expiring/72h0m0s]"},
		{"an hour left", with(func(f *Facts) { f.RefreshExpiresAt = now.Add(time.Hour) }), "[expiring/24h0m0s]"},
		{"expired", with(func(f *Facts) { f.RefreshExpiresAt = now }), "[expired/]"},
		{"rejected beats expiring", with(func(f *Facts) { f.RefreshExpiresAt = now.Add(time.Hour); f.Rejected = true }), "[rejected/]"},
		{"inactive", with(func(f *Facts) { f.Active = false; f.Rejected = true }), "[]"},
		{"not logged in", Facts{Active: true}, "[]"},
		{"client credentials never expire", with(func(f *Facts) { f.Grant = ups.GrantClientCredentials; f.RefreshExpiresAt = now }), "[]"},
		{"failing for 59 minutes", with(func(f *Facts) { f.FailingSince = now.Add(-59 * time.Minute) }), "[]"},
		{"failing for an hour", with(func(f *Facts) { f.FailingSince = now.Add(-time.Hour) }), "[failing/" + ok.AccessIssuedAt.Format(time.RFC3339Nano) + "]"},
		{"failing while rejected says only rejected", with(func(f *Facts) { f.FailingSince = now.Add(-2 * time.Hour); f.Rejected = true }), "[rejected/]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, fd := range judge(c.f, now, p) {
				got = append(got, string(fd.kind)+"/"+fd.key)
			}
			if s := fmt.Sprint(got); s != c.want {
				t.Errorf("judge = %s, want %s", s, c.want)
			}
		})
	}
}
