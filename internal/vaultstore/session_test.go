package vaultstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/upsproxy/upsproxy/internal/testutil/vaultdevtest"
	"github.com/upsproxy/upsproxy/internal/ups"
)

// Log messages the tests count.
const (
	msgLoggedIn   = "logged in to vault"
	msgRenewed    = "renewed vault token"
	msgMaxTTL     = "vault token cannot be renewed any further (max TTL): logging in again"
	msgRetry      = "vault login failed: will retry"
	msgNoTTL      = "vault token has no TTL: it will not be renewed"
	msgNotRenew   = "vault token is not renewable: will log in again before it expires"
	msgAboutToEnd = "vault token is about to expire: logging in again"
)

// shippedPolicy is config/vault-policy.hcl, the policy the tests give the
// proxy's identity: what passes here passes in production.
func shippedPolicy(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "config", "vault-policy.hcl"))
	if err != nil {
		t.Fatalf("read the shipped policy: %v", err)
	}
	return string(b)
}

// setupAppRole writes the shipped policy as "upsproxy" and creates an
// AppRole role with it and the given token TTLs; it returns the role ID and
// a fresh secret ID.
func setupAppRole(t *testing.T, root *vaultapi.Client, role, ttl, maxTTL string) (roleID, secretID string) {
	t.Helper()
	ctx := ctxT(t)
	if err := root.Sys().PutPolicyWithContext(ctx, "upsproxy", shippedPolicy(t)); err != nil {
		t.Fatalf("write the shipped policy: %v", err)
	}
	if _, err := root.Logical().WriteWithContext(ctx, "auth/approle/role/"+role, map[string]any{
		"token_policies": "upsproxy",
		// Only the shipped policy: the test must not pass thanks to Vault's
		// default policy (renew-self, lookup-self).
		"token_no_default_policy": true,
		"token_ttl":               ttl,
		"token_max_ttl":           maxTTL,
	}); err != nil {
		t.Fatalf("create approle role %s: %v", role, err)
	}
	r, err := root.Logical().ReadWithContext(ctx, "auth/approle/role/"+role+"/role-id")
	if err != nil || r == nil {
		t.Fatalf("read role id of %s: %v", role, err)
	}
	roleID, _ = r.Data["role_id"].(string)
	s, err := root.Logical().WriteWithContext(ctx, "auth/approle/role/"+role+"/secret-id", nil)
	if err != nil || s == nil {
		t.Fatalf("create secret id for %s: %v", role, err)
	}
	secretID, _ = s.Data["secret_id"].(string)
	if roleID == "" || secretID == "" {
		t.Fatalf("approle role %s: empty role id or secret id", role)
	}
	return roleID, secretID
}

// createToken makes a token with the shipped policy.
func createToken(t *testing.T, root *vaultapi.Client, req *vaultapi.TokenCreateRequest) string {
	t.Helper()
	return policyToken(t, root, "upsproxy", shippedPolicy(t), req)
}

// policyToken writes policy as name and creates a token (as req asks)
// with that policy only: not Vault's default policy, so a test cannot pass
// thanks to it.
func policyToken(t *testing.T, root *vaultapi.Client, name, policy string, req *vaultapi.TokenCreateRequest) string {
	t.Helper()
	if err := root.Sys().PutPolicyWithContext(ctxT(t), name, policy); err != nil {
		t.Fatalf("write policy %s: %v", name, err)
	}
	req.Policies = []string{name}
	req.NoDefaultPolicy = true
	s, err := root.Auth().Token().CreateWithContext(ctxT(t), req)
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	return s.Auth.ClientToken
}

