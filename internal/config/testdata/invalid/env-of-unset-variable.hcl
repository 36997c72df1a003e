# want: 6:24 environment variable UPSPROXY_TEST_SURELY_UNSET_VARIABLE is not set
carrier "main" {
  environment   = "test"
  client_id     = "id"
  redirect_uri  = "https://127.0.0.1/upscallback"
  client_secret = env("UPSPROXY_TEST_SURELY_UNSET_VARIABLE")
}
