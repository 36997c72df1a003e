# want: 2:1 The argument "client_id" is required
carrier "main" {
  environment  = "test"
  redirect_uri = "https://127.0.0.1/upscallback"
}
