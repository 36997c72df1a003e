# upsproxy configuration for examples/docker-compose (see README.md there).
# Every key is documented in config/upsproxy.hcl. Secrets come from the
# environment (upsproxy.env, never this file); check the file with:
#   docker compose run --rm --no-deps upsproxy config validate

# Inside the container: every interface, so Docker can forward to it.
# compose.yaml publishes both ports on the host's 127.0.0.1 only.
listen       = "0.0.0.0:8080"
admin_listen = "0.0.0.0:9090"

log {
  level  = "info"
  format = "json"
}

vault {
  # DEV ONLY: the compose file's dev-mode Vault, plain HTTP, in memory. A real
  # deployment uses a real Vault over https:// (and ca_cert if its CA is
  # private).
  address = "http://vault:8200"
  mount   = "secret"
  prefix  = "upsproxy" # tokens under secret/data/upsproxy/tokens/...

  # VAULT_TOKEN from upsproxy.env: a periodic token with the policy from
  # config/vault-policy.hcl (README step 2), never the root token.
  auth "token" {}
}

# The CA made by `docker compose run --rm ca-init`, in the upsproxy-ca volume.
mitm {
  ca_cert = "/etc/upsproxy/ca/ca.pem"
  ca_key  = "/etc/upsproxy/ca/ca-key.pem"
}

# The proxy is reachable from other containers on the compose network, so
# it asks for proxy credentials (Proxy-Authorization: Basic). Make the hash
# with: htpasswd -nbBC 10 "" 'THE PASSWORD' | tr -d ':\n'
client "warehouse-1" {
  password_hash = env("UPSPROXY_WAREHOUSE_1_PASSWORD_HASH")
  # carrier = "main"   # pin this client to one carrier; unset, the
  #                    # X-Upsproxy-Carrier header or the default decides
}

# Start against UPS's Test environment (CIE): nothing there is billed.
# Switch to "production" and log in again (--env production) when ready.
carrier "main" {
  environment   = "test"
  default       = true
  client_id     = "your-ups-client-id"           # from developer.ups.com
  client_secret = env("UPS_CLIENT_SECRET")       # from upsproxy.env
  redirect_uri  = "https://127.0.0.1/upscallback" # as registered with the app

  shipper_account "main" {
    number       = "W599Y7" # your UPS account number
    postal_code  = "49525"
    country_code = "US"
    default      = true
  }
}
