package main

import (
	"strings"
	"testing"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// `token refresh` of a carrier whose access token is due anyway: one
// rotation at UPS, not a renewal of the due token followed by the forced one.
func TestTokenRefresh_ADueTokenIsRotatedOnceNotTwice(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.login("main")
	e.expireAccessToken("main")
	before := e.sim.Stats().Refreshes
	r := e.run("", "token", "refresh", "--carrier", "main")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	e.rememberStoredTokens("main", ups.Test)
	if got := e.sim.Stats().Refreshes - before; got != 1 {
		t.Errorf("UPS saw %d refreshes for one token refresh, want 1", got)
	}
	if !strings.Contains(r.stdout, "refresh count 1.") {
		t.Errorf("output %q, want refresh count 1", r.stdout)
	}
}
