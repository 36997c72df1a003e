# want: 3:15 a bool is required
carrier "main" {
  inactive = "maybe"
  environment  = "test"
  client_id    = "id"
  redirect_uri = "https://127.0.0.1/upscallback"
}
