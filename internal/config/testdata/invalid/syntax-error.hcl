# want: 3:17 Invalid expression
carrier "main" {
  environment = = "test"
}
