# want: 2:10 listen must be host:port
listen = "127.0.0.1"
