# want: 2:1 The argument "environment" is required
carrier "main" {
  client_id    = "id"
  redirect_uri = "https://127.0.0.1/upscallback"
}
