package config

import (
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Reminders schedules the log lines that nag admins to run upsproxy login
// before an active carrier's refresh token expires.
type Reminders struct {
	// WarnBefore is how long before expiry the warnings start.
	WarnBefore time.Duration
	// Interval is the time between two warnings.
	Interval time.Duration
}

// Defaults of the reminders block.
const (
	DefaultWarnBefore       = 168 * time.Hour
	DefaultReminderInterval = 6 * time.Hour
)

type rawReminders struct {
	WarnBefore *string  `hcl:"warn_before,optional"`
	Interval   *string  `hcl:"interval,optional"`
	Body       hcl.Body `hcl:",body"`
}

func (r *rawReminders) build(bd *builder) (Reminders, hcl.Diagnostics) {
	out := Reminders{WarnBefore: DefaultWarnBefore, Interval: DefaultReminderInterval}
	if r == nil {
		return out, nil
	}
	var diags hcl.Diagnostics
	b := bd.block(r.Body, hcl.Range{})
	out.WarnBefore = b.duration(&diags, "warn_before", r.WarnBefore, DefaultWarnBefore)
	out.Interval = b.duration(&diags, "interval", r.Interval, DefaultReminderInterval)
	return out, diags
}
