# want: 5:18 it must start with https:// or http://
carrier "main" {
  environment  = "test"
  client_id    = "id"
  redirect_uri = "ftp://127.0.0.1/upscallback"
}
