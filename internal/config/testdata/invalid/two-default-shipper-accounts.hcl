# want: 14:15 only one may be the default
carrier "main" {
  environment  = "test"
  client_id    = "id"
  redirect_uri = "https://127.0.0.1/upscallback"

  shipper_account "east" {
    number  = "A11111"
    default = true
  }

  shipper_account "west" {
    number  = "B22222"
    default = true
  }
}
