# want: 4:17 interval must be a Go duration
reminders {
  warn_before = "168h"
  interval    = "6 hours"
}
