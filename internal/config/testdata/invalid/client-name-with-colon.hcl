# want: 2:1 must not be empty or contain ':'
client "erp:1" {
  password_hash = "$2a$10$mZfaaPCVaDin1zY4zdQu/uIJ3xL8oChYAJVdN28wS9GacPBDTE9A."
}
