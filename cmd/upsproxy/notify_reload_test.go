package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// A SIGHUP whose notify channel cannot be built (its vault() webhook URL is
// not in Vault) fails the reload and keeps the running notification loop:
// a refresh token that nears its expiry afterwards is still announced.
// Before, the running loop was stopped first and the reload reported
// success: no reminder was sent again until the next good reload.
func TestNotify_AReloadWhoseChannelCannotBeBuiltKeepsTheRunningChannels(t *testing.T) {
	e, mail, hook := notifyEnv(t, 0)
	e.login("main")
	r := e.startReplica(t, "hup")
	orig, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(orig), `url     = file("hook-url")`, `url     = vault("secret/data/notify/absent", "url")`, 1)
	if bad == string(orig) {
		t.Fatal("the test config has no webhook url line to replace")
	}
	writeFile(t, e.cfgPath, bad)
	if err := r.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(r.logs.String(), "reload failed") }, "the failed reload")
	if logs := r.logs.String(); !strings.Contains(logs, `notify \"chat\": url`) || strings.Contains(logs, "configuration reloaded") {
		t.Fatalf("the reload does not fail naming the channel:\n%s", logs)
	}

	// Now the refresh token is three days from its end: the channels of
	// the running configuration announce it.
	e.editRecord("main", ups.Test, func(rec *vaultstore.Record) {
		rec.Token.RefreshExpiresAt = time.Now().Add(71 * time.Hour)
	})
	waitFor(t, func() bool { return len(mail.Messages()) >= 1 && len(hook.calls()) >= 1 }, "the reminder through the running channels")
	if err := r.kill(syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

// A notify channel whose vault() secret cannot be read stops `serve` at
// start-up with an error naming the channel, as a carrier's unreadable
// vault() client secret does. Before, serve ran on without any channel
// after one ERROR line, and every reminder was lost unnoticed.
func TestNotify_AChannelWhoseVaultSecretCannotBeReadStopsStartUpNamingIt(t *testing.T) {
	e, _, _ := notifyEnv(t, 0)
	orig, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(orig), `password = file("smtp-password")`, `password = vault("secret/data/notify/smtp", "password")`, 1)
	if bad == string(orig) {
		t.Fatal("the test config has no password line to replace")
	}
	writeFile(t, e.cfgPath, bad)
	r := e.run("", "serve")
	if r.code == 0 || !strings.Contains(r.stderr, `notify "mail": password`) || strings.Contains(r.stderr, "proxy listening") {
		t.Fatalf("serve: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	t.Logf("serve: %s", lastLine(r.stderr))
}
