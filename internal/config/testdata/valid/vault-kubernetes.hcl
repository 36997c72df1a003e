vault {
  address = "http://vault.vault.svc:8200"
  auth "kubernetes" {
    role = "upsproxy"
  }
}
