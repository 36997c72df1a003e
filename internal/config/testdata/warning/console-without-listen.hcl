# want: 2:1 console is off
console {
  public_url = "http://127.0.0.1:8443"
  user "alice" {
    password_hash = "$2a$10$mZfaaPCVaDin1zY4zdQu/uIJ3xL8oChYAJVdN28wS9GacPBDTE9A."
  }
}
