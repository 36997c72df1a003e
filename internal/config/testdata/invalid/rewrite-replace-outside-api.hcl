# want: 4:13 replace must start with /api/
rewrite "rate" {
  match   = "^/ship/v1/rating/(Rate|Shop)$"
  replace = "https://evil.example/$1"
}
