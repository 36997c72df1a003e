# want: 2:1 needs an email block or a webhook block
notify "x" {
}
