# Least-privilege Vault policy for upsproxy.
#
#   vault policy write upsproxy config/vault-policy.hcl
#
# then attach it to the identity the proxy logs in with, e.g. for AppRole:
#
#   vault write auth/approle/role/upsproxy token_policies=upsproxy \
#       token_ttl=1h token_max_ttl=24h
#
# upsproxy keeps one KV version 2 secret per carrier and environment at
#   <mount>/data/<prefix>/tokens/<carrier>/<environment>
# This file assumes the defaults of the vault block: mount = "secret" and
# prefix = "upsproxy". For another mount or prefix, replace "secret" (the
# first path segment) and "upsproxy" (the segments after data/ or metadata/)
# in every path below: with mount = "kv" and prefix = "apps/upsproxy" the
# first path becomes "kv/data/apps/upsproxy/tokens/*".
#
# sys/health, which the readiness check asks, needs no grant: Vault answers
# it without a token.

# The token records: read them, create them (first login of a carrier) and
# update them (every refresh, with check-and-set). "patch" is not needed:
# upsproxy always writes whole records.
path "secret/data/upsproxy/tokens/*" {
  capabilities = ["create", "read", "update"]
}

# The records' metadata: read (`upsproxy token delete` first checks the
# record exists), list (the carriers and environments of one folder) and
# delete (`upsproxy token delete` removes every version of a record). A
# deployment that never deletes tokens through upsproxy can drop "delete";
# only that command then fails, with "permission denied".
path "secret/metadata/upsproxy/tokens/*" {
  capabilities = ["read", "list", "delete"]
}

# Listing the tokens folder itself (`upsproxy token list`, /status and the
# readiness check). Vault checks a LIST against the path with a trailing
# slash; the glob above covers it too, but this grant says it explicitly
# and survives someone narrowing the glob.
path "secret/metadata/upsproxy/tokens/" {
  capabilities = ["list"]
}

# The notice records of the reminder channels (notify blocks): which
# reminder went out, so that replicas send each one once. Read, create and
# update with check-and-set, like the token records.
path "secret/data/upsproxy/notify/*" {
  capabilities = ["create", "read", "update"]
}

# Keys every replica shares (created once with check-and-set by the first
# replica to need one, read by all): keys/console seals the console's
# sessions and login state, keys/oauth signs the OAuth tokens upsproxy
# issues its own clients.
path "secret/data/upsproxy/keys/*" {
  capabilities = ["create", "read"]
}

# The MITM session ticket keys (mitm.session_tickets): every replica reads
# them, and the first to find them due rotates them with check-and-set.
path "secret/data/upsproxy/mitm/*" {
  capabilities = ["create", "read", "update"]
}

# The proxy's own token: look it up (token auth checks it at start) and
# renew it before it expires. Vault's "default" policy grants both already;
# they are repeated so that roles created with token_no_default_policy=true
# still work.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/renew-self" {
  capabilities = ["update"]
}

# Only if a carrier's client secret is in Vault: read on exactly that
# secret, nothing else (no list, no metadata). The path is the one in the
# config, the KV version 2 API path <mount>/data/<name>: for
#   client_secret = vault("secret/data/upsproxy/carriers/main", "client_secret")
# uncomment this block (one per secret). upsproxy reads it at start-up, on
# SIGHUP, and in `login` / `token refresh`, with its own Vault login.
#
# path "secret/data/upsproxy/carriers/main" {
#   capabilities = ["read"]
# }
