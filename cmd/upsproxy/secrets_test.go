package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
)

// literalCarrier is carrier "main" with its client secret pasted into the
// file, which upsproxy accepts with a warning that points at the line.
func literalCarrier(secret string) string {
	return `
carrier "main" {
  environment   = "test"
  default       = true
  client_id     = "test-client-id"
  client_secret = "` + secret + `"
  redirect_uri  = "https://127.0.0.1/upscallback"
}
`
}

// A client_secret written as a literal is warned about, at start-up (serve
// and config validate) with the file's line, but the snippet never shows
// the secret.
func TestSecrets_LiteralClientSecretIsWarnedAboutButNeverPrinted(t *testing.T) {
	e := newEnv(t, envOptions{carriers: literalCarrier(testSecret)})
	masked := `client_secret = "` + strings.Repeat("*", len(testSecret)) + `"`

	r := e.run("", "config", "validate")
	if r.code != 0 {
		t.Fatalf("config validate exit %d: %s", r.code, r.stderr)
	}
	s := e.serve()
	e.login("main")
	for what, out := range map[string]string{"config validate": r.stdout + r.stderr, "serve": s.logs.String()} {
		if !strings.Contains(out, "client_secret is a literal in the config file") || !strings.Contains(out, masked) {
			t.Errorf("%s does not show the warning with the masked line %s:\n%s", what, masked, out)
		}
		if strings.Contains(out, testSecret) {
			t.Errorf("%s prints the literal client secret", what)
		}
	}
}

// A SIGHUP whose new file has a literal secret is logged with the masked
// snippet, whether the reload fails (an error elsewhere) or succeeds with
// the warning; the running process never prints the secret.
func TestSecrets_SIGHUPReloadWithALiteralSecretNeverPrintsIt(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.login("main")
	r := e.startReplica(t, "hup-secret")
	orig, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	const newSecret = "pasted-in-by-an-operator-5b1f"
	rememberSecret(newSecret)
	withLiteral := strings.Replace(string(orig), `client_secret = file("ups-secret")`, `client_secret = "`+newSecret+`"`, 1)
	if withLiteral == string(orig) {
		t.Fatal("the test config has no client_secret = file(...) line to replace")
	}

	// Fails: another carrier is invalid. The diagnostics hold both.
	writeFile(t, e.cfgPath, withLiteral+"\ncarrier \"broken\" {\n  environment = \"staging\"\n}\n")
	if err := r.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(r.logs.String(), "reload failed") }, "the failed reload")
	// Succeeds, with the warning.
	writeFile(t, e.cfgPath, withLiteral)
	if err := r.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(r.logs.String(), "configuration reloaded") }, "the reload")
	if err := r.kill(syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}

	logs := r.logs.String()
	if strings.Contains(logs, newSecret) {
		t.Fatal("the reload logs print the literal client secret")
	}
	masked := `client_secret = \"` + strings.Repeat("*", len(newSecret)) + `\"` // inside a JSON string
	if n := strings.Count(logs, masked); n != 2 || !strings.Contains(logs, "staging") {
		t.Errorf("want the masked line in the failed and in the successful reload (%d found) and the failed reload's error:\n%s", n, logs)
	}
}

// Masking secrets out of messages must not garble them: with a token as
// short as "t", the login error still reads as written (VAULT_TOKEN=t once
// turned every "t" into "<redacted>").
func TestSecrets_AShortVaultTokenDoesNotGarbleMessages(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "t")
	e := newEnv(t, envOptions{vaultAuth: `auth "token" {}`})
	for _, args := range [][]string{{"serve"}, {"token", "info", "--carrier", "main"}} {
		r := e.run("", args...)
		if r.code == 0 {
			t.Fatalf("%s with an invalid Vault token exited 0", args)
		}
		out := r.stdout + r.stderr
		if strings.Contains(out, "<redacted>") || !strings.Contains(out, "vault token login failed: check the token from VAULT_TOKEN: vault answered 403: ") {
			t.Errorf("%s: the login error is garbled or missing:\n%s", args, out)
		}
	}
}
