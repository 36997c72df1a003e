# want: 6:3 Only one vault auth block is allowed
vault {
  auth "token" {
  }

  auth "kubernetes" {
    role = "upsproxy"
  }
}
