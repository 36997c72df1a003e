vault {
  auth "token" {
    token_file = "/run/secrets/vault-token"
  }
}
