package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/testutil/smtptest"
	"github.com/upsproxy/upsproxy/internal/ups"
)

var testNow = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func expiringEvent() Event {
	ev := newEvent(Expiring, "main", ups.Production, testNow.Add(71*time.Hour), testNow, "https://console.example.com/")
	ev.Threshold = "72h0m0s"
	return ev.withText()
}

func TestEmailOverSTARTTLSWithAuthPlainReachesEveryRecipientWithSubjectAndInstructions(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Username: "upsproxy", Password: "smtp-pa55word"})
	m, err := NewEmail("ops", EmailOptions{
		Host: srv.Host, Port: srv.Port, TLS: TLSStartTLS, RootCAs: srv.CertPool(),
		Username: "upsproxy", Password: "smtp-pa55word",
		From: "upsproxy <upsproxy@example.com>", To: []string{"alice@example.com", "bob@example.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), expiringEvent()); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages arrived, want 1", len(msgs))
	}
	got := msgs[0]
	if !got.TLS || got.User != "upsproxy" {
		t.Errorf("message arrived with TLS=%v as user %q; want STARTTLS and AUTH PLAIN as upsproxy", got.TLS, got.User)
	}
	if got.From != "upsproxy@example.com" || strings.Join(got.To, ",") != "alice@example.com,bob@example.com" {
		t.Errorf("envelope from %q to %v", got.From, got.To)
	}
	for _, want := range []string{
		"Subject: upsproxy: UPS login for main (production) expires in 2 days",
		"Carrier: main", "Environment: production", "2 days left",
		"upsproxy login --carrier main --env production",
		"https://console.example.com/carriers/main/production",
	} {
		if !strings.Contains(unfold(got.Data), want) {
			t.Errorf("message lacks %q:\n%s", want, got.Data)
		}
	}
	if ok, bad := srv.Auths(); ok != 1 || bad != 0 {
		t.Errorf("AUTH: %d ok, %d refused", ok, bad)
	}
}

// unfold undoes header folding and quoted-printable soft line breaks.
func unfold(s string) string {
	s = strings.ReplaceAll(s, "=\r\n", "")
	return strings.ReplaceAll(s, "\r\n ", " ")
}

func TestEmailOverImplicitTLS(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Implicit: true})
	m, err := NewEmail("ops", EmailOptions{Host: srv.Host, Port: srv.Port, TLS: TLSImplicit, RootCAs: srv.CertPool(),
		From: "upsproxy@example.com", To: []string{"ops@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), expiringEvent()); err != nil {
		t.Fatal(err)
	}
	if msgs := srv.Messages(); len(msgs) != 1 || !msgs[0].TLS {
		t.Fatalf("messages = %+v", msgs)
	}
}

func TestEmailRefusesAServerWhoseCertificateIsNotTrusted(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Username: "u", Password: "never-sent-in-clear"})
	m, _ := NewEmail("ops", EmailOptions{Host: srv.Host, Port: srv.Port, Username: "u", Password: "never-sent-in-clear",
		From: "upsproxy@example.com", To: []string{"ops@example.com"}})
	err := m.Send(context.Background(), expiringEvent())
	if err == nil || len(srv.Messages()) != 0 {
		t.Fatalf("sent through an untrusted server: err=%v", err)
	}
	if ok, bad := srv.Auths(); ok+bad != 0 {
		t.Error("the password was offered to an untrusted server")
	}
}

func TestEmailWithAWrongPasswordFailsWithoutEchoingIt(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Username: "u", Password: "right-password"})
	m, _ := NewEmail("ops", EmailOptions{Host: srv.Host, Port: srv.Port, RootCAs: srv.CertPool(), Username: "u", Password: "wrong-password-xyz",
		From: "upsproxy@example.com", To: []string{"ops@example.com"}})
	err := m.Send(context.Background(), expiringEvent())
	if err == nil {
		t.Fatal("a refused login was reported as sent")
	}
	if strings.Contains(err.Error(), "wrong-password-xyz") {
		t.Errorf("error shows the password: %v", err)
	}
}

