console {
  listen     = "127.0.0.1:8443"
  public_url = "https://upsproxy.example.com:8443/ups/"
  tls_cert   = "console.crt"
  tls_key    = "console.key"
  user "Alice Shipping" {
    password_hash = "$2a$10$mZfaaPCVaDin1zY4zdQu/uIJ3xL8oChYAJVdN28wS9GacPBDTE9A."
  }
  user "bob" {
    password_hash = "$2a$10$mZfaaPCVaDin1zY4zdQu/uIJ3xL8oChYAJVdN28wS9GacPBDTE9A."
  }
}
