# want: 3:19 password_hash must be a bcrypt hash
client "erp" {
  password_hash = "hunter2"
}
