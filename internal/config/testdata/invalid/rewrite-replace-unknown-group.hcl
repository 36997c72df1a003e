# want: 4:13 refers to $2 but match has only 1 group
rewrite "rate" {
  match   = "^/ship/v1/rating/(Rate|Shop)$"
  replace = "/api/rating/v2409/$2"
}
