package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/upssim"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// authCarrier is an authorization-code carrier logging in as the
// simulator's confidential test client.
func authCarrier(name string, extra string) string {
	return `
carrier "` + name + `" {
  environment   = "test"
  client_id     = "test-client-id"
  client_secret = file("ups-secret")
  redirect_uri  = "https://127.0.0.1/upscallback"
  ` + extra + `
}
`
}

const ccCarrier = `
carrier "robot" {
  environment   = "test"
  grant         = "client_credentials"
  client_id     = "test-client-id"
  client_secret = file("ups-secret")
}
`

// setRefreshExpiry moves a stored refresh token's expiry (and, once it is
// past, the access token's too, as time would).
func setRefreshExpiry(e *env, carrier string, at time.Time) {
	e.editRecord(carrier, ups.Test, func(r *vaultstore.Record) {
		r.Token.RefreshExpiresAt = at
		if at.Before(time.Now()) {
			r.Token.ExpiresAt = at
		}
	})
}

func reject(e *env, carrier string) {
	e.editRecord(carrier, ups.Test, func(r *vaultstore.Record) { r.Rejected, r.RejectedAt = true, time.Now() })
}

// noTokenValues fails if any stored token value of the carriers appears
// in the outputs.
func noTokenValues(t *testing.T, e *env, outs []string, carriers ...string) {
	t.Helper()
	for _, c := range carriers {
		rec, err := e.store.Get(context.Background(), c, ups.Test)
		if err != nil {
			continue
		}
		for _, out := range outs {
			if strings.Contains(out, rec.Token.AccessToken) || strings.Contains(out, rec.Token.RefreshToken) {
				t.Fatalf("a token value of %s was printed", c)
			}
		}
	}
}

func TestTokenList_ShowsEveryStoredAndEveryActiveCarrierWithTheWarningThatSaysWhatToDo(t *testing.T) {
	e := newEnv(t, envOptions{carriers: authCarrier("main", "default = true") + authCarrier("soon", "") + authCarrier("dead", "") +
		authCarrier("refused", "") + authCarrier("spare", "") + authCarrier("idle", "inactive = true") + authCarrier("unused", "inactive = true") + ccCarrier})
	for _, c := range []string{"main", "soon", "dead", "refused", "idle"} {
		e.login(c)
	}
	setRefreshExpiry(e, "soon", time.Now().Add(3*24*time.Hour+time.Hour))
	setRefreshExpiry(e, "dead", time.Now().Add(-time.Hour))
	reject(e, "refused")
	// A carrier removed from the config left its tokens behind.
	gone, err := e.store.Get(context.Background(), "main", ups.Test)
	if err != nil {
		t.Fatal(err)
	}
	gone.Carrier, gone.Version = "gone", 0
	if _, err := e.store.Put(context.Background(), gone); err != nil {
		t.Fatal(err)
	}

	r := e.run("", "token", "list")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if got := strings.Join(strings.Fields(lines[0]), " "); got != "CARRIER ENV GRANT STATUS ACCESS_EXPIRES REFRESH_EXPIRES DAYS_LEFT WARNING" {
		t.Fatalf("header %q", lines[0])
	}
	want := map[string][]string{
		"main":    {"authorization_code", " ok ", " 59 ", " -"}, // the simulator gives refresh tokens 60 days
		"soon":    {" expiring ", " 3 ", "expires in 3 days: run upsproxy login --carrier soon --env test"},
		"dead":    {" expired ", "EXPIRED: run upsproxy login --carrier dead --env test"},
		"refused": {" rejected ", "REJECTED: run upsproxy login --carrier refused --env test"},
		"spare":   {" not logged in ", "run upsproxy login --carrier spare --env test"},
		"idle":    {" inactive"},
		"gone":    {" not in config"},
		"robot":   {"client_credentials", " not fetched yet "},
	}
	rows := map[string]string{}
	for _, l := range lines[1:] {
		rows[strings.Fields(l)[0]] = l
	}
	if len(rows) != len(want) {
		t.Errorf("%d rows, want %d (unused: inactive with nothing stored, must not be listed):\n%s", len(rows), len(want), r.stdout)
	}
	for c, parts := range want {
		row, ok := rows[c]
		if !ok {
			t.Errorf("no row for %s:\n%s", c, r.stdout)
			continue
		}
		for _, p := range parts {
			if !strings.Contains(row+" ", p) {
				t.Errorf("row of %s lacks %q: %q", c, p, row)
			}
		}
	}

	j := e.run("", "token", "list", "--json")
	var got []tokenRow
	if err := json.Unmarshal([]byte(j.stdout), &got); err != nil || j.code != 0 {
		t.Fatalf("--json: exit %d, %v: %s", j.code, err, j.stdout)
	}
	byName := map[string]tokenRow{}
	for _, row := range got {
		byName[row.Carrier] = row
	}
	if s := byName["soon"]; s.Status != "expiring" || s.DaysLeft == nil || *s.DaysLeft != 3 || !s.Active {
		t.Errorf("soon in JSON: %+v", s)
	}
	if g := byName["gone"]; g.InConfig || g.Warning != "not in config" {
		t.Errorf("gone in JSON: %+v", g)
	}
	e.rememberStoredTokens("gone", ups.Test)
	noTokenValues(t, e, []string{r.stdout, r.stderr, j.stdout, j.stderr}, "main", "soon", "dead", "refused", "idle", "gone")
}

