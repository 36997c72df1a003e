# want: 3:25 unknown unit "parsecs"
limits {
  max_request_body    = "10 parsecs"
}
