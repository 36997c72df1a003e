# want: 3:13 vault address must be an absolute URL
vault {
  address = "vault.internal:8200"
}
