# want: 4:17 grant must be "authorization_code" or "client_credentials", not "password"
carrier "main" {
  environment = "test"
  grant       = "password"
  client_id   = "id"
}
