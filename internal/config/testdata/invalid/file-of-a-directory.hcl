# want: 6:25 not a regular file
carrier "main" {
  environment   = "test"
  client_id     = "id"
  redirect_uri  = "https://127.0.0.1/upscallback"
  client_secret = file("../files")
}
