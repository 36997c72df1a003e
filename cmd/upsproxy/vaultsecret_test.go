package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/upssim"
)

// vaultCarrier is carrier "main" with its client secret in Vault.
func vaultCarrier(path, field string) string {
	return fmt.Sprintf(`
carrier "main" {
  environment   = "test"
  default       = true
  client_id     = "test-client-id"
  client_secret = vault(%q, %q)
  redirect_uri  = "https://127.0.0.1/upscallback"
}
`, path, field)
}

// putSecret writes a KV v2 secret (name relative to the "secret" mount) as
// Vault's root.
func (e *env) putSecret(name string, data map[string]any) {
	e.t.Helper()
	for _, v := range data {
		if s, ok := v.(string); ok {
			rememberSecret(s)
		}
	}
	if _, err := e.vault.Client(e.t).KVv2("secret").Put(context.Background(), name, data); err != nil {
		e.t.Fatal(err)
	}
}

// basicSecrets returns the client secrets UPS received in the Basic
// headers of its OAuth requests to path (ups.TokenPath or ups.RefreshPath).
func basicSecrets(sim *upssim.Server, path string) []string {
	var out []string
	for _, r := range sim.OAuthRequests() {
		if r.Path != path {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.Header.Get("Authorization"), "Basic "))
		if err != nil {
			out = append(out, "<not basic>")
			continue
		}
		_, secret, _ := strings.Cut(string(raw), ":")
		out = append(out, secret)
	}
	return out
}

func lastOf(s []string) string {
	if len(s) == 0 {
		return "<none>"
	}
	return s[len(s)-1]
}

// shippedPolicyWithSecretGrant is config/vault-policy.hcl with its
// commented-out grant for a vault() client secret switched on.
func shippedPolicyWithSecretGrant(t *testing.T) (shipped, withGrant string) {
	t.Helper()
	b, err := os.ReadFile("../../config/vault-policy.hcl")
	if err != nil {
		t.Fatal(err)
	}
	shipped = string(b)
	const block = "# path \"secret/data/upsproxy/carriers/main\" {\n#   capabilities = [\"read\"]\n# }\n"
	if !strings.Contains(shipped, block) {
		t.Fatalf("config/vault-policy.hcl lacks the commented grant for a vault() client secret:\n%s", block)
	}
	return shipped, strings.Replace(shipped, block, strings.ReplaceAll(block, "# ", ""), 1)
}

func TestVaultClientSecret_LoginTokenRefreshAndServeReadItWithTheProxysOwnLoginAndTheShippedGrant(t *testing.T) {
	e := newEnv(t, envOptions{prefix: "upsproxy", carriers: vaultCarrier("secret/data/upsproxy/carriers/main", "client_secret"),
		vaultAuth: appRoleAuth})
	e.putSecret("upsproxy/carriers/main", map[string]any{"client_secret": e.secret, "rotated_by": "ops"})
	e.putSecret("upsproxy/carriers/other", map[string]any{"client_secret": "another-carriers-secret"})
	root := e.vault.Client(t)
	shipped, withGrant := shippedPolicyWithSecretGrant(t)
	role := e.useAppRole(shipped)
	role.newSecretID()

	// The policy as shipped has no grant for the secret: login stops
	// before spending the code, naming the carrier and the path.
	code := e.sim.IssueCode(e.clientID, e.redirect, "")
	r := e.run("", "login", "--carrier", "main", "--code", code)
	if r.code == 0 || !strings.Contains(r.stderr, `carrier "main": client_secret = vault("secret/data/upsproxy/carriers/main", "client_secret")`) ||
		!strings.Contains(r.stderr, "vault denied access to secret/data/upsproxy/carriers/main") {
		t.Fatalf("login without the grant: exit %d\n%s", r.code, r.stderr)
	}
	if n := len(e.sim.OAuthRequests()); n != 0 {
		t.Fatalf("UPS saw %d OAuth requests from a login that could not read its secret", n)
	}

	// With the grant: login, token refresh and serve all send the secret.
	if err := root.Sys().PutPolicy("upsproxy", withGrant); err != nil {
		t.Fatal(err)
	}
	e.login("main")
	if got := basicSecrets(e.sim, ups.TokenPath); len(got) != 1 || got[0] != e.secret {
		t.Fatalf("login sent %d token requests, the last without the secret from Vault", len(got))
	}
	if r := e.run("", "token", "refresh", "--carrier", "main"); r.code != 0 {
		t.Fatalf("token refresh: exit %d\n%s", r.code, r.stderr)
	}
	e.rememberStoredTokens("main", ups.Test)
	if got := basicSecrets(e.sim, ups.RefreshPath); len(got) != 1 || got[0] != e.secret || e.sim.Stats().Refreshes != 1 {
		t.Fatalf("token refresh: %d refresh requests, %d refreshes; want one with the secret from Vault", len(got), e.sim.Stats().Refreshes)
	}
	e.expireAccessToken("main")
	s := e.serve()
	resp, err := directClient().Do(legacyRequest(t, http.MethodPost, "http://"+s.addr+"/api/rating/v2409/Rate", rateBody(t)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("serve with a vault() secret: %d %s", resp.StatusCode, body)
	}
	e.rememberStoredTokens("main", ups.Test)
	if got := basicSecrets(e.sim, ups.RefreshPath); len(got) != 2 || got[1] != e.secret {
		t.Fatal("serve's refresh did not send the secret from Vault")
	}

	// The grant is for exactly that secret: the same login reads nothing
	// next to it.
	c := role.login(role.newSecretID())
	for _, p := range []string{"secret/data/upsproxy/carriers/other", "secret/metadata/upsproxy/carriers/main"} {
		if _, err := c.Logical().Read(p); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("read %s with the shipped grant: %v, want permission denied", p, err)
		}
	}
}

