# want: 17:14 Shipper number W599Y7 is already claimed by shipper_account "SalesPad" of carrier "main"
carrier "main" {
  environment  = "production"
  client_id    = "id-1"
  redirect_uri = "https://127.0.0.1/upscallback"
  shipper_account "SalesPad" {
    number = "W599Y7"
  }
}

carrier "other" {
  environment  = "production"
  client_id    = "id-2"
  redirect_uri = "https://127.0.0.1/upscallback"
  shipper_account "Other" {
    # Shipper numbers are compared case-insensitively.
    number = "w599y7"
  }
}
