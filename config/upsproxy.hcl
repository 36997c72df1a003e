# upsproxy example configuration.
#
# Every key is shown. Commented-out lines are alternatives or optional keys;
# the values shown on live lines are the defaults unless a comment says
# otherwise. Check a file with:  upsproxy config validate --config FILE
#
# Functions available in any value:
#   env("NAME")                 the environment variable NAME (an error if unset)
#   file("path")                a file's contents, trailing newlines removed
#   vault("kv/data/path", "f")  field f of a Vault KV version 2 secret: the
#                               API path, <mount>/data/<name> (what
#                               `vault kv get -mount=kv path` reads), read
#                               with upsproxy's own Vault login at start-up
#                               and on SIGHUP (config/vault-policy.hcl)
# Relative paths (in file() and in the *_file / ca_* keys) are relative to
# this file's directory. Never write a client secret as a literal: upsproxy
# warns when you do (at start-up and on SIGHUP; the warning's snippet shows
# the value masked with '*', as every diagnostic does for client_secret and
# password_hash).
#
# In quoted strings "${" starts an HCL interpolation: write "$${" for a
# literal "${" (see the rewrite block).

# The proxy listener. Clients use it as HTTPS_PROXY / HTTP_PROXY, or as their
# UPS base URL. Keep it on loopback unless client blocks (proxy
# authentication) exist: upsproxy warns otherwise.
listen = "127.0.0.1:8080"

# The admin listener: /healthz /readyz /status /metrics.
admin_listen = "127.0.0.1:9090"

# Sent as the transactionSrc header when a client does not send one
# (at most 512 printable ASCII characters).
transaction_src = "upsproxy"

# Client source addresses allowed to use the proxy; networks or single
# addresses. Empty or absent: every address.
allow_cidrs = []
# allow_cidrs = ["10.0.0.0/8", "192.168.1.7"]

log {
  level  = "info" # debug | info | warn | error
  format = "json" # json | console
}

vault {
  # Default: the VAULT_ADDR environment variable.
  # address = "https://vault.internal:8200"

  mount  = "secret"   # a KV version 2 mount
  prefix = "upsproxy" # tokens live under <mount>/data/<prefix>/...

  # PEM bundle to verify Vault's certificate (default: system roots).
  # ca_cert = "/etc/upsproxy/vault-ca.pem"

  # Exactly one auth block; without one, token auth with VAULT_TOKEN.
  auth "token" {
    # Read the token from a file instead of VAULT_TOKEN.
    # token_file = "/run/secrets/vault-token"
  }

  # auth "approle" {
  #   role_id        = "9e0f3d4c-..."                    # required
  #   secret_id_file = "/run/secrets/upsproxy-secret-id" # one of secret_id_file
  #   secret_id_env  = "VAULT_SECRET_ID"                 #   or secret_id_env
  #   wrapped        = false                             # secret ID is a wrapping token
  #   mount_path     = "approle"
  # }

  # auth "kubernetes" {
  #   role       = "upsproxy" # required
  #   token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token"
  #   mount_path = "kubernetes"
  # }
}

# The CA used to intercept CONNECT (HTTPS_PROXY) traffic to UPS hosts; clients
# must trust its certificate. Create it with: upsproxy ca init --out DIR
# Remove the block to refuse CONNECT. Both keys are required.
mitm {
  ca_cert = "/etc/upsproxy/ca.pem"
  ca_key  = "/etc/upsproxy/ca-key.pem"

  # TLS session tickets for clients that keep a TLS session cache: they
  # resume instead of a full handshake, on any replica (the ticket keys are
  # kept in Vault at <mount>/data/<prefix>/mitm/session-ticket-keys; see
  # config/vault-policy.hcl). The first replica to find the key older than
  # session_ticket_rotation (1m..24h) makes a new one with check-and-set;
  # a ticket stays valid for up to two periods.
  session_tickets         = true
  session_ticket_rotation = "1h"
}

