# want: 3:1 Blocks of type "carriers" are not expected here
# A typo in a block type is not silently ignored.
carriers "main" {
  environment = "test"
}
