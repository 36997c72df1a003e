package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/upssim"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := directClient().Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricValue finds one sample in Prometheus text exposition.
func metricValue(t *testing.T, exposition, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	for _, line := range strings.Split(exposition, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for k, v := range labels {
			if !strings.Contains(line, fmt.Sprintf("%s=%q", k, v)) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		return v, true
	}
	return 0, false
}

func TestAdmin_HealthReadinessStatusAndMetricsThroughTheRealServer(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.login("main")
	e.expireAccessToken("main")
	s := e.serve()
	base := "http://" + s.admin

	if code, body := get(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz %d %s", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz %d %s while Vault is up", code, body)
	}

	// A scripted sequence: 5 good Rate calls (one refresh), 2 refused hosts.
	client := e.proxyClient(s)
	for i := 0; i < 5; i++ {
		resp, err := client.Do(legacyRequest(t, http.MethodPost, "https://wwwcie.ups.com/api/rating/v2409/Rate", rateBody(t)))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
	}
	for i := 0; i < 2; i++ {
		resp, err := client.Get("http://example.com/api/rating/v2409/Rate")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	_, metrics := get(t, base+"/metrics")
	want := []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"upsproxy_requests_total", map[string]string{"carrier": "main", "environment": "test", "code": "200"}, 5},
		{"upsproxy_token_refreshes_total", map[string]string{"carrier": "main", "environment": "test", "result": "ok"}, 1},
		{"upsproxy_request_duration_seconds_count", map[string]string{"carrier": "main", "environment": "test"}, 5},
	}
	for _, w := range want {
		got, ok := metricValue(t, metrics, w.name, w.labels)
		if !ok || got != w.value {
			t.Errorf("%s%v = %v (found %v), want %v", w.name, w.labels, got, ok, w.value)
		}
	}
	if got, ok := metricValue(t, metrics, "upsproxy_requests_total", map[string]string{"code": "403"}); !ok || got != 2 {
		t.Errorf("refused requests counted %v (found %v), want 2", got, ok)
	}
	rec, err := e.store.Get(context.Background(), "main", ups.Test)
	if err != nil {
		t.Fatal(err)
	}
	e.rememberStoredTokens("main", ups.Test)
	for name, at := range map[string]time.Time{
		"upsproxy_access_token_expiry_timestamp_seconds":  rec.Token.ExpiresAt,
		"upsproxy_refresh_token_expiry_timestamp_seconds": rec.Token.RefreshExpiresAt,
	} {
		got, ok := metricValue(t, metrics, name, map[string]string{"carrier": "main", "environment": "test"})
		if !ok || int64(got) != at.Unix() {
			t.Errorf("%s = %v, want %d", name, got, at.Unix())
		}
	}
	if regexp.MustCompile(`path="|/api/`).MatchString(metrics) {
		t.Error("metrics carry paths as label values")
	}

	code, status := get(t, base+"/status")
	var st struct {
		Carriers []map[string]any `json:"carriers"`
	}
	if err := json.Unmarshal([]byte(status), &st); err != nil || code != 200 {
		t.Fatalf("/status %d is not JSON: %v\n%s", code, err, status)
	}
	if len(st.Carriers) != 1 || st.Carriers[0]["carrier"] != "main" || st.Carriers[0]["refresh_count"] != float64(1) ||
		st.Carriers[0]["last_refresh_result"] != "ok" {
		t.Fatalf("/status lacks the carrier's token information: %s", status)
	}
	if strings.Contains(status, rec.Token.AccessToken) || strings.Contains(status, rec.Token.RefreshToken) {
		t.Fatal("/status shows token values")
	}

	// Sealed Vault: not ready, but requests still flow from memory.
	e.vault.Seal(t)
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz %d %s while Vault is sealed", code, body)
	}
	resp, err := client.Do(legacyRequest(t, http.MethodPost, "https://wwwcie.ups.com/api/rating/v2409/Rate", rateBody(t)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("request while Vault is sealed: %d", resp.StatusCode)
	}
	e.vault.Unseal(t)
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz %d %s after unseal", code, body)
	}
}

func TestSignals_SIGHUPWithValidAndInvalidConfigUnderLoadFailsNoRequest(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.login("main")
	r := e.startReplica(t, "hup")
	orig, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	res := runLoad(ctx, t, func() []*replica { return []*replica{r} }, 4, rateBody(t))

	// A valid change: a second carrier appears.
	writeFile(t, e.cfgPath, string(orig)+`
carrier "second" {
  environment   = "test"
  client_id     = "test-client-id"
  client_secret = file("ups-secret")
  redirect_uri  = "https://127.0.0.1/upscallback"
}
`)
	if err := r.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(r.logs.String(), "configuration reloaded") }, "the reload")
	req, _ := http.NewRequest(http.MethodPost, "http://"+r.addr+"/api/rating/v2409/Rate", strings.NewReader(rateBody(t)))
	req.Header.Set("X-Upsproxy-Carrier", "second")
	resp, err := directClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	wantProxyError(t, resp, http.StatusUnauthorized, "UPSPROXY_NOT_LOGGED_IN")

	// An invalid file: logged, the running configuration stays.
	writeFile(t, e.cfgPath, string(orig)+"\ncarrier \"broken\" {\n  environment = \"staging\"\n}\n")
	if err := r.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(r.logs.String(), "reload failed") }, "the failed reload")
	time.Sleep(300 * time.Millisecond)
	cancel()
	time.Sleep(100 * time.Millisecond)

	if !strings.Contains(r.logs.String(), "staging") {
		t.Error("the failed reload does not show the diagnostics")
	}
	if res.ok.Load() == 0 || res.failed.Load() != 0 {
		t.Fatalf("%d requests ok, %d failed across the reloads: %v", res.ok.Load(), res.failed.Load(), res.samples)
	}
	req, _ = http.NewRequest(http.MethodPost, "http://"+r.addr+"/api/rating/v2409/Rate", strings.NewReader(rateBody(t)))
	req.Header.Set("X-Upsproxy-Carrier", "second")
	if resp, err = directClient().Do(req); err != nil {
		t.Fatal(err)
	}
	wantProxyError(t, resp, http.StatusUnauthorized, "UPSPROXY_NOT_LOGGED_IN") // still the valid config
	if err := r.kill(syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	t.Logf("%d requests ok across a valid and an invalid reload", res.ok.Load())
}

