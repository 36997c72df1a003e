# want: 6:19 client_secret is a literal in the config file
carrier "main" {
  environment   = "test"
  client_id     = "id"
  redirect_uri  = "https://127.0.0.1/upscallback"
  client_secret = <<-SECRET
    pasted-secret
  SECRET
}
