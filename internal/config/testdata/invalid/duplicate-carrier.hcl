# want: 8:1 duplicate carrier name "main"
carrier "main" {
  environment  = "test"
  client_id    = "id-1"
  redirect_uri = "https://127.0.0.1/upscallback"
}

carrier "main" {
  environment  = "production"
  client_id    = "id-2"
  redirect_uri = "https://127.0.0.1/upscallback"
}
