# want: 6:25 cannot read
carrier "main" {
  environment   = "test"
  client_id     = "id"
  redirect_uri  = "https://127.0.0.1/upscallback"
  client_secret = file("../files/no-such-secret.txt")
}
