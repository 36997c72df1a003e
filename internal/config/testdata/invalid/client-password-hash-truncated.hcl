# want: 3:19 password_hash must be a bcrypt hash
client "erp" {
  password_hash = "$2a$10$mZfaaPCVaDin1zY4zdQu/uIJ3xL8oChYAJVdN28wS9GacPB"
}
