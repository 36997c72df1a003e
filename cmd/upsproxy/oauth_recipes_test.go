package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOAuthClient_RecipesRateWithTheirOrdinaryOAuthCodeThroughTheProxy runs
// the client recipes of examples/clients with UPS_CLIENT_ID and
// UPS_CLIENT_SECRET set: each fetches its own token from UPS's token URL
// with its usual OAuth code and rates, in forward (HTTPS) and base-URL
// mode. The Go recipe always runs; curl and Python (requests) where
// installed. (.NET is not on the test machines.)
func TestOAuthClient_RecipesRateWithTheirOrdinaryOAuthCodeThroughTheProxy(t *testing.T) {
	recipes := map[string][]string{}
	dir := t.TempDir()
	goBin := filepath.Join(dir, "upsproxy-client")
	build := exec.Command("go", "build", "-o", goBin, "../../examples/clients/go")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the Go recipe: %v\n%s", err, out)
	}
	recipes["go"] = []string{goBin, "-body", "../../examples/rate-request.json", "-mode"}
	if _, err := exec.LookPath("curl"); err == nil {
		recipes["curl"] = []string{"bash", "../../examples/clients/curl.sh"}
	} else {
		t.Log("curl not installed: its recipe is not run")
	}
	if exec.Command("python3", "-c", "import requests").Run() == nil {
		recipes["python"] = []string{"python3", "../../examples/clients/python/rate.py"}
	} else {
		t.Log("python3 with requests not installed: its recipe is not run")
	}

	e := oauthEnv(t)
	s := e.serve()
	for name, argv := range recipes {
		for _, mode := range []string{"forward", "base"} {
			t.Run(name+" "+mode, func(t *testing.T) {
				e.sim.ResetRequests()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], mode)...)
				cmd.Env = append(os.Environ(),
					"UPSPROXY_URL=http://"+s.addr,
					"UPSPROXY_CA="+filepath.Join(e.dir, "ca", "ca.pem"),
					"BODY=../../examples/rate-request.json",
					"UPS_CLIENT_ID=shop",
					"UPS_CLIENT_SECRET="+oauthSecret,
					"HTTPS_PROXY=", "HTTP_PROXY=", "https_proxy=", "http_proxy=",
				)
				if mode == "forward" {
					// The CONNECT is authenticated in the proxy settings;
					// in base-URL mode the token does it.
					cmd.Env = append(cmd.Env, "UPSPROXY_USER=shop", "UPSPROXY_PASSWORD="+oauthSecret)
				} else {
					cmd.Env = append(cmd.Env, "UPSPROXY_USER=", "UPSPROXY_PASSWORD=")
				}
				out, err := cmd.CombinedOutput()
				if err != nil || !strings.Contains(string(out), "RatedShipment") {
					t.Fatalf("%s %s: %v\n%s", name, mode, err, out)
				}
				e.wantOnlyCarrierToken(t, "main")
			})
		}
	}
}
