# want: 2:1 has both an email and a webhook block
notify "x" {
  email {
    host = "smtp.example.com"
    from = "a@example.com"
    to   = ["b@example.com"]
  }
  webhook {
    url = "https://hooks.example.com/x"
  }
}
