# want: 7:14 A UPS shipper number is letters and digits
carrier "main" {
  environment  = "test"
  client_id    = "id"
  redirect_uri = "https://127.0.0.1/upscallback"
  shipper_account "a" {
    number = "W599 Y7"
  }
}
