# want: 5:5 An argument named "secret_id" is not expected here
vault {
  auth "approle" {
    role_id        = "role"
    secret_id      = "pasted"
    secret_id_file = "/run/secrets/secret-id"
  }
}
