# want: 3:22 upstream_timeout must be positive
limits {
  upstream_timeout = "-5s"
}
