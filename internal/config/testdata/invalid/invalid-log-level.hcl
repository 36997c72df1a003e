# want: 3:12 log level must be one of debug, info, warn, error, not "verbose"
log {
  level  = "verbose"
}
