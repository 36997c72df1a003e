# want: 3:1 A mitm block needs ca_cert and ca_key
# An empty block is a mistake, not a way to turn interception off.
mitm {
}
