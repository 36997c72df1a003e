# want: 6:3 An argument named "client_secrets" is not expected here
carrier "main" {
  environment    = "test"
  client_id      = "id"
  redirect_uri   = "https://127.0.0.1/upscallback"
  client_secrets = env("UPS_CLIENT_SECRET")
}
