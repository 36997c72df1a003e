# want: 4:16 must not have a query
console {
  listen     = "127.0.0.1:8443"
  public_url = "https://ups.example.com/?x=1"
  user "alice" {
    password_hash = "$2a$10$mZfaaPCVaDin1zY4zdQu/uIJ3xL8oChYAJVdN28wS9GacPBDTE9A."
  }
}
