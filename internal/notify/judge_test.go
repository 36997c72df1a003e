package notify

import (
	"fmt"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/tokens"
	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

func TestJudge(t *testing.T) {
	now := testNow
	p := Policy{NotifyAt: []time.Duration{24 * time.Hour, 168 * time.Hour, 72 * time.Hour}, FailingAfter: time.Hour}
	rec := vaultstore.Record{Carrier: "main", Environment: ups.Test, Grant: ups.GrantAuthorizationCode, Token: ups.Token{
		AccessToken: "access", RefreshToken: "refresh", IssuedAt: now.Add(-time.Hour), ExpiresAt: now.Add(3 * time.Hour),
		RefreshIssuedAt: now.Add(-50 * 24 * time.Hour), RefreshExpiresAt: now.Add(10 * 24 * time.Hour)}}
	ok := Facts{Subject: tokens.Subject{Carrier: "main", Environment: ups.Test, Grant: ups.GrantAuthorizationCode}, Record: &rec}
	// with edits a copy of ok and of its record.
	with := func(edit func(f *Facts, r *vaultstore.Record)) Facts {
		f, r := ok, *ok.Record
		f.Record = &r
		edit(&f, &r)
		return f
	}
	for _, c := range []struct {
		name string
		f    Facts
		want string
	}{
		{"fine", ok, "[]"},
		{"8 days left", with(func(_ *Facts, r *vaultstore.Record) { r.Token.RefreshExpiresAt = now.Add(8 * 24 * time.Hour) }), "[]"},
		{"exactly 7 days left", with(func(_ *Facts, r *vaultstore.Record) { r.Token.RefreshExpiresAt = now.Add(168 * time.Hour) }), "[expiring/168h0m0s]"},
		{"5 days left", with(func(_ *Facts, r *vaultstore.Record) { r.Token.RefreshExpiresAt = now.Add(5 * 24 * time.Hour) }), "[expiring/168h0m0s]"},
		{"3 days left: only the tightest", with(func(_ *Facts, r *vaultstore.Record) { r.Token.RefreshExpiresAt = now.Add(71 * time.Hour) }), "[expiring/72h0m0s]"},
		{"an hour left", with(func(_ *Facts, r *vaultstore.Record) { r.Token.RefreshExpiresAt = now.Add(time.Hour) }), "[expiring/24h0m0s]"},
		{"expired", with(func(_ *Facts, r *vaultstore.Record) { r.Token.RefreshExpiresAt = now }), "[expired/]"},
		{"rejected beats expiring", with(func(_ *Facts, r *vaultstore.Record) { r.Token.RefreshExpiresAt = now.Add(time.Hour); r.Rejected = true }), "[rejected/]"},
		{"inactive", with(func(f *Facts, r *vaultstore.Record) { f.Subject.Inactive = true; r.Rejected = true }), "[]"},
		{"not logged in", Facts{Subject: ok.Subject}, "[]"},
		{"client credentials never expire", with(func(f *Facts, r *vaultstore.Record) {
			f.Subject.Grant = ups.GrantClientCredentials
			r.Token.RefreshExpiresAt = now
		}), "[]"},
		{"failing for 59 minutes", with(func(f *Facts, _ *vaultstore.Record) { f.FailingSince = now.Add(-59 * time.Minute) }), "[]"},
		{"failing for an hour", with(func(f *Facts, _ *vaultstore.Record) { f.FailingSince = now.Add(-time.Hour) }), "[failing/" + rec.Token.IssuedAt.Format(time.RFC3339Nano) + "]"},
		{"failing while rejected says only rejected", with(func(f *Facts, r *vaultstore.Record) { f.FailingSince = now.Add(-2 * time.Hour); r.Rejected = true }), "[rejected/]"},
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
