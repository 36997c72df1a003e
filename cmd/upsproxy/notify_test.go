package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/testutil/smtptest"
	"github.com/upsproxy/upsproxy/internal/ups"
)

const (
	notifySMTPPassword = "smtp-e2e-pa55word"
	notifyHookPath     = "/services/T0E2E/B0E2E/hook-secret-path-4242"
	notifyHookToken    = "Bearer hook-header-secret-77"
)

// hookRecorder is a webhook receiver recording every call.
type hookRecorder struct {
	mu     sync.Mutex
	bodies []map[string]any
	bad    []string
}

func (h *hookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.URL.Path != notifyHookPath || r.Header.Get("Authorization") != notifyHookToken {
		h.bad = append(h.bad, r.URL.Path)
		http.Error(w, "no", http.StatusForbidden)
		return
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	h.bodies = append(h.bodies, m)
}

func (h *hookRecorder) calls() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.bodies...)
}

// notifyEnv is the demo's setup plus a mail and a webhook channel.
func notifyEnv(t *testing.T, refreshTTL time.Duration) (*env, *smtptest.Server, *hookRecorder) {
	t.Helper()
	mail := smtptest.Start(t, smtptest.Options{Username: "upsproxy", Password: notifySMTPPassword})
	hook := &hookRecorder{}
	hs := httptest.NewServer(hook)
	t.Cleanup(hs.Close)
	rememberSecret(notifySMTPPassword)
	rememberSecret(notifyHookPath)
	rememberSecret(notifyHookToken)
	e := newEnv(t, envOptions{refreshTTL: refreshTTL, extra: fmt.Sprintf(`
reminders {
  notify_interval = "200ms"
}
notify "mail" {
  email {
    host     = "127.0.0.1"
    port     = %d
    tls      = "starttls"
    ca_file  = %q
    username = "upsproxy"
    password = file("smtp-password")
    from     = "upsproxy <upsproxy@example.com>"
    to       = ["shipping@example.com", "it@example.com"]
  }
}
notify "chat" {
  webhook {
    url     = file("hook-url")
    headers = { Authorization = file("hook-token") }
  }
}
`, mail.Port, mail.CAFile)})
	writeFile(t, filepath.Join(e.dir, "smtp-password"), notifySMTPPassword)
	writeFile(t, filepath.Join(e.dir, "hook-url"), hs.URL+notifyHookPath)
	writeFile(t, filepath.Join(e.dir, "hook-token"), notifyHookToken)
	return e, mail, hook
}

func TestNotifyTestSendsATestMessageThroughTheNamedChannel(t *testing.T) {
	e, mail, hook := notifyEnv(t, 0)
	if r := e.run("", "notify", "test", "--channel", "mail"); r.code != 0 {
		t.Fatalf("notify test --channel mail: exit %d: %s", r.code, r.stderr)
	}
	msgs := mail.Messages()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Data, "Subject: upsproxy: test message") || len(msgs[0].To) != 2 {
		t.Fatalf("mail = %+v", msgs)
	}
	if r := e.run("", "notify", "test", "--channel", "chat"); r.code != 0 {
		t.Fatalf("notify test --channel chat: exit %d: %s", r.code, r.stderr)
	}
	if c := hook.calls(); len(c) != 1 || c[0]["event"] != "test" || !strings.Contains(fmt.Sprint(c[0]["text"]), "this channel works") {
		t.Fatalf("webhook calls = %v", c)
	}
	r := e.run("", "notify", "test", "--channel", "pager")
	if r.code == 0 || !strings.Contains(r.stderr, `no notify block "pager"`) || !strings.Contains(r.stderr, "mail, chat") {
		t.Errorf("unknown channel: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestNotifyTestOfAnUnreachableChannelFailsWithAReason(t *testing.T) {
	e, _, _ := notifyEnv(t, 0)
	writeFile(t, filepath.Join(e.dir, "hook-url"), "http://127.0.0.1:1"+notifyHookPath)
	r := e.run("", "notify", "test", "--channel", "chat")
	if r.code == 0 || !strings.Contains(r.stderr, `notify channel "chat"`) {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// The done-when: the demo's setup plus a notify block, a refresh
// token three days from expiry, three `upsproxy serve` processes: exactly
// one email and one webhook call.
func TestThreeServeReplicasSendOneEmailAndOneWebhookForARefreshTokenThreeDaysFromExpiry(t *testing.T) {
	e, mail, hook := notifyEnv(t, 71*time.Hour)
	e.login("main")
	rs := []*replica{e.startReplica(t, "r1"), e.startReplica(t, "r2"), e.startReplica(t, "r3")}

	waitFor(t, func() bool { return len(mail.Messages()) >= 1 && len(hook.calls()) >= 1 }, "the reminder")
	// Many more passes of every replica (200ms apart) must add nothing.
	time.Sleep(2 * time.Second)
	for _, r := range rs {
		if err := r.kill(syscall.SIGTERM); err != nil {
			t.Errorf("replica %s: %v", r.name, err)
		}
	}
	msgs, calls := mail.Messages(), hook.calls()
	if len(msgs) != 1 || len(calls) != 1 {
		t.Fatalf("%d emails and %d webhook calls across three replicas, want 1 and 1", len(msgs), len(calls))
	}
	m := strings.ReplaceAll(msgs[0].Data, "=\r\n", "")
	for _, want := range []string{"Subject: upsproxy: UPS login for main (test) expires in 2 days", "upsproxy login --carrier main --env test"} {
		if !strings.Contains(m, want) {
			t.Errorf("mail lacks %q:\n%s", want, m)
		}
	}
	if strings.Join(msgs[0].To, ",") != "shipping@example.com,it@example.com" || !msgs[0].TLS || msgs[0].User != "upsproxy" {
		t.Errorf("mail to %v TLS=%v user=%q", msgs[0].To, msgs[0].TLS, msgs[0].User)
	}
	if c := calls[0]; c["event"] != "expiring" || c["threshold"] != "72h0m0s" || c["carrier"] != "main" || c["environment"] != string(ups.Test) {
		t.Errorf("webhook body = %v", c)
	}
	delivered := 0
	for _, r := range rs {
		delivered += strings.Count(r.logs.String(), "notify: message delivered")
	}
	if delivered != 2 {
		t.Errorf("replicas logged %d deliveries, want 2 (one per channel)", delivered)
	}

	// A restart of every replica sends nothing again.
	rs = []*replica{e.startReplica(t, "r1b"), e.startReplica(t, "r2b"), e.startReplica(t, "r3b")}
	time.Sleep(1500 * time.Millisecond)
	for _, r := range rs {
		_ = r.kill(syscall.SIGTERM)
	}
	if len(mail.Messages()) != 1 || len(hook.calls()) != 1 {
		t.Errorf("after a restart: %d emails and %d webhook calls, want still 1 and 1", len(mail.Messages()), len(hook.calls()))
	}
}