func TestTokenCheck_ExitCodesFollowTheMonitoringPluginConvention(t *testing.T) {
	e := newEnv(t, envOptions{carriers: authCarrier("main", "default = true") + authCarrier("idle", "inactive = true") + ccCarrier})
	e.login("main")
	e.login("idle")
	// Inactive carriers get no alarms, whatever their state.
	setRefreshExpiry(e, "idle", time.Now().Add(-time.Hour))

	cases := []struct {
		name     string
		prepare  func()
		wantCode int
		wantOut  string
	}{
		{"fine for another month", func() { setRefreshExpiry(e, "main", time.Now().Add(30*24*time.Hour)) },
			0, "OK: 2 carriers\n"},
		{"refresh token expires within the warning window", func() { setRefreshExpiry(e, "main", time.Now().Add(3*24*time.Hour+time.Hour)) },
			1, "WARNING: carrier main (test): refresh token expires in 3 days (20"},
		{"refresh token expired", func() { setRefreshExpiry(e, "main", time.Now().Add(-time.Minute)) },
			2, "CRITICAL: carrier main (test): refresh token expired at 20"},
		{"refresh token rejected by UPS", func() { setRefreshExpiry(e, "main", time.Now().Add(30*24*time.Hour)); reject(e, "main") },
			2, "CRITICAL: carrier main (test): refresh token rejected by UPS at 20"},
		{"never logged in", func() {
			if err := e.store.Delete(context.Background(), "main", ups.Test); err != nil {
				t.Fatal(err)
			}
		}, 2, "CRITICAL: carrier main (test): not logged in: run upsproxy login --carrier main --env test\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.prepare()
			r := e.run("", "token", "check")
			if r.code != c.wantCode {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", r.code, c.wantCode, r.stdout, r.stderr)
			}
			if !strings.HasPrefix(r.stdout, c.wantOut) || strings.Count(r.stdout, "\n") != 1 {
				t.Errorf("stdout %q, want one line starting %q", r.stdout, c.wantOut)
			}
			if c.wantCode != 0 && !strings.Contains(r.stdout, ": run upsproxy login --carrier main --env test") {
				t.Errorf("the line does not name the login command: %q", r.stdout)
			}
			j := e.run("", "token", "check", "--json")
			var rep checkReport
			if err := json.Unmarshal([]byte(j.stdout), &rep); err != nil {
				t.Fatalf("--json output %q: %v", j.stdout, err)
			}
			if j.code != c.wantCode || rep.ExitCode != c.wantCode || (c.wantCode == 0) != (len(rep.Problems) == 0) {
				t.Errorf("--json: exit %d, report %+v", j.code, rep)
			}
			noTokenValues(t, e, []string{r.stdout, r.stderr, j.stdout}, "main", "idle")
		})
	}

	t.Run("vault unreachable is UNKNOWN", func(t *testing.T) {
		e.vault.Stop()
		r := e.run("", "token", "check")
		if r.code != exitUnknown || !strings.HasPrefix(r.stdout, "UNKNOWN: ") || !strings.Contains(r.stdout, "Vault") || strings.Count(r.stdout, "\n") != 1 {
			t.Fatalf("exit %d, stdout %q", r.code, r.stdout)
		}
	})
}

