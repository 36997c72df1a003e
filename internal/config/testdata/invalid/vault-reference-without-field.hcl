# want: 6:51 the Vault field name is empty
carrier "main" {
  environment   = "test"
  client_id     = "id"
  redirect_uri  = "https://127.0.0.1/upscallback"
  client_secret = vault("secret/data/ups/main", "")
}
