# want: 3:3 The argument "role_id" is required
vault {
  auth "approle" {
    secret_id_file = "/run/secrets/secret-id"
  }
}
