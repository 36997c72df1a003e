# want: 4:18 string required
carrier "main" {
  environment  = "test"
  client_id    = vault("secret/data/ups", "client_id")
  redirect_uri = "https://127.0.0.1/upscallback"
}
