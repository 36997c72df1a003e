vault {
  auth "approle" {
    role_id       = env("UPSPROXY_TEST_ROLE_ID")
    secret_id_env = "VAULT_SECRET_ID"
  }
}
