# want: 4:11 url must be an absolute http(s) URL
notify "x" {
  webhook {
    url = "hooks.example.com/services/secret"
  }
}
