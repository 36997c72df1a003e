# want: 5:1 Only one log block is allowed
log {
  level = "info"
}
log {
  level = "debug"
}