// limitedClient is a client of srv whose token has only policy (as name).
func limitedClient(t *testing.T, srv *vaultdevtest.Server, name, policy string) *vaultapi.Client {
	t.Helper()
	c := srv.Client(t)
	c.SetToken(policyToken(t, srv.Client(t), name, policy, &vaultapi.TokenCreateRequest{}))
	return c
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// sessionOpts are the options of a test session against srv, ignoring the
// process environment.
func sessionOpts(srv *vaultdevtest.Server, auth Authenticator, log *zap.Logger) SessionOptions {
	return SessionOptions{
		Client:        ClientOptions{Address: srv.Addr, Getenv: envMap(nil)},
		Auth:          auth,
		Logger:        log,
		MinRetryDelay: 50 * time.Millisecond,
		MaxRetryDelay: 200 * time.Millisecond,
	}
}

func mustSession(t *testing.T, opts SessionOptions) *Session {
	t.Helper()
	s, err := NewSession(ctxT(t), opts)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	return s
}

// runSession starts Run and returns a function that stops it and checks
// that it returns promptly.
func runSession(t *testing.T, s *Session) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	stopped := false
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Fatal("Run did not return within 15s of its context ending")
		}
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond every 20ms for at most d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logText renders every log line with its fields, for secret greps.
func logText(logs *observer.ObservedLogs) string {
	var b strings.Builder
	for _, e := range logs.All() {
		fmt.Fprintf(&b, "%s %s %v\n", e.Level, e.Message, e.ContextMap())
	}
	return b.String()
}

func assertNoSecrets(t *testing.T, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Fatalf("a credential (%d chars, starting %.4q) reached logs or errors:\n%s", len(s), s, text)
		}
	}
}

// tokenIsValid asks Vault whether token is still alive.
func tokenIsValid(t *testing.T, srv *vaultdevtest.Server, token string) bool {
	t.Helper()
	c := srv.Client(t)
	c.SetToken(token)
	_, err := c.Auth().Token().LookupSelfWithContext(ctxT(t))
	return err == nil
}

