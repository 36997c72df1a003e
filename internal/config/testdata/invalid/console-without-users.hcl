# want: 2:1 at least one user block
console {
  listen     = "127.0.0.1:8443"
  public_url = "http://127.0.0.1:8443"
}
