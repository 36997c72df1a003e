# want: 3:22 want a whole number of bytes
limits {
  max_request_body = -1
}
