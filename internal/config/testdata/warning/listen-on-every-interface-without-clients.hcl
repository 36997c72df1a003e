# want: 2:10 proxy is reachable from the network without proxy authentication
listen = ":8080"
