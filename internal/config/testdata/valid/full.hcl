# Every key of the schema, with non-default values where that is possible.
listen          = "127.0.0.1:18080"
admin_listen    = "127.0.0.1:19090"
transaction_src = "warehouse-erp"
allow_cidrs     = ["10.0.0.0/8", "192.168.1.7", "2001:db8::/32"]

log {
  level  = "debug"
  format = "console"
}

vault {
  address = "https://vault.internal:8200"
  mount   = "kv"
  prefix  = "/ups/proxy/"
  ca_cert = "vault-ca.pem"
  auth "approle" {
    role_id        = "d6b1d3a5-role"
    secret_id_file = "/run/secrets/upsproxy-secret-id"
    wrapped        = true
    mount_path     = "approle-ups"
  }
}

mitm {
  ca_cert = "/etc/upsproxy/ca.pem"
  ca_key  = "ca-key.pem"

  session_tickets         = false
  session_ticket_rotation = "2h"
}

ups {
  test_url       = "http://127.0.0.1:18443"
  production_url = "https://onlinetools.ups.example:8443/"
  ca_file        = "sim-ca.pem"
  warm_connections = 4
  http2            = true
}

reminders {
  warn_before = "336h"
  interval    = "30m"
}

limits {
  max_request_body    = "20MiB"
  body_scan_limit     = 65536
  max_connections     = 64
  read_header_timeout = "5s"
  idle_timeout        = "90s"
  upstream_timeout    = "45s"
  shutdown_grace      = "15s"
  tls_handshake_timeout = "7s"
  max_header_bytes      = "32KiB"
  request_body_timeout  = "20s"
  request_body_min_rate = "512B"
}

rewrite "legacy-rate" {
  match   = "^/ship/v1/rating/(Rate|Shop)$"
  replace = "/api/rating/v2409/$1"
}

rewrite "legacy-track" {
  match   = "^/track/v1/details/(?P<number>[A-Z0-9]+)$"
  replace = "/api/track/v1/details/$${number}" # $${ escapes HCL interpolation
}

client "warehouse-1" {
  password_hash = "$2a$10$mZfaaPCVaDin1zY4zdQu/uIJ3xL8oChYAJVdN28wS9GacPBDTE9A."
  carrier       = "main"
}

client "shipcenter" {
  password_hash = "$2a$10$U4haGhwa6EwBFA/2yWpjyeg6BsnltwfRej3BOpq7AOumilaPHYnoa"
}

carrier "main" {
  environment         = "production"
  inactive            = false
  default             = true
  grant               = "authorization_code"
  client_id           = "main-client-id"
  client_secret       = env("UPS_CLIENT_SECRET")
  redirect_uri        = "https://127.0.0.1/upscallback"
  merchant_id         = "W599Y7"
  scope               = "read"
  fill_shipper_number = true

  shipper_account "SalesPad" {
    number       = "W599Y7"
    postal_code  = "49525"
    country_code = "US"
    default      = true
  }

  shipper_account "Returns" {
    number = "a1b2c3"
  }
}

carrier "cie" {
  environment   = "test"
  inactive      = true
  grant         = "client_credentials"
  client_id     = "cie-client-id"
  client_secret = file("../files/client-secret.txt")
  merchant_id   = "X12345"
}

carrier "vaulted" {
  environment   = "production"
  grant         = "client_credentials"
  client_id     = "vaulted-client-id"
  client_secret = vault("secret/data/ups/vaulted", "client_secret")
}
