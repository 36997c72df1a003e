# want: 3:24 "3 days" is not one
reminders {
  notify_at = ["168h", "3 days"]
}
