# authorization_code without a client secret logs in with PKCE.
carrier "public" {
  environment  = "test"
  client_id    = "public-client-id"
  redirect_uri = "http://localhost:8765/callback"
}
