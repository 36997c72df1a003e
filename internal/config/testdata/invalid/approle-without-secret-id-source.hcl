# want: 3:3 needs secret_id_file
vault {
  auth "approle" {
    role_id = "role"
  }
}
