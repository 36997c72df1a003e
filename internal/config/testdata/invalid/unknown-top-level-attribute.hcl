# want: 3:1 An argument named "listn" is not expected here
listen = "127.0.0.1:8080"
listn  = "127.0.0.1:8081"
