# want: 3:8 The vault auth method "userpass" is not supported
vault {
  auth "userpass" {
    username = "ups"
  }
}
