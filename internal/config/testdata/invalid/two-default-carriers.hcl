# want: 13:18 Carrier "first" is already the default
carrier "first" {
  environment  = "test"
  default      = true
  client_id    = "id-1"
  redirect_uri = "https://127.0.0.1/upscallback"
}

carrier "second" {
  environment  = "production"
  client_id    = "id-2"
  redirect_uri = "https://127.0.0.1/upscallback"
  default      = true
}
