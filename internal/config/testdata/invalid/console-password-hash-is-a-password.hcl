# want: 6:21 password_hash must be a bcrypt hash
console {
  listen     = "127.0.0.1:8443"
  public_url = "http://127.0.0.1:8443"
  user "alice" {
    password_hash = "hunter2"
  }
}
