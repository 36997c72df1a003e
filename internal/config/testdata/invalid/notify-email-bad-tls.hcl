# want: 5:12 tls must be "starttls"
notify "x" {
  email {
    host = "smtp.example.com"
    tls  = "ssl"
    from = "a@example.com"
    to   = ["b@example.com"]
  }
}
