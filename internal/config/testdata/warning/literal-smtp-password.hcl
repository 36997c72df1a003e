# want: 7:16 password is a literal in the config file
notify "x" {
  email {
    host     = "smtp.example.com"
    from     = "a@example.com"
    username = "u"
    password = "hunter2-literal"
    to       = ["b@example.com"]
  }
}
