# want: 4:19 must not have a #fragment
client "shop" {
  password_hash = "$2a$10$mZfaaPCVaDin1zY4zdQu/uIJ3xL8oChYAJVdN28wS9GacPBDTE9A."
  redirect_uris = ["https://app.example/cb#x"]
}
