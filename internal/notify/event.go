// Package notify tells people, by email and webhook, that a carrier's UPS
// refresh token is about to expire, has expired, was rejected, cannot be
// refreshed, or was renewed. Each message goes out once across all
// replicas: what was sent (event, threshold, login) is claimed and recorded
// with check-and-set in a Vault record beside the token record. Delivery
// runs on its own goroutines with bounded queues and timeouts, so a slow or
// failing channel never delays requests or token refreshes.
package notify

import (
	"fmt"
	"strings"
	"time"

	"github.com/upsproxy/upsproxy/internal/tokens"
	"github.com/upsproxy/upsproxy/internal/ups"
)

// Kind is what happened.
type Kind string

// The events.
const (
	// Expiring: the refresh token expires within a notify_at threshold.
	Expiring Kind = "expiring"
	// Expired: the refresh token's expiry has passed.
	Expired Kind = "expired"
	// Rejected: UPS refused the refresh token before its expiry.
	Rejected Kind = "rejected"
	// Failing: refreshes have failed for longer than failing_after.
	Failing Kind = "failing"
	// Renewed: someone logged in after a reminder went out.
	Renewed Kind = "renewed"
	// Test: `upsproxy notify test`.
	Test Kind = "test"
)

// Kinds are every event kind a channel can subscribe to.
var Kinds = []Kind{Expiring, Expired, Rejected, Failing, Renewed}

// Event is one message's content. Its JSON form is the webhook body.
type Event struct {
	Event       Kind            `json:"event"`
	Carrier     string          `json:"carrier"`
	Environment ups.Environment `json:"environment"`
	// Threshold is the notify_at threshold crossed ("72h"), expiring only.
	Threshold string `json:"threshold,omitempty"`
	// ExpiresAt is the refresh token's expiry; DaysLeft the whole days
	// until then.
	ExpiresAt time.Time `json:"refresh_token_expires_at,omitzero"`
	DaysLeft  int       `json:"days_left"`
	// FailingSince and Error describe a failing refresh.
	FailingSince time.Time `json:"failing_since,omitzero"`
	Error        string    `json:"error,omitempty"`
	// Command is the exact login command to run; ConsoleURL, when a
	// console is configured, the page that renews from a browser.
	Command    string    `json:"command"`
	ConsoleURL string    `json:"console_url,omitempty"`
	At         time.Time `json:"at"`
	// Text is the whole message as plain text, for Slack- and Teams-style
	// incoming webhooks that show a "text" field as is.
	Text string `json:"text"`
}

// newEvent fills in the fields every message carries.
func newEvent(kind Kind, carrier string, env ups.Environment, expires, now time.Time, consoleBase string) Event {
	ev := Event{
		Event: kind, Carrier: carrier, Environment: env, ExpiresAt: expires, At: now,
		Command: tokens.LoginCommand(carrier, env),
	}
	if !expires.IsZero() {
		ev.DaysLeft = tokens.DaysLeft(expires, now)
	}
	if consoleBase != "" {
		ev.ConsoleURL = ConsoleLink(consoleBase, carrier, env)
	}
	return ev
}

// ConsoleLink is the console's page of one carrier and environment.
func ConsoleLink(base, carrier string, env ups.Environment) string {
	return strings.TrimRight(base, "/") + "/carriers/" + carrier + "/" + string(env)
}

// Subject is the one-line summary (the email subject).
func (e Event) Subject() string {
	who := fmt.Sprintf("%s (%s)", e.Carrier, e.Environment)
	switch e.Event {
	case Expiring:
		return fmt.Sprintf("upsproxy: UPS login for %s expires in %s", who, left(e))
	case Expired:
		return fmt.Sprintf("upsproxy: UPS login for %s has expired", who)
	case Rejected:
		return fmt.Sprintf("upsproxy: UPS rejected the login for %s", who)
	case Failing:
		return fmt.Sprintf("upsproxy: UPS token refresh failing for %s", who)
	case Renewed:
		return fmt.Sprintf("upsproxy: UPS login for %s renewed", who)
	default:
		return "upsproxy: test message"
	}
}

// left is the remaining time as people say it.
func left(e Event) string {
	switch e.DaysLeft {
	case 0:
		return "less than a day"
	case 1:
		return "1 day"
	}
	return fmt.Sprintf("%d days", e.DaysLeft)
}

// Body is the plain-text message: what happened, when, and what to do.
func (e Event) Body() string {
	var b strings.Builder
	exp := func() string { return e.ExpiresAt.UTC().Format("Mon 2 Jan 2006 15:04 MST") }
	fmt.Fprintf(&b, "Carrier: %s\nEnvironment: %s\n", e.Carrier, e.Environment)
	if !e.ExpiresAt.IsZero() && e.Event != Test {
		fmt.Fprintf(&b, "Refresh token expires: %s (%d days left)\n", exp(), e.DaysLeft)
	}
	b.WriteString("\n")
	todo := true
	switch e.Event {
	case Expiring:
		fmt.Fprintf(&b, "The UPS login of this carrier expires in %s. After that every UPS request through upsproxy fails until someone logs in again.\n", left(e))
	case Expired:
		b.WriteString("The UPS login of this carrier has expired: every UPS request through upsproxy fails until someone logs in again.\n")
	case Rejected:
		b.WriteString("UPS rejected this carrier's refresh token: every UPS request through upsproxy fails until someone logs in again.\n")
	case Failing:
		fmt.Fprintf(&b, "upsproxy has been unable to refresh this carrier's UPS token since %s", e.FailingSince.UTC().Format(time.RFC3339))
		if e.Error != "" {
			fmt.Fprintf(&b, ": %s", e.Error)
		}
		b.WriteString(".\nCheck that UPS is reachable from upsproxy and the upsproxy logs. If UPS refuses the login, log in again.\n")
	case Renewed:
		b.WriteString("Someone logged in again: the reminders for this carrier are done until the next expiry.\n")
		todo = false
	default:
		b.WriteString("This is a test message from `upsproxy notify test`: this channel works.\n")
		todo = false
	}
	if todo {
		fmt.Fprintf(&b, "\nTo log in again, run on the upsproxy host:\n\n    %s\n", e.Command)
		if e.ConsoleURL != "" {
			fmt.Fprintf(&b, "\nor renew from a browser: %s\n", e.ConsoleURL)
		}
	}
	return b.String()
}

// withText sets Text from the subject and body.
func (e Event) withText() Event {
	e.Text = e.Subject() + "\n\n" + e.Body()
	return e
}
