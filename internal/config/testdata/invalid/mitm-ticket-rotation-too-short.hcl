# want: 5:29 session_ticket_rotation must be between 1m0s and 24h0m0s
mitm {
  ca_cert                 = "/etc/upsproxy/ca.pem"
  ca_key                  = "/etc/upsproxy/ca-key.pem"
  session_ticket_rotation = "10s"
}