func TestEmailOptionsThatWouldLeakOrLoseMailAreRefused(t *testing.T) {
	for name, o := range map[string]EmailOptions{
		"no host":           {From: "a@b.c", To: []string{"d@e.f"}},
		"no recipient":      {Host: "h", From: "a@b.c"},
		"password in clear": {Host: "h", From: "a@b.c", To: []string{"d@e.f"}, TLS: TLSNone, Username: "u", Password: "p"},
	} {
		if _, err := NewEmail("x", o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// hook is a webhook receiver that fails its first n calls.
type hook struct {
	mu     sync.Mutex
	failN  int
	calls  int
	bodies []map[string]any
	auth   []string
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if h.calls <= h.failN {
		http.Error(w, "upstream sad", http.StatusBadGateway)
		return
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	h.bodies = append(h.bodies, m)
	h.auth = append(h.auth, r.Header.Get("Authorization"))
}

func (h *hook) got() (calls int, bodies []map[string]any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls, append([]map[string]any(nil), h.bodies...)
}

func TestWebhookPostsTheEventFieldsAndAPlainTextForChatTools(t *testing.T) {
	h := &hook{}
	srv := httptest.NewServer(h)
	defer srv.Close()
	w, err := NewWebhook("slack", WebhookOptions{URL: srv.URL + "/services/T0/B0/secretpath", Headers: map[string]string{"Authorization": "Bearer hook-token-123"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Send(context.Background(), expiringEvent()); err != nil {
		t.Fatal(err)
	}
	_, bodies := h.got()
	if len(bodies) != 1 {
		t.Fatalf("%d bodies", len(bodies))
	}
	b := bodies[0]
	for k, want := range map[string]any{
		"event": "expiring", "carrier": "main", "environment": "production", "days_left": float64(2),
		"threshold": "72h0m0s", "command": "upsproxy login --carrier main --env production",
		"console_url":              "https://console.example.com/carriers/main/production",
		"refresh_token_expires_at": testNow.Add(71 * time.Hour).Format(time.RFC3339),
	} {
		if b[k] != want {
			t.Errorf("%s = %#v, want %#v", k, b[k], want)
		}
	}
	text, _ := b["text"].(string)
	if !strings.HasPrefix(text, "upsproxy: UPS login for main (production) expires in 2 days") ||
		!strings.Contains(text, "upsproxy login --carrier main --env production") {
		t.Errorf("text = %q", text)
	}
	if h.auth[0] != "Bearer hook-token-123" {
		t.Errorf("Authorization header = %q", h.auth[0])
	}
}

func TestWebhookNeverFollowsARedirectWithItsHeadersOrSecretURL(t *testing.T) {
	var mu sync.Mutex
	var got []*http.Request
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
	}))
	defer elsewhere.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/collect", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	w, _ := NewWebhook("slack", WebhookOptions{URL: srv.URL + "/services/T0/B0/secretpath",
		Headers: map[string]string{"X-Api-Key": "hook-key-123"}})
	err := w.Send(context.Background(), expiringEvent())
	if err == nil || !strings.Contains(err.Error(), "307") || strings.Contains(err.Error(), "secretpath") {
		t.Fatalf("err = %v, want the 307 as an error naming no secret", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 0 {
		t.Fatalf("the redirect target got %d requests (X-Api-Key %q, Referer %q)", len(got),
			got[0].Header.Get("X-Api-Key"), got[0].Header.Get("Referer"))
	}
}

func TestWebhookErrorsNameTheHostButNeverTheSecretPath(t *testing.T) {
	h := &hook{failN: 1}
	srv := httptest.NewServer(h)
	defer srv.Close()
	w, _ := NewWebhook("slack", WebhookOptions{URL: srv.URL + "/services/T0/B0/secretpath"})
	err := w.Send(context.Background(), expiringEvent())
	if err == nil || !strings.Contains(err.Error(), "502") || strings.Contains(err.Error(), "secretpath") {
		t.Fatalf("err = %v", err)
	}
	srv.Close()
	err = w.Send(context.Background(), expiringEvent())
	if err == nil || strings.Contains(err.Error(), "secretpath") {
		t.Fatalf("err = %v", err)
	}
}
