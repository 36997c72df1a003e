# want: 4:19 must start with https:// or http://
client "shop" {
  password_hash = "$2a$10$mZfaaPCVaDin1zY4zdQu/uIJ3xL8oChYAJVdN28wS9GacPBDTE9A."
  redirect_uris = ["/cb"]
}
