# want: 3:12 log format must be one of json, console, not "text"
log {
  format = "text"
}
