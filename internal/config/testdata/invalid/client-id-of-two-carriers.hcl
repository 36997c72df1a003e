# want: 14:16 already in client_ids of carrier "a"
carrier "a" {
  environment  = "test"
  client_id    = "id"
  redirect_uri = "https://127.0.0.1/upscallback"
  client_ids   = ["warehouse"]
}

carrier "b" {
  environment  = "test"
  client_id    = "id"
  redirect_uri = "https://127.0.0.1/upscallback"

  client_ids = ["other", "warehouse"]
}
