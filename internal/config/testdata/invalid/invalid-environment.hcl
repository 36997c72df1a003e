# want: 3:17 environment must be "test" or "production", not "prod"
carrier "main" {
  environment = "prod"
  client_id    = "id"
  redirect_uri = "https://127.0.0.1/upscallback"
}
