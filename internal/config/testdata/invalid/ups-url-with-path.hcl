# want: 3:20 it has the path /api
ups {
  test_url       = "https://wwwcie.ups.com/api"
}
