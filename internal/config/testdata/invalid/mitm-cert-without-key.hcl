# want: 3:13 ca_cert is set but ca_key is not
mitm {
  ca_cert = "/etc/upsproxy/ca.pem"
}
