# Listening on every interface is fine once proxy authentication is on.
listen = ":8080"

client "erp" {
  password_hash = "$2y$10$U4haGhwa6EwBFA/2yWpjyeg6BsnltwfRej3BOpq7AOumilaPHYnoa"
}
