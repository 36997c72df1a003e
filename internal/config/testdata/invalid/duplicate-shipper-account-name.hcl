# want: 11:3 already has a shipper_account "east"
carrier "main" {
  environment  = "test"
  client_id    = "id"
  redirect_uri = "https://127.0.0.1/upscallback"

  shipper_account "east" {
    number = "A11111"
  }

  shipper_account "east" {
    number = "B22222"
  }
}
