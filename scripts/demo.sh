#!/usr/bin/env bash
# The quick start: an in-memory dev Vault, the UPS simulator and the proxy
# on free loopback ports; an admin login; one Rate request through the proxy
# as a legacy client would send it (HTTPS forward proxy, access-key header
# and all); then the token information. Everything it starts is stopped on
# exit, also when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-./bin/upsproxy}
VAULTDEV=${VAULTDEV:-./bin/vaultdev}
work=$(mktemp -d "${TMPDIR:-/tmp}/upsproxy-demo.XXXXXX")
pids=()

cleanup() {
  status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$status" -ne 0 ]; then
    echo
    echo "demo failed (exit $status). Logs:" >&2
    for f in "$work"/*.log; do [ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }; done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# wait_for FILE PATTERN SECONDS: until a line matching PATTERN appears.
wait_for() {
  local file=$1 pattern=$2 secs=$3 i
  for ((i = 0; i < secs * 10; i++)); do
    if grep -q "$pattern" "$file" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for '$pattern' in $file" >&2
  return 1
}

step "Starting an in-memory dev Vault"
"$VAULTDEV" >"$work/vault.out" 2>"$work/vault.log" &
pids+=($!)
wait_for "$work/vault.out" '^VAULT_TOKEN=' 120
VAULT_ADDR=$(sed -n 's/^VAULT_ADDR=//p' "$work/vault.out")
VAULT_TOKEN=$(sed -n 's/^VAULT_TOKEN=//p' "$work/vault.out")
export VAULT_ADDR VAULT_TOKEN
echo "Vault at $VAULT_ADDR"

step "Starting the UPS simulator"
# A secret with '+', '%' and a space: sent raw in Basic auth, as UPS's SDK does.
export UPS_CLIENT_SECRET='demo+secret %20 x'
"$BIN" sandbox --listen 127.0.0.1:0 --client "demo-client:$UPS_CLIENT_SECRET" >"$work/sim.out" 2>"$work/sim.log" &
pids+=($!)
wait_for "$work/sim.out" 'listening on' 30
SIM_URL=$(sed -n 's/^UPS simulator listening on //p' "$work/sim.out")
echo "Simulator at $SIM_URL (stands in for wwwcie.ups.com and onlinetools.ups.com)"

step "Creating the MITM CA the client will trust"
"$BIN" ca init --out "$work/ca" >/dev/null
echo "CA certificate: $work/ca/ca.pem"

cat >"$work/upsproxy.hcl" <<HCL
listen       = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

log {
  level  = "info"
  format = "json"
}

vault {
  address = "$VAULT_ADDR"
  mount   = "secret"
  prefix  = "upsproxy-demo"
  auth "token" {}
}

mitm {
  ca_cert = "$work/ca/ca.pem"
  ca_key  = "$work/ca/ca-key.pem"
}

ups {
  test_url       = "$SIM_URL"
  production_url = "$SIM_URL"
}

carrier "demo" {
  environment   = "test"
  default       = true
  client_id     = "demo-client"
  client_secret = env("UPS_CLIENT_SECRET")
  redirect_uri  = "https://127.0.0.1/upscallback"

  shipper_account "demo" {
    number       = "W599Y7"
    postal_code  = "49525"
    country_code = "US"
    default      = true
  }
}
HCL
export UPSPROXY_CONFIG="$work/upsproxy.hcl"
"$BIN" config validate

step "Logging in (the simulator approves at once; with UPS you would log in in a browser)"
auth_url="$SIM_URL/security/v1/oauth/authorize?client_id=demo-client&redirect_uri=https%3A%2F%2F127.0.0.1%2Fupscallback&response_type=code&state=demo"
redirect=$(curl -sS -o /dev/null -w '%{redirect_url}' "$auth_url")
echo "Redirected to: ${redirect%%code=*}code=…"
"$BIN" login --carrier demo --url "$redirect"

step "Starting the proxy"
"$BIN" serve 2>"$work/proxy.log" &
pids+=($!)
wait_for "$work/proxy.log" '"proxy listening"' 30
PROXY=$(grep '"proxy listening"' "$work/proxy.log" | sed -n 's/.*"addr":"\([^"]*\)".*/\1/p' | head -n1)
echo "Proxy at http://$PROXY"

step "A legacy client rates a shipment through the proxy (no OAuth, an old access key header)"
cat <<CMD
curl --proxy http://$PROXY --cacert ca.pem \\
     -H 'AccessLicenseNumber: OLD-ACCESS-KEY' -H 'Content-Type: application/json' \\
     -d @examples/rate-request.json https://wwwcie.ups.com/api/rating/v2409/Rate
CMD
echo
curl -sS --fail-with-body --proxy "http://$PROXY" --cacert "$work/ca/ca.pem" \
  -H 'AccessLicenseNumber: OLD-ACCESS-KEY' -H 'Content-Type: application/json' \
  --data @examples/rate-request.json \
  https://wwwcie.ups.com/api/rating/v2409/Rate | tee "$work/rate.json"
echo
grep -q '"RatedShipment"' "$work/rate.json"

step "Token information (no token values are ever printed)"
"$BIN" token info --carrier demo

step "Proxy access log"
grep '"msg":"request"' "$work/proxy.log" | tail -n 1 || true

echo
echo "Demo finished: a rated shipment came back through upsproxy. Stopping everything."
