# want: 10:14 already claimed by shipper_account "a" of carrier "main"
carrier "main" {
  environment  = "production"
  client_id    = "id-1"
  redirect_uri = "https://127.0.0.1/upscallback"
  shipper_account "a" {
    number = "W599Y7"
  }
  shipper_account "b" {
    number = "W599Y7"
  }
}
