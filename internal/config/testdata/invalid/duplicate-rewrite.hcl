# want: 7:1 duplicate rewrite name "rate"
rewrite "rate" {
  match   = "^/ship/v1/rating/Rate$"
  replace = "/api/rating/v2409/Rate"
}

rewrite "rate" {
  match   = "^/ship/v1/rating/Shop$"
  replace = "/api/rating/v2409/Shop"
}
