# want: 4:16 plain http
console {
  listen     = "0.0.0.0:8443"
  public_url = "http://upsproxy.lan:8443"
  user "alice" {
    password_hash = "$2a$10$mZfaaPCVaDin1zY4zdQu/uIJ3xL8oChYAJVdN28wS9GacPBDTE9A."
  }
}
