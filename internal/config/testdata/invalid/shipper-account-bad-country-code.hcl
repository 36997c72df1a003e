# want: 8:20 two-letter ISO country code
carrier "main" {
  environment  = "test"
  client_id    = "id"
  redirect_uri = "https://127.0.0.1/upscallback"
  shipper_account "a" {
    number       = "A11111"
    country_code = "USA"
  }
}
