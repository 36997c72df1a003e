# want: 2:16 the port "metrics" is not a number
admin_listen = "127.0.0.1:metrics"
