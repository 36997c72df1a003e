# want: 4:20 environment variable UPSPROXY_TEST_SURELY_UNSET_VARIABLE is not set
carrier "main" {
  environment  = "test"
  client_id = env("UPSPROXY_TEST_SURELY_UNSET_VARIABLE")
  redirect_uri = "https://127.0.0.1/upscallback"
}
