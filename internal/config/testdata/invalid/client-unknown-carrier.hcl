# want: 4:19 Client "erp" uses carrier "mian", but no carrier block has that name
client "erp" {
  password_hash = "$2a$10$mZfaaPCVaDin1zY4zdQu/uIJ3xL8oChYAJVdN28wS9GacPBDTE9A."
  carrier       = "mian"
}

carrier "main" {
  environment  = "test"
  client_id    = "id"
  redirect_uri = "https://127.0.0.1/upscallback"
}
