# want: 3:20 production_url must be an absolute http(s) URL
ups {
  production_url = "onlinetools.ups.com"
}
