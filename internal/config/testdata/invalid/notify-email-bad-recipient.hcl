# want: 6:30 "not an address" is not an email address
notify "x" {
  email {
    host = "smtp.example.com"
    from = "a@example.com"
    to   = ["b@example.com", "not an address"]
  }
}
