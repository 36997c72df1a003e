# want: 3:17 warn_before must be positive
reminders {
  warn_before = "0s"
}
