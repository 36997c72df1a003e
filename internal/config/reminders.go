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
	// NotifyAt are the thresholds before expiry at which notify channels
	// get one "expiring" message each, widest first.
	NotifyAt []time.Duration
	// NotifyFailingAfter: refreshes failing this long send a "failing"
	// message.
	NotifyFailingAfter time.Duration
	// NotifyInterval is the time between two notification passes.
	NotifyInterval time.Duration
}

// Defaults of the reminders block.
const (
	DefaultWarnBefore       = 168 * time.Hour
	DefaultReminderInterval = 6 * time.Hour
	DefaultNotifyFailing    = time.Hour
	DefaultNotifyInterval   = time.Minute
)

// DefaultNotifyAt are the default notify_at thresholds: 7, 3 and 1 days.
var DefaultNotifyAt = []time.Duration{168 * time.Hour, 72 * time.Hour, 24 * time.Hour}

type rawReminders struct {
	WarnBefore *string  `hcl:"warn_before,optional"`
	Interval   *string  `hcl:"interval,optional"`
	NotifyAt   []string `hcl:"notify_at,optional"`
	// NotifyFailingAfter and NotifyInterval are named for the keys.
	NotifyFailingAfter *string  `hcl:"notify_failing_after,optional"`
	NotifyInterval     *string  `hcl:"notify_interval,optional"`
	Body               hcl.Body `hcl:",body"`
}

func (r *rawReminders) build(bd *builder) (Reminders, hcl.Diagnostics) {
	out := Reminders{WarnBefore: DefaultWarnBefore, Interval: DefaultReminderInterval,
		NotifyAt: DefaultNotifyAt, NotifyFailingAfter: DefaultNotifyFailing, NotifyInterval: DefaultNotifyInterval}
	if r == nil {
		return out, nil
	}
	var diags hcl.Diagnostics
	b := bd.block(r.Body, hcl.Range{})
	out.WarnBefore = b.duration(&diags, "warn_before", r.WarnBefore, DefaultWarnBefore)
	out.Interval = b.duration(&diags, "interval", r.Interval, DefaultReminderInterval)
	out.NotifyFailingAfter = b.duration(&diags, "notify_failing_after", r.NotifyFailingAfter, DefaultNotifyFailing)
	out.NotifyInterval = b.duration(&diags, "notify_interval", r.NotifyInterval, DefaultNotifyInterval)
	if r.NotifyAt != nil {
		out.NotifyAt = nil
		for i, s := range r.NotifyAt {
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				e := b.errorf("notify_at", "Invalid duration",
					"notify_at lists positive Go durations such as \"168h\" or \"24h\"; %q is not one.", s)
				e.Subject = b.elemRange("notify_at", i)
				diags = append(diags, e)
				continue
			}
			out.NotifyAt = append(out.NotifyAt, d)
		}
	}
	return out, diags
}
