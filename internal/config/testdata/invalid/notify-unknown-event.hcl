# want: 3:13 "expiring-soon" is none of them
notify "x" {
  events = ["expiring-soon"]
  webhook {
    url = "https://hooks.example.com/x"
  }
}