func TestTokenCheck_TwoProblemsPrintOneLineEachWorstFirst(t *testing.T) {
	e := newEnv(t, envOptions{carriers: authCarrier("alpha", "default = true") + authCarrier("beta", "")})
	e.login("alpha")
	e.login("beta")
	setRefreshExpiry(e, "alpha", time.Now().Add(2*24*time.Hour+time.Hour))
	setRefreshExpiry(e, "beta", time.Now().Add(-time.Hour))
	r := e.run("", "token", "check")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 2 || len(lines) != 2 || !strings.HasPrefix(lines[0], "CRITICAL: carrier beta") || !strings.HasPrefix(lines[1], "WARNING: carrier alpha") {
		t.Fatalf("exit %d:\n%s", r.code, r.stdout)
	}
}

func TestTokenRefresh_SpendsTheRefreshTokenExactlyOnceAndStoresTheNewPair(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.login("main")
	ctx := context.Background()
	for i := 1; i <= 2; i++ {
		before, err := e.store.Get(ctx, "main", ups.Test)
		if err != nil {
			t.Fatal(err)
		}
		refreshes := e.sim.Stats().Refreshes
		r := e.run("", "token", "refresh", "--carrier", "main")
		if r.code != 0 {
			t.Fatalf("refresh %d: exit %d: %s", i, r.code, r.stderr)
		}
		after, err := e.store.Get(ctx, "main", ups.Test)
		if err != nil {
			t.Fatal(err)
		}
		e.rememberStoredTokens("main", ups.Test)
		if got := e.sim.Stats().Refreshes - refreshes; got != 1 {
			t.Errorf("refresh %d: UPS saw %d refreshes, want 1", i, got)
		}
		if after.Token.RefreshCount != before.Token.RefreshCount+1 || after.Token.RefreshToken == before.Token.RefreshToken {
			t.Errorf("refresh %d: refresh_count %d -> %d; new refresh token stored: %v", i, before.Token.RefreshCount, after.Token.RefreshCount,
				after.Token.RefreshToken != before.Token.RefreshToken)
		}
		if after.LeaseHolder != "" {
			t.Errorf("refresh %d left its lease in Vault: %q", i, after.LeaseHolder)
		}
		if !strings.Contains(r.stdout, "Refreshed") || !strings.Contains(r.stdout, "(was "+fmtTime(before.Token.ExpiresAt)+")") {
			t.Errorf("refresh %d: output lacks the old and new expiry:\n%s", i, r.stdout)
		}
		noTokenValues(t, e, []string{r.stdout, r.stderr}, "main")
		for _, s := range []string{before.Token.AccessToken, before.Token.RefreshToken} {
			if strings.Contains(r.stdout+r.stderr, s) {
				t.Fatal("an old token value was printed")
			}
		}
	}
}

func TestTokenRefresh_WaitsForAReplicaHoldingTheRefreshLease(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.login("main")
	leaseEnd := time.Now().Add(1500 * time.Millisecond)
	e.editRecord("main", ups.Test, func(r *vaultstore.Record) { r.LeaseHolder, r.LeaseUntil = "proxy-replica-2/4242", leaseEnd })
	r := e.run("", "token", "refresh", "--carrier", "main")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	e.rememberStoredTokens("main", ups.Test)
	if time.Now().Before(leaseEnd) {
		t.Error("the refresh did not wait for the other replica's lease")
	}
	if got := e.sim.Stats().Refreshes; got != 1 {
		t.Errorf("UPS saw %d refreshes, want 1", got)
	}
}

