# want: 3:16 the admin listener needs its own address
listen       = "127.0.0.1:8080"
admin_listen = "127.0.0.1:8080"
