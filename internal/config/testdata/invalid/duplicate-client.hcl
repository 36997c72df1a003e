# want: 6:1 duplicate client name "erp"
client "erp" {
  password_hash = "$2a$10$mZfaaPCVaDin1zY4zdQu/uIJ3xL8oChYAJVdN28wS9GacPBDTE9A."
}

client "erp" {
  password_hash = "$2a$10$U4haGhwa6EwBFA/2yWpjyeg6BsnltwfRej3BOpq7AOumilaPHYnoa"
}
