# want: 2:1 the client_credentials grant needs a client secret
carrier "machine" {
  environment = "production"
  grant       = "client_credentials"
  client_id   = "id"
}
