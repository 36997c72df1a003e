# want: 2:10 proxy is reachable from the network without proxy authentication
listen = "192.168.1.10:8080"
allow_cidrs = ["192.168.1.0/24"]
