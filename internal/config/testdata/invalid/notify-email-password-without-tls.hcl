# want: 8:16 would send the password in clear
notify "x" {
  email {
    host     = "smtp.example.com"
    tls      = "none"
    from     = "a@example.com"
    username = "u"
    password = file("../files/client-secret.txt")
    to       = ["b@example.com"]
  }
}
