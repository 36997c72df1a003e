# want: 3:22 warm_connections must be between 0 (off) and 64
ups {
  warm_connections = -2
}
