# want: 8:3 Duplicate console user name
console {
  listen     = "127.0.0.1:8443"
  public_url = "http://127.0.0.1:8443"
  user "alice" {
    password_hash = "$2a$10$mZfaaPCVaDin1zY4zdQu/uIJ3xL8oChYAJVdN28wS9GacPBDTE9A."
  }
  user "alice" {
    password_hash = "$2a$10$mZfaaPCVaDin1zY4zdQu/uIJ3xL8oChYAJVdN28wS9GacPBDTE9A."
  }
}
