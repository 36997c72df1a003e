# want: 3:13 match must be a Go regular expression
rewrite "rate" {
  match   = "^/ship/v1/rating/(Rate|Shop$"
  replace = "/api/rating/v2409/$1"
}
