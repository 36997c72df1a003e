# want: 5:18 redirect_uri must be the absolute http(s) URL
carrier "main" {
  environment  = "test"
  client_id    = "id"
  redirect_uri = "/upscallback"
}