func TestSignals_SIGTERMDuringASlowRequestLetsItCompleteAndExitsZero(t *testing.T) {
	for _, mode := range []string{"base-URL", "HTTPS tunnel"} {
		t.Run(mode, func(t *testing.T) { sigtermDuringSlowRequest(t, mode) })
	}
}

func sigtermDuringSlowRequest(t *testing.T, mode string) {
	e := newEnv(t, envOptions{})
	e.login("main")
	r := e.startReplica(t, "term")
	e.sim.SetFault(upssim.Fault{Endpoint: "api", Delay: 2 * time.Second})
	client, target := directClient(), "http://"+r.addr+"/api/rating/v2409/Rate"
	if mode == "HTTPS tunnel" {
		client, target = e.proxyClient(&server{addr: r.addr}), "https://wwwcie.ups.com/api/rating/v2409/Rate"
	}

	req := sendInBackground(client, legacyRequest(t, http.MethodPost, target, rateBody(t)))
	waitFor(t, func() bool { return e.sim.Stats().APICalls == 1 }, "the request to reach UPS")
	start := time.Now()
	if err := r.kill(syscall.SIGTERM); err != nil {
		t.Fatalf("exit status after SIGTERM: %v", err)
	}
	if status, reqErr := req.wait(); reqErr != nil || status != 200 {
		t.Fatalf("the in-flight request did not complete: %v status %d", reqErr, status)
	}
	if time.Since(start) < time.Second {
		t.Fatal("the process exited before the slow request finished")
	}
}

func TestPackaging_DockerfileBuildsWithTheMakefilesFlags(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	df, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	ldflags := regexp.MustCompile(`(?m)^LDFLAGS\s*:=\s*(.*)$`).FindSubmatch(mk)
	gobuild := regexp.MustCompile(`(?m)^GOBUILD\s*:=\s*(.*)$`).FindSubmatch(mk)
	if ldflags == nil || gobuild == nil {
		t.Fatal("Makefile lacks LDFLAGS/GOBUILD")
	}
	// Make's $(VERSION) is the Dockerfile's ${VERSION}.
	wantLD := strings.NewReplacer("$(VERSION)", "${VERSION}", "$(COMMIT)", "${COMMIT}").Replace(string(ldflags[1]))
	wantBuild := strings.NewReplacer("$(GO)", "go", `"$(LDFLAGS)"`, `"`+wantLD+`"`).Replace(string(gobuild[1]))
	if !strings.Contains(string(df), "RUN "+wantBuild+" -o ") {
		t.Fatalf("the Dockerfile does not build with the Makefile's command:\n  want RUN %s -o ...", wantBuild)
	}
	if !strings.Contains(string(mk), "$(GOBUILD) -o bin/upsproxy ./cmd/upsproxy") || !strings.Contains(string(df), "./cmd/upsproxy") {
		t.Fatal("Makefile and Dockerfile build different packages")
	}
	for _, must := range []string{"USER nonroot", "FROM gcr.io/distroless/static"} {
		if !strings.Contains(string(df), must) {
			t.Errorf("Dockerfile lacks %q", must)
		}
	}
}

func TestVaultPolicy_ShippedPolicyOnAnAppRoleIsEnoughForTheProxyAndNothingMore(t *testing.T) {
	e := newEnv(t, envOptions{prefix: "upsproxy", vaultAuth: appRoleAuth})
	policy, err := os.ReadFile("../../config/vault-policy.hcl")
	if err != nil {
		t.Fatal(err)
	}
	role := e.useAppRole(string(policy))
	sid := role.newSecretID()

	// login, serve with a refresh, token info/list/delete: all with the policy.
	e.login("main")
	e.expireAccessToken("main")
	s := e.serve()
	resp, err := e.proxyClient(s).Do(legacyRequest(t, http.MethodPost, "https://wwwcie.ups.com/api/rating/v2409/Rate", rateBody(t)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || e.sim.Stats().Refreshes != 1 {
		t.Fatalf("status %d, refreshes %d: the policy does not let the proxy refresh and store", resp.StatusCode, e.sim.Stats().Refreshes)
	}
	e.rememberStoredTokens("main", ups.Test)
	if code, body := get(t, "http://"+s.admin+"/readyz"); code != 200 {
		t.Fatalf("/readyz %d %s with the shipped policy", code, body)
	}
	for _, args := range [][]string{{"token", "info", "--carrier", "main"}, {"token", "list"}, {"token", "delete", "--carrier", "main"}} {
		if r := e.run("", args...); r.code != 0 {
			t.Fatalf("%v with the shipped policy: exit %d %s", args, r.code, r.stderr)
		}
	}

	// The same AppRole may not write outside the prefix.
	c := role.login(sid)
	if _, err := c.Logical().Write("secret/data/other/x", map[string]any{"data": map[string]any{"a": "b"}}); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("write outside the prefix: %v, want permission denied", err)
	}
	if _, err := c.Logical().Write("secret/data/upsproxy-other/tokens/x/test", map[string]any{"data": map[string]any{"a": "b"}}); err == nil {
		t.Fatal("write to a look-alike prefix allowed")
	}
}