func TestAppRoleSessionRenewsThenLogsInAgainAfterMaxTTLWhileTheStoreKeepsWorking(t *testing.T) {
	t.Parallel()
	srv := vaultdevtest.Start(t)
	root := srv.Client(t)
	// A 5s token is renewed at ~3.5s (the first renewal that extends it),
	// then at ~7s the renewal is capped by the 10s max TTL and the session
	// logs in again. Shorter TTLs are replaced by new logins without being
	// renewed (see ttlSlack), which would not show renewals.
	roleID, secretID := setupAppRole(t, root, "upsproxy", "5s", "10s")
	secretFile := filepath.Join(t.TempDir(), "secret-id")
	writeFile(t, secretFile, secretID+"\n")

	core, logs := observer.New(zap.DebugLevel)
	s := mustSession(t, sessionOpts(srv, AppRoleAuth{RoleID: roleID, SecretIDFile: secretFile}, zap.New(core)))
	loggedInAt := time.Now()
	firstToken := s.Client().Token()
	store := newStore(t, s.Client(), Options{Mount: "secret", Prefix: "upsproxy"})
	ctx := ctxT(t)

	// The shipped policy allows every store operation...
	if err := store.Ping(ctx); err != nil {
		t.Fatalf("Ping with the shipped policy: %v", err)
	}
	rec := sampleRecord("main", ups.Production)
	if _, err := store.Put(ctx, rec); err != nil {
		t.Fatalf("Put with the shipped policy: %v", err)
	}
	if _, err := store.Get(ctx, "main", ups.Production); err != nil {
		t.Fatalf("Get with the shipped policy: %v", err)
	}
	if keys, err := store.List(ctx); err != nil || len(keys) != 1 {
		t.Fatalf("List with the shipped policy = %v, %v; want the one record", keys, err)
	}
	if err := store.Delete(ctx, "main", ups.Production); err != nil {
		t.Fatalf("Delete with the shipped policy: %v", err)
	}
	// ...and nothing outside the prefix.
	_, err := s.Client().Logical().WriteWithContext(ctx, "secret/data/other/x", map[string]any{"data": map[string]any{"k": "v"}})
	var re *vaultapi.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 403 {
		t.Fatalf("write outside the prefix: err = %v, want a 403 from vault", err)
	}
	other := newStore(t, s.Client(), Options{Mount: "secret", Prefix: "other"})
	if _, err := other.Put(ctx, rec); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("store under another prefix: Put error = %v, want ErrPermissionDenied", err)
	}

	stop := runSession(t, s)
	tokens := map[string]bool{firstToken: true}
	// Deleted above: the record is created again, then updated with
	// check-and-set.
	rec.Version = 0
	checkedRenewal := false
	// Past the first token's max TTL.
	end := loggedInAt.Add(10500 * time.Millisecond)
	for ops := 0; time.Now().Before(end); ops++ {
		// Every call must succeed across renewals and token swaps.
		rec.UpdatedBy = fmt.Sprintf("op-%d", ops)
		if rec.Version, err = store.Put(ctx, rec); err != nil {
			t.Fatalf("Put %d, %s after login: %v\n%s", ops, time.Since(loggedInAt), err, logTimes(logs))
		}
		if _, err := store.Get(ctx, "main", ups.Production); err != nil {
			t.Fatalf("Get %d, %s after login: %v\n%s", ops, time.Since(loggedInAt), err, logTimes(logs))
		}
		tokens[s.Client().Token()] = true
		if !checkedRenewal && time.Since(loggedInAt) > 6*time.Second {
			checkedRenewal = true
			if !tokenIsValid(t, srv, firstToken) {
				t.Fatalf("the first 5s token is dead after 6s: it was not renewed\n%s", logTimes(logs))
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()

	if n := logs.FilterMessage(msgMaxTTL).Len(); n < 1 {
		t.Errorf("no re-login announced for the max TTL in 10.5s of a 10s max TTL:\n%s", logTimes(logs))
	}
	if n := logs.FilterMessage(msgLoggedIn).Len(); n < 2 {
		t.Errorf("%d logins in 10.5s with a 10s max TTL, want at least 2:\n%s", n, logTimes(logs))
	}
	if len(tokens) < 2 {
		t.Errorf("the store used %d different tokens, want at least 2", len(tokens))
	}
	// The store worked until the end on a token the session obtained, not
	// on the first one, which is dead by now.
	if tokenIsValid(t, srv, firstToken) {
		t.Error("the first token is still valid after its 10s max TTL")
	}
	if _, err := store.Get(ctx, "main", ups.Production); err != nil {
		t.Fatalf("Get after Run stopped: %v", err)
	}
	all := []string{secretID, roleID}
	for tok := range tokens {
		all = append(all, tok)
	}
	assertNoSecrets(t, logText(logs), all...)
}

func TestWrappedSecretIDIsUnwrappedOnceAndTheSessionStillLogsInAgainAfterMaxTTL(t *testing.T) {
	t.Parallel()
	srv := vaultdevtest.Start(t)
	root := srv.Client(t)
	roleID, _ := setupAppRole(t, root, "wrapped", "2s", "2s")
	// What an orchestrator delivers: the secret ID wrapped in a single-use
	// token.
	wrapper := srv.Client(t)
	wrapper.SetWrappingLookupFunc(func(_, _ string) string { return "5m" })
	wrapSecretID := func() string {
		t.Helper()
		w, err := wrapper.Logical().WriteWithContext(ctxT(t), "auth/approle/role/wrapped/secret-id", nil)
		if err != nil || w == nil || w.WrapInfo == nil || w.WrapInfo.Token == "" {
			t.Fatalf("create a wrapped secret id: %v (%+v)", err, w)
		}
		return w.WrapInfo.Token
	}
	firstWrap := wrapSecretID()
	file := filepath.Join(t.TempDir(), "wrapped-secret-id")
	writeFile(t, file, firstWrap)

	core, logs := observer.New(zap.DebugLevel)
	auth := AppRoleAuth{RoleID: roleID, SecretIDFile: file, Wrapped: true}
	s := mustSession(t, sessionOpts(srv, auth, zap.New(core)))
	// Orchestrators may remove the file once it has been read.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	store := newStore(t, s.Client(), Options{})
	stop := runSession(t, s)
	// 2s tokens that cannot be extended: a new login every second or so,
	// each with the secret ID unwrapped at the first one...
	rec := sampleRecord("main", ups.Test)
	var secondWrap string
	start := time.Now()
	for ops := 0; time.Since(start) < 5*time.Second; ops++ {
		if secondWrap == "" && time.Since(start) > 2500*time.Millisecond {
			// ...until the orchestrator delivers a new one.
			secondWrap = wrapSecretID()
			writeFile(t, file, secondWrap)
		}
		rec.UpdatedBy = fmt.Sprintf("op-%d", ops)
		var err error
		if rec.Version, err = store.Put(ctxT(t), rec); err != nil {
			t.Fatalf("Put %d with the session of a wrapped secret id: %v\n%s", ops, err, logTimes(logs))
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	if n := logs.FilterMessage(msgLoggedIn).Len(); n < 4 {
		t.Errorf("%d logins in 5s of 2s tokens, want at least 4:\n%s", n, logTimes(logs))
	}
	if n := logs.FilterMessage(msgRetry).Len(); n != 0 {
		t.Errorf("%d failed logins, want none: re-logins must not unwrap a spent token again\n%s", n, logTimes(logs))
	}
	// The new wrapping token was used (unwrapped) at the next login.
	if _, err := root.Logical().WriteWithContext(ctxT(t), "sys/wrapping/lookup", map[string]any{"token": secondWrap}); err == nil {
		t.Error("the second wrapping token is still unused 2.5s after it was delivered")
	}

	// The wrapping token in the file is spent: a login without the
	// session's memory says so.
	lc := srv.Client(t)
	lc.ClearToken()
	_, err := auth.Login(ctxT(t), lc)
	if err == nil || !strings.Contains(err.Error(), "unwrapped only once") || !strings.Contains(err.Error(), file) {
		t.Fatalf("login with a spent wrapping token: err = %v, want one naming %s and saying it can be unwrapped only once", err, file)
	}
	assertNoSecrets(t, logText(logs)+err.Error(), firstWrap, secondWrap, roleID)
}

func TestNewSessionFailsClearlyWithoutEchoingCredentials(t *testing.T) {
	t.Parallel()
	srv := vaultdevtest.Start(t)
	root := srv.Client(t)
	roleID, secretID := setupAppRole(t, root, "upsproxy", "1h", "1h")
	dir := t.TempDir()
	goodFile := filepath.Join(dir, "good")
	writeFile(t, goodFile, secretID)
	const wrongSecret = "0badc0de-0000-4000-8000-000000000000"
	wrongFile := filepath.Join(dir, "wrong")
	writeFile(t, wrongFile, wrongSecret+"\n")
	emptyFile := filepath.Join(dir, "empty")
	writeFile(t, emptyFile, "\n")
	const fakeToken = "hvs.not-a-token-vault-knows"
	tokenFile := filepath.Join(dir, "token")
	writeFile(t, tokenFile, fakeToken)

	for _, tc := range []struct {
		name     string
		auth     Authenticator
		env      map[string]string
		addr     string
		want     []string
		wantKind error
	}{
		{
			name: "approle with a wrong secret id is refused by vault and the error names the file",
			auth: AppRoleAuth{RoleID: roleID, SecretIDFile: wrongFile},
			want: []string{"vault approle login failed", "auth/approle/login", wrongFile, "vault answered 400"},
		},
		{
			name: "approle with a wrong role id is refused by vault",
			auth: AppRoleAuth{RoleID: "0badc0de-1111-4000-8000-000000000000", SecretIDFile: goodFile},
			want: []string{"vault approle login failed", "vault answered 400"},
		},
		{
			name: "approle whose secret id file is missing names the file",
			auth: AppRoleAuth{RoleID: roleID, SecretIDFile: filepath.Join(dir, "missing")},
			want: []string{"vault approle login failed", filepath.Join(dir, "missing"), "no such file"},
		},
		{
			name: "approle whose secret id file is empty says so",
			auth: AppRoleAuth{RoleID: roleID, SecretIDFile: emptyFile},
			want: []string{"vault approle login failed", emptyFile, "empty"},
		},
		{
			name: "approle whose secret id variable is unset names the variable",
			auth: AppRoleAuth{RoleID: roleID, SecretIDEnv: "UPSPROXY_SECRET_ID", Getenv: envMap(nil)},
			want: []string{"vault approle login failed", "UPSPROXY_SECRET_ID", "empty"},
		},
		{
			name: "approle with a secret id from the environment that vault refuses",
			auth: AppRoleAuth{RoleID: roleID, SecretIDEnv: "UPSPROXY_SECRET_ID", Getenv: envMap(map[string]string{"UPSPROXY_SECRET_ID": wrongSecret})},
			want: []string{"vault approle login failed", "environment variable UPSPROXY_SECRET_ID", "vault answered 400"},
		},
		{
			name: "approle with both secret id sources is refused before asking vault",
			auth: AppRoleAuth{RoleID: roleID, SecretIDFile: goodFile, SecretIDEnv: "X"},
			want: []string{"vault approle login failed", "set only one"},
		},
		{
			name: "approle without role id is refused before asking vault",
			auth: AppRoleAuth{SecretIDFile: goodFile},
			want: []string{"vault approle login failed", "role_id"},
		},
		{
			name: "approle at a mount path where nothing is mounted names the path",
			auth: AppRoleAuth{RoleID: roleID, SecretIDFile: goodFile, MountPath: "auth/approle-elsewhere/"},
			want: []string{"vault approle login failed", "auth/approle-elsewhere/login", "is the AppRole auth method enabled at auth/approle-elsewhere/?"},
		},
		{
			name: "wrapped approle whose file holds a plain secret id fails at unwrapping",
			auth: AppRoleAuth{RoleID: roleID, SecretIDFile: wrongFile, Wrapped: true},
			want: []string{"vault approle login failed", "unwrap the secret ID from file " + wrongFile, "deliver a fresh one"},
		},
		{
			name:     "token auth with a token vault does not know is denied",
			auth:     TokenAuth{TokenFile: tokenFile},
			want:     []string{"vault token login failed", "token file " + tokenFile, "invalid or expired"},
			wantKind: ErrPermissionDenied,
		},
		{
			name:     "token auth falls back to VAULT_TOKEN when no authenticator is given",
			env:      map[string]string{EnvToken: fakeToken},
			want:     []string{"vault token login failed", "VAULT_TOKEN", "invalid or expired"},
			wantKind: ErrPermissionDenied,
		},
		{
			name: "token auth without any token names VAULT_TOKEN",
			want: []string{"vault token login failed", "VAULT_TOKEN"},
		},
		{
			name:     "an unreachable vault is unavailable, not a bad credential",
			auth:     AppRoleAuth{RoleID: roleID, SecretIDFile: goodFile},
			addr:     closedAddr(t),
			want:     []string{"vault approle login failed", "vault unavailable"},
			wantKind: ErrUnavailable,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zap.DebugLevel)
			opts := sessionOpts(srv, tc.auth, zap.New(core))
			opts.Client.Getenv = envMap(tc.env)
			opts.Client.Timeout = 5 * time.Second
			if tc.addr != "" {
				opts.Client.Address = tc.addr
			}
			s, err := NewSession(ctxT(t), opts)
			if err == nil {
				t.Fatalf("NewSession succeeded (token set: %t), want an error", s.Client().Token() != "")
			}
			t.Logf("error: %v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
			if tc.wantKind != nil && !errors.Is(err, tc.wantKind) {
				t.Errorf("error %q is not %v", err, tc.wantKind)
			}
			assertNoSecrets(t, err.Error()+logText(logs), secretID, wrongSecret, fakeToken, srv.Token)
		})
	}
}

// closedAddr is the address of a port nobody listens on any more.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestTokenAuthReadsTheTokenFileAgainBeforeTheTokenExpires(t *testing.T) {
	t.Parallel()
	srv := vaultdevtest.Start(t)
	root := srv.Client(t)
	noRenew := false
	tokenA := createToken(t, root, &vaultapi.TokenCreateRequest{TTL: "3s", Renewable: &noRenew})
	tokenB := createToken(t, root, &vaultapi.TokenCreateRequest{TTL: "1h"})
	file := filepath.Join(t.TempDir(), "token")
	writeFile(t, file, tokenA+"\n")

	core, logs := observer.New(zap.DebugLevel)
	s := mustSession(t, sessionOpts(srv, TokenAuth{TokenFile: file}, zap.New(core)))
	if s.Client().Token() != tokenA {
		t.Fatal("the session does not use the token of the file")
	}
	// An operator (or Vault Agent) puts the next token in place.
	writeFile(t, file, tokenB+"\n")
	runSession(t, s)
	waitFor(t, 6*time.Second, "the session still uses the first token, which expires at 3s", func() bool {
		return s.Client().Token() == tokenB
	})
	if n := logs.FilterMessage(msgNotRenew).Len(); n < 1 {
		t.Errorf("the session did not say that the first token is not renewable:\n%s", logText(logs))
	}
	if n := logs.FilterMessage(msgAboutToEnd).Len(); n < 1 {
		t.Errorf("the session did not say why it logged in again:\n%s", logText(logs))
	}
	if err := newStore(t, s.Client(), Options{}).Ping(ctxT(t)); err != nil {
		t.Fatalf("Ping with the second token: %v", err)
	}
	assertNoSecrets(t, logText(logs), tokenA, tokenB)
}

func TestRenewableVaultTokenIsRenewedAndKept(t *testing.T) {
	t.Parallel()
	srv := vaultdevtest.Start(t)
	root := srv.Client(t)
	token := createToken(t, root, &vaultapi.TokenCreateRequest{TTL: "5s", ExplicitMaxTTL: "1m"})

	core, logs := observer.New(zap.DebugLevel)
	opts := sessionOpts(srv, nil, zap.New(core))
	opts.Client.Getenv = envMap(map[string]string{EnvToken: token})
	s := mustSession(t, opts)
	stop := runSession(t, s)
	time.Sleep(5500 * time.Millisecond)
	// Without renewal the token would have died at 5s.
	if !tokenIsValid(t, srv, token) {
		t.Fatalf("the 5s token is dead after 5.5s: it was not renewed\n%s", logTimes(logs))
	}
	stop()
	if s.Client().Token() != token {
		t.Error("the session swapped a renewable token that was still good")
	}
	if n := logs.FilterMessage(msgRenewed).Len(); n < 1 {
		t.Errorf("no renewal logged:\n%s", logText(logs))
	}
	assertNoSecrets(t, logText(logs), token)
}

func TestRootTokenIsUsedAsItIsAndRunStopsWithItsContext(t *testing.T) {
	t.Parallel()
	srv := vaultdevtest.Start(t)
	core, logs := observer.New(zap.DebugLevel)
	s := mustSession(t, sessionOpts(srv, TokenAuth{Token: srv.Token}, zap.New(core)))
	stop := runSession(t, s)
	waitFor(t, 5*time.Second, "no log line says the root token will not be renewed", func() bool {
		return logs.FilterMessage(msgNoTTL).Len() == 1
	})

	// A second Run while the first runs must not log in or renew twice.
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(context.Background())
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a second concurrent Run did not return at once")
	}

	start := time.Now()
	stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Run took %s to return after its context ended", d)
	}
	if s.Client().Token() != srv.Token {
		t.Error("the root token was replaced")
	}
	if n := logs.FilterMessage(msgLoggedIn).Len(); n != 1 {
		t.Errorf("%d logins, want 1", n)
	}
	if n := logs.FilterMessage(msgNoTTL).Len(); n != 1 {
		t.Errorf("the no-TTL line was logged %d times, want once", n)
	}
	assertNoSecrets(t, logText(logs), srv.Token)
}

