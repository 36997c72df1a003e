package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// upsAPIVersion is the npm ups-api release the test installs: a real
// third-party UPS client (ripe-tech/ups-api-js) that fetches its own
// client-credentials token before every other call.
const upsAPIVersion = "ups-api@1.0.3"

// trackScript is what an application using ups-api writes; only the
// package's own base-URL settings (UPS_AUTH_URL, UPS_BASE_URL) point it at
// the proxy. With "eager" it fetches its token first, as applications that
// check their credentials at start-up do; otherwise ups-api only fetches
// one when a call is refused with 401 or 403.
const trackScript = `
const upsApi = require("ups-api");
(async () => {
    await upsApi.API.load(); // reads the UPS_* settings from the environment
    const api = new upsApi.API();
    if (process.argv[3] === "eager") await api.getToken();
    const details = await api.getTrackingDetails(process.argv[2]);
    console.log(JSON.stringify(details));
})().catch(err => {
    console.error("ups-api failed: " + (err && err.message ? err.message : err));
    process.exit(1);
});
`

// npmOrSkip finds npm. In CI (CI=true) its absence fails the test: the
// client it installs is the point of the test.
func npmOrSkip(t *testing.T) (npm, node string) {
	t.Helper()
	npm, err1 := exec.LookPath("npm")
	node, err2 := exec.LookPath("node")
	if err1 != nil || err2 != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("npm and node are needed in CI for the third-party OAuth client test: %v %v", err1, err2)
		}
		t.Skip("npm or node not installed")
	}
	return npm, node
}

// installUpsAPI installs the npm ups-api package into a temporary folder
// and returns the path of the tracking script beside it.
func installUpsAPI(t *testing.T) (node, script string) {
	t.Helper()
	npm, node := npmOrSkip(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, npm, "install", "--prefix", dir, "--no-audit", "--no-fund",
		"--ignore-scripts", "--loglevel=error", upsAPIVersion)
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm install %s: %v\n%s", upsAPIVersion, err, out)
	}
	script = filepath.Join(dir, "track.js")
	writeFile(t, script, trackScript)
	return node, script
}

// runUpsAPI runs the tracking script against a proxy as its base URL.
func runUpsAPI(t *testing.T, node, script string, s *server, id, secret, mode string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script, "1Z12345E0205271688", mode)
	cmd.Dir = filepath.Dir(script)
	cmd.Env = append(os.Environ(),
		"UPS_AUTH_URL=http://"+s.addr+"/",
		"UPS_BASE_URL=http://"+s.addr+"/api/",
		"UPS_CLIENT_ID="+id,
		"UPS_CLIENT_SECRET="+secret,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node track.js: %v\n%s\nproxy log:\n%s", err, out, s.logs.String())
	}
	if !strings.Contains(string(out), `"trackResponse"`) || !strings.Contains(string(out), "1Z12345E0205271688") {
		t.Fatalf("ups-api printed no tracking answer:\n%s", out)
	}
	return string(out)
}

// wantOnlyCarrierToken checks UPS saw no token request and one API call
// with the carrier's stored token.
func (e *env) wantOnlyCarrierToken(t *testing.T, carrier string) {
	t.Helper()
	if n := len(e.sim.OAuthRequests()); n != 0 {
		t.Fatalf("UPS's token endpoint saw %d requests", n)
	}
	rec, err := e.store.Get(context.Background(), carrier, ups.Test)
	if err != nil {
		t.Fatal(err)
	}
	reqs := e.sim.Requests()
	if len(reqs) != 1 || reqs[0].Header.Get("Authorization") != "Bearer "+rec.Token.AccessToken {
		t.Fatalf("UPS saw %d API requests, not one with the carrier's stored token", len(reqs))
	}
}

func TestOAuthClient_NpmUpsAPITracksThroughTheProxyWithOnlyItsBaseURLsChanged(t *testing.T) {
	node, script := installUpsAPI(t)

	t.Run("client blocks: its token from the proxy authenticates it", func(t *testing.T) {
		e := oauthEnv(t)
		s := e.serve()
		// "lazy": ups-api calls the API first and fetches its token only
		// after the proxy's 401 (base-URL mode, no credentials at all).
		runUpsAPI(t, node, script, s, "shop", oauthSecret, "lazy")
		e.wantOnlyCarrierToken(t, "main")
		n := 0
		for _, l := range s.lines() {
			if l["path"] == "/security/v1/oauth/token" && l["status"] == 200.0 && l["client"] == "shop" {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d successful token requests of client shop logged, want 1:\n%s", n, s.logs.String())
		}
	})
	t.Run("no client blocks: its own UPS credentials go nowhere", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		e.login("main")
		e.sim.ResetRequests()
		s := e.serve()
		runUpsAPI(t, node, script, s, "their-ups-client-id", "their-ups-secret", "eager")
		rememberSecret("their-ups-secret")
		e.wantOnlyCarrierToken(t, "main")
		e.sim.ResetRequests()
		runUpsAPI(t, node, script, s, "their-ups-client-id", "their-ups-secret", "lazy")
		e.wantOnlyCarrierToken(t, "main")
	})
}
