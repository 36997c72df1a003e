# want: 2:1 The argument "redirect_uri" is required
carrier "main" {
  environment = "test"
  client_id   = "id"
}
