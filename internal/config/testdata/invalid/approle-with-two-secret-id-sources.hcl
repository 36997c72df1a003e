# want: 6:22 Set only one of secret_id_file and secret_id_env
vault {
  auth "approle" {
    role_id        = "role"
    secret_id_file = "/run/secrets/secret-id"
    secret_id_env  = "VAULT_SECRET_ID"
  }
}
