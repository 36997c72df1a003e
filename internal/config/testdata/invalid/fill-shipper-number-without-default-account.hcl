# want: 6:25 has no shipper_account with default = true
carrier "main" {
  environment         = "test"
  client_id           = "id"
  redirect_uri        = "https://127.0.0.1/upscallback"
  fill_shipper_number = true

  shipper_account "only" {
    number = "A11111"
  }
}