# Where requests go, per environment: scheme, host and optional port only.
ups {
  test_url       = "https://wwwcie.ups.com"
  production_url = "https://onlinetools.ups.com"
  # Extra PEM bundle trusted for upstream TLS (the simulator in tests).
  # ca_file = "/etc/upsproxy/upssim-ca.pem"

  # A corporate HTTP proxy every connection to UPS goes through (API requests
  # and every OAuth call; Vault is reached directly). upsproxy opens a
  # CONNECT tunnel and verifies UPS's certificate inside it, end to end.
  # http:// or https://, with the port; user:password@ is sent as
  # Proxy-Authorization Basic (percent-encode @ and : in it). The process's
  # own HTTPS_PROXY / HTTP_PROXY are never used. Restart to change it.
  # egress_proxy = env("UPSPROXY_EGRESS_PROXY") # "http://user:password@squid.corp:3128"

  # Spare TLS connections kept dialled to each HTTPS UPS host the carriers
  # use (0..64, 0 = off), so a request never waits for TCP and TLS
  # handshakes to UPS. A spare unused for 45 s is replaced by a fresh one
  # (a resumed TLS session: cheap for both sides).
  warm_connections = 2
  # Offer HTTP/2 to UPS over ALPN (HTTP/1.1 when UPS declines). Off by
  # default: HTTP/1.1 is what UPS's own SDKs use. Clients always talk
  # HTTP/1.1 to upsproxy either way.
  http2 = false
}

# Log reminders to run `upsproxy login` before an active carrier's refresh
# token expires: from warn_before ahead, every interval. Go durations.
reminders {
  warn_before = "168h"
  interval    = "6h"

  # notify blocks (below) get one "expiring" message as the refresh token
  # crosses each of these thresholds before its expiry (only the tightest
  # one crossed, if upsproxy starts late), once across all replicas.
  notify_at = ["168h", "72h", "24h"]
  # A "failing" message when token refreshes have failed this long.
  notify_failing_after = "1h"
  # How often each replica checks what is due.
  notify_interval = "1m"
}

limits {
  # Sizes: a number of bytes, or with a unit B, KiB, MiB, GiB, KB, MB, GB.
  max_request_body    = "10MiB" # larger bodies get UPSPROXY_REQUEST_TOO_LARGE
  body_scan_limit     = "1MiB"  # read and checked (UPSSecurity, shipper numbers) before a body is sent; the rest is checked as it streams
  max_connections     = 1024    # concurrent client connections
  # No client can hold a connection without progress: every phase has a
  # deadline, inside HTTPS (CONNECT) tunnels too. A slow client gets
  # UPSPROXY_REQUEST_TIMEOUT (408), oversized headers UPSPROXY_BAD_REQUEST (431).
  read_header_timeout   = "10s"   # request line and headers
  idle_timeout          = "120s"  # keep-alive connection or tunnel with no next request
  tls_handshake_timeout = "10s"   # CONNECT tunnel until its TLS handshake is done
  max_header_bytes      = "64KiB" # request line and headers
  # A request body may take request_body_timeout plus one second per
  # request_body_min_rate bytes it has sent: a client that sends nothing is
  # cut off after 30s, a large Ship request on a slow line always completes.
  request_body_timeout  = "30s"
  request_body_min_rate = "1KiB"  # bytes per second
  upstream_timeout    = "60s" # one request to UPS
  shutdown_grace      = "30s" # in-flight requests may finish on SIGTERM
}

# Legacy path translations, tried in order. match is a Go regular expression
# tested against the request path; replace is the new path (it must start
# with /api/) and may use $1 or $${name} for the groups of match.
rewrite "legacy-rate" {
  match   = "^/ship/v1/rating/(Rate|Shop)$"
  replace = "/api/rating/v2409/$1"
}

rewrite "legacy-track" {
  match   = "^/track/v1/details/(?P<number>[A-Za-z0-9]+)$"
  replace = "/api/track/v1/details/$${number}"
}

# Proxy users. When at least one client block exists, every request needs
# Proxy-Authorization (Basic) with a client's name and password.
# password_hash is bcrypt ($2a$, $2b$ or $2y$); make one with:
#   htpasswd -nbBC 10 "" 'THE PASSWORD' | tr -d ':\n'
# carrier (optional) pins the client to one carrier.
# redirect_uris (optional): where upsproxy's answer to the client's OAuth
# authorize request may send its browser, compared exactly; loopback URIs
# and the carriers' redirect_uri are always allowed.
#
# client "warehouse-1" {
#   password_hash = "$2a$10$mZfaaPCVaDin1zY4zdQu/uIJ3xL8oChYAJVdN28wS9GacPBDTE9A."
#   carrier       = "main"
#   redirect_uris = ["https://warehouse.example/ups/callback"]
# }

