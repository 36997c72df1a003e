# want: 3:15 no carrier block has that name
notify "x" {
  carriers = ["nope"]
  webhook {
    url = "https://hooks.example.com/x"
  }
}