func TestFailedReloginsAreRetriedWithBackoffUntilTheSecretIDComesBack(t *testing.T) {
	t.Parallel()
	srv := vaultdevtest.Start(t)
	root := srv.Client(t)
	roleID, secretID := setupAppRole(t, root, "upsproxy", "3s", "3s")
	file := filepath.Join(t.TempDir(), "secret-id")
	writeFile(t, file, secretID)

	core, logs := observer.New(zap.DebugLevel)
	s := mustSession(t, sessionOpts(srv, AppRoleAuth{RoleID: roleID, SecretIDFile: file}, zap.New(core)))
	// The secret ID goes missing (a botched rotation) before the token has
	// to be replaced.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	runSession(t, s)
	waitFor(t, 10*time.Second, "fewer than 3 failed logins were retried", func() bool {
		return logs.FilterMessage(msgRetry).Len() >= 3
	})
	failed := logs.FilterMessage(msgRetry).All()[0]
	if e, _ := failed.ContextMap()["error"].(string); !strings.Contains(e, file) {
		t.Errorf("the failed login's log line does not name the missing file %s: %v", file, failed.ContextMap())
	}
	writeFile(t, file, secretID)
	waitFor(t, 10*time.Second, "no new login after the secret id came back", func() bool {
		return logs.FilterMessage(msgLoggedIn).Len() >= 2
	})
	if err := newStore(t, s.Client(), Options{}).Ping(ctxT(t)); err != nil {
		t.Fatalf("Ping after the new login: %v", err)
	}
	assertNoSecrets(t, logText(logs), secretID, roleID)
}

func logTimes(logs *observer.ObservedLogs) string {
	var b strings.Builder
	for _, e := range logs.All() {
		fmt.Fprintf(&b, "%s %s %s %v\n", e.Time.Format("15:04:05.000"), e.Level, e.Message, e.ContextMap())
	}
	return b.String()
}