func TestTokenRefresh_FailuresSayWhatToDoAndSpendNothing(t *testing.T) {
	cases := []struct {
		name     string
		prepare  func(e *env)
		wantLine string
	}{
		{"refresh token expired", func(e *env) { e.login("main"); setRefreshExpiry(e, "main", time.Now().Add(-time.Hour)) },
			"run upsproxy login --carrier main --env test"},
		{"refresh token rejected earlier", func(e *env) { e.login("main"); reject(e, "main") },
			"run upsproxy login --carrier main --env test"},
		{"never logged in", func(e *env) {}, "no tokens stored for carrier \"main\" (test): run upsproxy login --carrier main --env test"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			c.prepare(e)
			r := e.run("", "token", "refresh", "--carrier", "main")
			if r.code == 0 {
				t.Fatal("refresh succeeded")
			}
			if last := lastLine(r.stderr); !strings.HasPrefix(last, "upsproxy: ") || !strings.Contains(last, c.wantLine) {
				t.Errorf("last stderr line %q, want %q", last, c.wantLine)
			}
			if n := e.sim.Stats().Refreshes + e.sim.Stats().RefreshRejected; n != 0 {
				t.Errorf("UPS saw %d refresh attempts", n)
			}
		})
	}

	t.Run("UPS rejects the refresh token", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		e.login("main")
		e.sim.RejectRefreshTokens()
		r := e.run("", "token", "refresh", "--carrier", "main")
		if r.code == 0 {
			t.Fatal("refresh succeeded")
		}
		if last := lastLine(r.stderr); !strings.Contains(last, "rejected") || !strings.Contains(last, "upsproxy login --carrier main --env test") {
			t.Errorf("last stderr line %q", last)
		}
		rec, err := e.store.Get(context.Background(), "main", ups.Test)
		if err != nil || !rec.Rejected {
			t.Errorf("the rejection was not recorded in Vault for the proxies (err %v)", err)
		}
		if rec.Token.ExpiresAt.Before(time.Now()) {
			t.Errorf("the stored access token's expiry was changed to %v", rec.Token.ExpiresAt)
		}
	})
}

func TestTokenRefresh_UPSOutageFailsClearlyAndLeavesTheStoredPairUsable(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.login("main")
	before, err := e.store.Get(context.Background(), "main", ups.Test)
	if err != nil {
		t.Fatal(err)
	}
	e.sim.SetFault(upssim.Fault{Endpoint: upssim.EndpointRefresh, Status: 503, Times: 1})
	r := e.run("", "token", "refresh", "--carrier", "main")
	if r.code == 0 {
		t.Fatal("refresh succeeded during the outage")
	}
	if last := lastLine(r.stderr); !strings.Contains(last, "at UPS failed") {
		t.Errorf("last stderr line %q", last)
	}
	after, err := e.store.Get(context.Background(), "main", ups.Test)
	if err != nil {
		t.Fatal(err)
	}
	if after.Token.RefreshToken != before.Token.RefreshToken || !after.Token.ExpiresAt.Equal(before.Token.ExpiresAt) || after.LeaseHolder != "" || after.Rejected {
		t.Errorf("the stored pair changed: %v -> %v", before, after)
	}
	// Once UPS is back, the same pair refreshes.
	if r := e.run("", "token", "refresh", "--carrier", "main"); r.code != 0 {
		t.Fatalf("refresh after the outage: exit %d: %s", r.code, r.stderr)
	}
	e.rememberStoredTokens("main", ups.Test)
}

func TestTokenDelete_RemovesTheTokensAndASecondDeleteExitsOne(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.login("main")
	r := e.run("", "token", "delete", "--carrier", "main")
	if r.code != 0 || !strings.Contains(r.stdout, `Deleted the stored tokens of carrier "main" (test)`) {
		t.Fatalf("exit %d: %q %q", r.code, r.stdout, r.stderr)
	}
	if _, err := e.store.Get(context.Background(), "main", ups.Test); !errors.Is(err, vaultstore.ErrNotFound) {
		t.Fatalf("still stored: %v", err)
	}
	again := e.run("", "token", "delete", "--carrier", "main")
	if again.code != 1 || lastLine(again.stderr) != `upsproxy: no tokens stored for carrier "main" (test): nothing deleted` {
		t.Fatalf("second delete: exit %d, stderr %q", again.code, again.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, "\n\n") {
		t.Errorf("unexpected output %q", r.stdout)
	}
}

func TestTokenDelete_RemovesTokensOfACarrierNoLongerInTheConfigWhenTheEnvironmentIsNamed(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.login("main")
	rec, err := e.store.Get(context.Background(), "main", ups.Test)
	if err != nil {
		t.Fatal(err)
	}
	rec.Carrier, rec.Version = "gone", 0
	if _, err := e.store.Put(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if r := e.run("", "token", "delete", "--carrier", "gone"); r.code == 0 || !strings.Contains(r.stderr, "--env") {
		t.Fatalf("without --env: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := e.run("", "token", "delete", "--carrier", "gone", "--env", "test"); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if _, err := e.store.Get(context.Background(), "gone", ups.Test); !errors.Is(err, vaultstore.ErrNotFound) {
		t.Fatalf("still stored: %v", err)
	}
	if _, err := e.store.Get(context.Background(), "main", ups.Test); err != nil {
		t.Fatalf("the configured carrier's tokens went too: %v", err)
	}
}
