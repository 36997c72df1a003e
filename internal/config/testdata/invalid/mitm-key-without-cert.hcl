# want: 3:12 ca_key is set but ca_cert is not
mitm {
  ca_key = "/etc/upsproxy/ca-key.pem"
}
