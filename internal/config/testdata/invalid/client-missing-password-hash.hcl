# want: 2:1 The argument "password_hash" is required
client "erp" {
}
