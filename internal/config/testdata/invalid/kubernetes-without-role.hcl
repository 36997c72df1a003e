# want: 3:3 The argument "role" is required
vault {
  auth "kubernetes" {
    mount_path = "k8s"
  }
}
