# want: 4:16 already uses
admin_listen = "127.0.0.1:9090"
console {
  listen     = "127.0.0.1:9090"
  public_url = "http://127.0.0.1:9090"
  user "alice" {
    password_hash = "$2a$10$mZfaaPCVaDin1zY4zdQu/uIJ3xL8oChYAJVdN28wS9GacPBDTE9A."
  }
}
