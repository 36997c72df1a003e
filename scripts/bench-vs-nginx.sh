#!/usr/bin/env bash
# Side-by-side throughput of the request path: nginx injecting a static
# Authorization header vs upsproxy (base-URL mode, token from memory), both
# in front of the same static "UPS" (nginx answering a canned Rate response;
# its /security/ OAuth paths go to the simulator so `login` works).
# Needs: wrk, nginx (apt-get install wrk nginx-light), make build vaultdev.
# Everything listens on 127.0.0.1 and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-./bin/upsproxy}
VAULTDEV=${VAULTDEV:-./bin/vaultdev}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
work=$(mktemp -d "${TMPDIR:-/tmp}/upsproxy-bench.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
wait_for() { for ((i = 0; i < 300; i++)); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "timeout: $2 in $1" >&2; return 1; }
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

"$VAULTDEV" >"$work/vault.out" 2>"$work/vault.log" & pids+=($!)
wait_for "$work/vault.out" '^VAULT_TOKEN='
export VAULT_ADDR=$(sed -n 's/^VAULT_ADDR=//p' "$work/vault.out") VAULT_TOKEN=$(sed -n 's/^VAULT_TOKEN=//p' "$work/vault.out")
export UPS_CLIENT_SECRET='bench-secret'
"$BIN" sandbox --listen 127.0.0.1:0 --client "bench:$UPS_CLIENT_SECRET" >"$work/sim.out" 2>"$work/sim.log" & pids+=($!)
wait_for "$work/sim.out" 'listening on'
SIM=$(sed -n 's/^UPS simulator listening on http:\/\///p' "$work/sim.out")

UPS_PORT=$(freeport); NGX_PORT=$(freeport)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGX
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx; uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  upstream fakeups { server 127.0.0.1:$UPS_PORT; keepalive 128; }
  # The static "UPS".
  server {
    listen 127.0.0.1:$UPS_PORT;
    location /security/ { proxy_pass http://$SIM; }
    location /api/ { default_type application/json; return 200 '{"RateResponse":{"Response":{"ResponseStatus":{"Code":"1","Description":"Success"}},"RatedShipment":[{"TotalCharges":{"CurrencyCode":"USD","MonetaryValue":"15.08"}}]}}'; }
  }
  # nginx as the header injector, the baseline.
  server {
    listen 127.0.0.1:$NGX_PORT;
    location / {
      proxy_pass http://fakeups;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer static-benchmark-token";
    }
  }
}
NGX
nginx -c "$work/nginx/nginx.conf" -g 'daemon off;' & pids+=($!)
sleep 0.5

cat >"$work/upsproxy.hcl" <<HCL
listen       = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
log {
  level = "warn"
}
vault {
  address = "$VAULT_ADDR"
  prefix  = "bench"
}
ups {
  test_url       = "http://127.0.0.1:$UPS_PORT"
  production_url = "http://127.0.0.1:$UPS_PORT"
}
carrier "bench" {
  environment   = "test"
  default       = true
  client_id     = "bench"
  client_secret = env("UPS_CLIENT_SECRET")
  redirect_uri  = "https://127.0.0.1/upscallback"
}
HCL
export UPSPROXY_CONFIG="$work/upsproxy.hcl"
redirect=$(curl -sS -o /dev/null -w '%{redirect_url}' "http://$SIM/security/v1/oauth/authorize?client_id=bench&redirect_uri=https%3A%2F%2F127.0.0.1%2Fupscallback&response_type=code")
"$BIN" login --carrier bench --url "$redirect" >/dev/null
# warn level hides the listening line: ask the kernel instead.
"$BIN" serve 2>"$work/proxy.log" & ppid=$!; pids+=($ppid)
for ((i = 0; i < 100; i++)); do
  PROXY=$(ss -ltnpH 2>/dev/null | awk -v p="pid=$ppid," '$0 ~ p {print $4}' | head -n1)
  [ -n "$PROXY" ] && break; sleep 0.1
done
ADMIN=$(ss -ltnpH | awk -v p="pid=$ppid," '$0 ~ p {print $4}' | sed -n 2p)
# The admin port is the one answering /healthz.
for a in $(ss -ltnpH | awk -v p="pid=$ppid," '$0 ~ p {print $4}'); do
  if curl -sf "http://$a/healthz" >/dev/null 2>&1; then ADMIN=$a; else PROXY=$a; fi
done
curl -sf -X POST "http://$PROXY/api/rating/v2409/Rate" -d '{}' >/dev/null

body=$(mktemp); echo '{"RateRequest":{}}' >"$body"
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body   = '{"RateRequest":{"Shipment":{"Shipper":{"ShipperNumber":"W599Y7"}}}}'
wrk.headers["Content-Type"] = "application/json"
LUA
run() {
  local name=$1 url=$2
  wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$work/post.lua" "$url" >"$work/$name.wrk"
  printf '%-10s %10s req/s   p50 %8s   p99 %8s\n' "$name" \
    "$(awk '/Requests\/sec/ {print $2}' "$work/$name.wrk")" \
    "$(awk '$1=="50%" {print $2}' "$work/$name.wrk")" \
    "$(awk '$1=="99%" {print $2}' "$work/$name.wrk")"
}
echo "wrk -t$THREADS -c$CONNS -d$DURATION, POST /api/rating/v2409/Rate (small JSON), 127.0.0.1, $(nproc) cores"
run upstream "http://127.0.0.1:$UPS_PORT/api/rating/v2409/Rate"
run nginx    "http://127.0.0.1:$NGX_PORT/api/rating/v2409/Rate"
run upsproxy "http://$PROXY/api/rating/v2409/Rate"
if [ -n "${ADMIN:-}" ]; then
  echo "upsproxy requests counted: $(curl -s "http://$ADMIN/metrics" | awk '/^upsproxy_requests_total/ {s+=$2} END {print s}')"
fi
