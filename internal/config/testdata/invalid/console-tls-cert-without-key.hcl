# want: 5:16 tls_key is not
console {
  listen     = "127.0.0.1:8443"
  public_url = "https://127.0.0.1:8443"
  tls_cert   = "console.crt"
  user "alice" {
    password_hash = "$2a$10$mZfaaPCVaDin1zY4zdQu/uIJ3xL8oChYAJVdN28wS9GacPBDTE9A."
  }
}
