# /etc/upsproxy/upsproxy.hcl for examples/systemd/upsproxy.service.
# Every key is documented in config/upsproxy.hcl.
#
# Secrets are systemd credentials (LoadCredential= in the unit): systemd
# copies them into a private directory readable by the service only and
# sets CREDENTIALS_DIRECTORY. For admin commands run outside the service,
# point CREDENTIALS_DIRECTORY at the directory of the source files:
#   sudo CREDENTIALS_DIRECTORY=/etc/upsproxy/credentials upsproxy login --carrier main --manual

# Loopback: clients on this machine. To serve other machines, listen on
# their network and add client blocks (proxy authentication) and
# allow_cidrs; upsproxy warns when a non-loopback listener has no client.
listen       = "127.0.0.1:8080"
admin_listen = "127.0.0.1:9090"

log {
  level  = "info"
  format = "json" # to the journal: journalctl -u upsproxy -o cat | jq
}

vault {
  address = "https://vault.internal:8200"
  mount   = "secret"
  prefix  = "upsproxy" # tokens under secret/data/upsproxy/tokens/...
  # ca_cert = "/etc/upsproxy/vault-ca.pem"

  # AppRole: a role with the policy from config/vault-policy.hcl. The role
  # ID is not secret; the secret ID is a credential, read again at every
  # Vault login so it can be rotated (then: systemctl restart upsproxy).
  auth "approle" {
    role_id        = "your-approle-role-id"
    secret_id_file = "${env("CREDENTIALS_DIRECTORY")}/vault-secret-id"
  }
}

# The certificate is public; the key is a credential (mode 0400, owned by
# the service's dynamic user).
mitm {
  ca_cert = "/etc/upsproxy/ca.pem"
  ca_key  = "${env("CREDENTIALS_DIRECTORY")}/mitm-ca-key"
}

carrier "main" {
  environment   = "production"
  default       = true
  client_id     = "your-ups-client-id"
  client_secret = file("${env("CREDENTIALS_DIRECTORY")}/ups-client-secret")
  redirect_uri  = "https://127.0.0.1/upscallback"

  shipper_account "main" {
    number       = "W599Y7"
    postal_code  = "49525"
    country_code = "US"
    default      = true
  }
}