func TestVaultClientSecret_AMissingPathOrFieldFailsStartUpAndCommandsNamingTheCarrier(t *testing.T) {
	tests := []struct {
		name, path, field string
		want              []string
	}{
		{"missing field", "secret/data/ups-secrets/main", "client_secret",
			[]string{`carrier "main": client_secret = vault("secret/data/ups-secrets/main", "client_secret")`, `field "client_secret": no such field in the vault secret (its fields: "clientSecret")`}},
		{"missing secret", "secret/data/ups-secrets/nowhere", "client_secret",
			[]string{`carrier "main": client_secret = vault("secret/data/ups-secrets/nowhere", "client_secret")`, "read secret/data/ups-secrets/nowhere: no secret at this vault path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{carriers: vaultCarrier(tt.path, tt.field)})
			e.putSecret("ups-secrets/main", map[string]any{"clientSecret": e.secret})
			// Tokens stored by a login with the secret from a file, so that
			// `token refresh` gets as far as needing the secret.
			orig, err := os.ReadFile(e.cfgPath)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, e.cfgPath, strings.Replace(string(orig), fmt.Sprintf("vault(%q, %q)", tt.path, tt.field), `file("ups-secret")`, 1))
			e.login("main")
			writeFile(t, e.cfgPath, string(orig))
			e.sim.ResetRequests()
			logs := newBuf()
			code := run(context.Background(), []string{"serve", "--config", e.cfgPath}, strings.NewReader(""), newBuf(), logs)
			if code == 0 || strings.Contains(logs.String(), "proxy listening") {
				t.Fatalf("serve started (exit %d):\n%s", code, logs)
			}
			for _, w := range tt.want {
				if !strings.Contains(logs.String(), w) {
					t.Errorf("serve's error lacks %q:\n%s", w, logs)
				}
			}
			for _, args := range [][]string{{"token", "refresh", "--carrier", "main"}, {"login", "--carrier", "main", "--code", "unused-code"}} {
				r := e.run("", args...)
				if r.code == 0 || !strings.Contains(r.stderr, tt.want[0]) {
					t.Errorf("%v: exit %d, stderr lacks the carrier and reference:\n%s", args, r.code, r.stderr)
				}
			}
			if n := len(e.sim.OAuthRequests()); n != 0 {
				t.Errorf("UPS saw %d OAuth requests", n)
			}
		})
	}
}

// vaultReplica is a real `upsproxy serve` process whose carrier "main" has
// its client secret at secret/data/ups-secrets/main, logged in; rate sends
// a Rate call through it and wants 200, hup signals a reload and waits for
// a new log line containing wantMsg.
func vaultReplica(t *testing.T) (e *env, rate func(what string), hup func(wantMsg string), r *replica) {
	e = newEnv(t, envOptions{carriers: vaultCarrier("secret/data/ups-secrets/main", "client_secret")})
	e.putSecret("ups-secrets/main", map[string]any{"client_secret": e.secret})
	e.login("main")
	r = e.startReplica(t, "vault-secret")
	rate = func(what string) {
		t.Helper()
		req := legacyRequest(t, http.MethodPost, "http://"+r.addr+"/api/rating/v2409/Rate", rateBody(t))
		resp, err := directClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s\n%s", what, resp.StatusCode, body, r.logs)
		}
		e.rememberStoredTokens("main", ups.Test)
	}
	hup = func(wantMsg string) {
		t.Helper()
		n := strings.Count(r.logs.String(), wantMsg)
		if err := r.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return strings.Count(r.logs.String(), wantMsg) > n }, wantMsg)
	}
	rate("before any change")
	return e, rate, hup, r
}

// Each test below makes one renewal forced by UPS's 401: the broker never
// forces a second one on a pair a forced renewal minted.

func TestVaultClientSecret_ARotationInVaultIsPickedUpBySIGHUP(t *testing.T) {
	e, rate, hup, _ := vaultReplica(t)
	// The secret is rotated at UPS and in Vault; SIGHUP picks it up, and
	// the next refresh (UPS refuses the access token: refresh, replay)
	// authenticates with it.
	const rotated = "rotated-client-secret-2"
	e.sim.SetClientSecret(e.clientID, rotated)
	e.putSecret("ups-secrets/main", map[string]any{"client_secret": rotated})
	hup("configuration reloaded")
	e.sim.RevokeAccessTokens()
	rate("after the rotation")
	if got := basicSecrets(e.sim, ups.RefreshPath); len(got) != 1 || got[0] != rotated {
		t.Fatalf("%d refreshes after the rotation, the last with the old or no secret", len(got))
	}
}

func TestVaultClientSecret_AReloadWhoseSecretLostItsFieldFailsNamingTheCarrierAndKeepsTheRunningSecret(t *testing.T) {
	e, rate, hup, r := vaultReplica(t)
	e.putSecret("ups-secrets/main", map[string]any{"client_secret_v3": "third-client-secret-3"})
	hup("reload failed")
	if !strings.Contains(r.logs.String(), `carrier \"main\": client_secret = vault(\"secret/data/ups-secrets/main\", \"client_secret\")`) ||
		!strings.Contains(r.logs.String(), `no such field in the vault secret (its fields: \"client_secret_v3\")`) {
		t.Fatalf("the failed reload does not name the carrier and the field:\n%s", r.logs)
	}
	e.sim.RevokeAccessTokens()
	rate("after the failed reload")
	if got := basicSecrets(e.sim, ups.RefreshPath); len(got) != 1 || got[0] != e.secret {
		t.Fatal("after the failed reload the refresh did not use the running secret")
	}
}
