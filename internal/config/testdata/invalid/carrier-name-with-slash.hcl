# want: 2:1 Carrier names appear in Vault paths
carrier "main/prod" {
  environment  = "test"
  client_id    = "id"
  redirect_uri = "https://127.0.0.1/upscallback"
}