# One carrier per UPS application (client ID) and environment. A request's
# carrier is, in order: its client's carrier, the X-Upsproxy-Carrier header,
# the carrier owning the shipper number in the request, the default carrier.
carrier "main" {
  environment = "production" # test | production (required)
  inactive    = false        # inactive: requests refused, no reminders
  default     = true         # at most one carrier
  grant       = "authorization_code" # or "client_credentials"
  client_id   = "your-ups-client-id" # required

  # Optional for authorization_code (without it, login uses PKCE); required
  # for client_credentials. Use env(), file() or vault().
  client_secret = env("UPS_CLIENT_SECRET")
  # client_secret = file("/run/secrets/ups-client-secret")
  # client_secret = vault("secret/data/upsproxy/main", "client_secret")

  # authorization_code: the redirect URI registered with the application
  # (required). A loopback URI lets `upsproxy login` catch the redirect.
  redirect_uri = "https://127.0.0.1/upscallback"

  # client_credentials: sent as x-merchant-id (your UPS account number).
  merchant_id = "W599Y7"
  scope       = "" # usually empty

  # Fill a missing Shipper.ShipperNumber with the default shipper account's.
  fill_shipper_number = false

  # OAuth-aware clients (see README, "Clients that fetch their own OAuth
  # token"): a token upsproxy issues to one of these client ids uses this
  # carrier. An id may be listed by one carrier only. With client blocks,
  # pin the client block to a carrier instead.
  client_ids = ["warehouse-app"]

  # Shipper numbers billed through this carrier; a number belongs to one
  # carrier only.
  shipper_account "SalesPad" {
    number       = "W599Y7"
    postal_code  = "49525"
    country_code = "US"
    default      = true # at most one per carrier
  }
}

# A machine-to-machine carrier against the test environment, kept for later.
carrier "cie" {
  environment   = "test"
  inactive      = true
  grant         = "client_credentials"
  client_id     = "your-cie-client-id"
  client_secret = env("UPS_CIE_CLIENT_SECRET")
  merchant_id   = "X12345"
}

# Reminder channels: any number of notify blocks, each with a name and one
# email or webhook block. Events: expiring (each notify_at threshold),
# expired, rejected (UPS refused the refresh token), failing (refreshes
# failing for notify_failing_after) and renewed (someone logged in after a
# reminder). Each message names the carrier, environment, expiry, days left
# and the exact `upsproxy login` command. Every message is sent once across
# all replicas (recorded in Vault under <prefix>/notify/). Check a channel
# with:  upsproxy notify test --channel NAME
notify "shipping-mail" {
  # Which events and carriers this channel hears about; absent: all.
  events   = ["expiring", "expired", "rejected", "failing", "renewed"]
  carriers = ["main"]

  email {
    host = "smtp.example.com" # required
    port = 587                # default: 587 starttls, 465 implicit, 25 none
    tls  = "starttls"         # starttls | implicit | none (a relay on this host; no password)
    # PEM bundle trusted for the server's certificate (default: system roots).
    # ca_file = "/etc/upsproxy/smtp-ca.pem"

    # Optional authentication (the strongest mechanism the server offers).
    username = "upsproxy@example.com"
    password = env("SMTP_PASSWORD") # or file(...) or vault(...)

    from = "upsproxy <upsproxy@example.com>" # required
    to   = ["shipping@example.com"]           # required, one or more
  }
}

# A webhook gets a POST with JSON: event, carrier, environment, threshold,
# refresh_token_expires_at, days_left, command, console_url, at, and "text"
# (the whole message) so Slack and Teams incoming webhooks show it as is.
# Chat webhook URLs are credentials: keep them out of this file.
notify "team-chat" {
  webhook {
    url = env("SLACK_WEBHOOK_URL") # required; env(), file(), vault() or a literal
    # Extra request headers; use env() or file() for secret values.
    # headers = { Authorization = env("HOOK_TOKEN") }
  }
}

# The web console (off unless listen is set): shipping managers sign in from
# a browser, see every carrier's token state and renew it (Log in to UPS,
# paste the redirect URL, Refresh now, Delete tokens). It runs inside
# `upsproxy serve` on every replica; sessions and logins are sealed under a
# key upsproxy creates once in Vault (<mount>/data/<prefix>/keys/console),
# so any replica serves any step behind a load balancer.
# console {
#   # Its own listener (default: off). Keep it on loopback or an internal
#   # address, behind a TLS-terminating reverse proxy or with tls_cert/tls_key.
#   listen     = "127.0.0.1:8443"
#   # The address browsers use. Register <public_url>/callback as the
#   # carriers' redirect_uri at UPS so the login comes back by itself. A path
#   # (https://intranet.example.com/upsproxy) is the console's base path.
#   public_url = "https://upsproxy.example.com:8443"
#   # Serve https itself (both or neither; PEM files).
#   tls_cert   = "/etc/upsproxy/console.pem"
#   tls_key    = "/etc/upsproxy/console-key.pem"
#   # Who may sign in: bcrypt hashes, as for client blocks
#   # (htpasswd -nbBC 10 maria PASSWORD | cut -d: -f2).
#   user "maria" {
#     password_hash = "$2y$10$...."
#   }
# }
