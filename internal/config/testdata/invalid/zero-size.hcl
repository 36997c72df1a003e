# want: 3:21 body_scan_limit must be positive
limits {
  body_scan_limit = "0MiB"
}
