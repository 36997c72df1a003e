# want: 3:21 max_connections must be positive
limits {
  max_connections = 0
}
