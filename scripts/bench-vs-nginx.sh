#!/usr/bin/env bash
# Side-by-side throughput of the request path: nginx injecting a static
# Authorization header vs upsproxy (token from memory), both in front of the
# same static "UPS" (nginx answering a canned Rate response; its /security/
# OAuth paths go to the simulator so `login` works).
#
# Targets (all loopback, small JSON POST Rate):
#   upstream        the static "UPS" alone: the ceiling
#   nginx           nginx injecting a static header (no access log)
#   goproxy-bare    a 20-line goproxy program setting Authorization
#                   (`bin/bench bare-goproxy -plain`, tools/bench)
#   upsproxy-warn   base-URL mode (origin form), log level warn: no access log
#   upsproxy-info   base-URL mode, log level info (the production default: one
#                   JSON access line per request, stderr to a file)
#   upsproxy-abs    HTTP forward-proxy mode (absolute form, addressing
#                   wwwcie.ups.com), log level warn
# With BASELINE_BIN set, the same three upsproxy targets also run with that
# binary (base-warn, base-info, base-abs): an A/B in one run.
#
# Besides req/s and latency, each line shows the CPU the server processes
# spent per request (utime+stime from /proc): much less sensitive to other
# load on the machine than req/s; and their read and write syscalls per
# request (syscr+syscw from /proc; a proxy needs at least 4: read the
# request, write it upstream, read the answer, write it back; not shown for
# nginx, whose recv/send /proc does not count). For a proxy that is the
# proxy alone; the nginx line counts the workers serving both the injector
# and the static upstream, so nginx's own share is its figure minus
# upstream's.
#
# Knobs: DURATION (10s), CONNS (64), THREADS (2), ROUNDS (1: with more, the
# targets run round-robin ROUNDS times and the summary shows medians),
# TARGETS (space-separated subset, in the order to run), BIN, BASELINE_BIN,
# VAULTDEV, PERF (a file: perf record -g of upsproxy-warn's serve during
# its first run, for `perf report -i`), RESULTS_OUT (copy the raw "name req/s p50µs p99µs cpuµs r+w"
# lines there: scripts/bench.sh puts them in its table).
# Needs: wrk, nginx (apt-get install wrk nginx-light), make build vaultdev.
# Everything listens on 127.0.0.1 and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-./bin/upsproxy}
BASELINE_BIN=${BASELINE_BIN:-}
VAULTDEV=${VAULTDEV:-./bin/vaultdev}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-1}
work=$(mktemp -d "${TMPDIR:-/tmp}/upsproxy-bench.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
wait_for() { for ((i = 0; i < 300; i++)); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "timeout: $2 in $1" >&2; return 1; }
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
listening() { ss -ltnpH 2>/dev/null | awk -v p="pid=$1," '$0 ~ p {print $4}'; }

"$VAULTDEV" >"$work/vault.out" 2>"$work/vault.log" & pids+=($!)
wait_for "$work/vault.out" '^VAULT_TOKEN='
export VAULT_ADDR=$(sed -n 's/^VAULT_ADDR=//p' "$work/vault.out") VAULT_TOKEN=$(sed -n 's/^VAULT_TOKEN=//p' "$work/vault.out")
export UPS_CLIENT_SECRET='bench-secret'
"$BIN" sandbox --listen 127.0.0.1:0 --client "bench:$UPS_CLIENT_SECRET" >"$work/sim.out" 2>"$work/sim.log" & pids+=($!)
wait_for "$work/sim.out" 'listening on'
SIM=$(sed -n 's/^UPS simulator listening on http:\/\///p' "$work/sim.out")

UPS_PORT=$(freeport); NGX_PORT=$(freeport)
# nginx_conf DIR SERVERS: an nginx configuration of 2 workers serving
# SERVERS, in DIR.
nginx_conf() {
  mkdir -p "$1"
  cat >"$1/nginx.conf" <<NGX
worker_processes 2;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $1; proxy_temp_path $1;
  fastcgi_temp_path $1; uwsgi_temp_path $1; scgi_temp_path $1;
  upstream fakeups { server 127.0.0.1:$UPS_PORT; keepalive 128; }
$2
}
NGX
}
# The static "UPS".
ups_server="  server {
    listen 127.0.0.1:$UPS_PORT;
    location /security/ { proxy_pass http://$SIM; }
    location /api/ { default_type application/json; return 200 '{\"RateResponse\":{\"Response\":{\"ResponseStatus\":{\"Code\":\"1\",\"Description\":\"Success\"}},\"RatedShipment\":[{\"TotalCharges\":{\"CurrencyCode\":\"USD\",\"MonetaryValue\":\"15.08\"}}]}}'; }
  }"
# nginx as the header injector, the baseline.
injector_server="  server {
    listen 127.0.0.1:$NGX_PORT;
    location / {
      proxy_pass http://fakeups;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_set_header Authorization \"Bearer static-benchmark-token\";
    }
  }"
# The static UPS runs as an nginx of its own, apart from the injector, as
# UPS is apart from every proxy measured: when one nginx served both, a
# worker often found the upstream connection it wrote to among its own and
# served the request's two hops without a wake-up of another process,
# which no proxy in front of UPS gets. NGINX_SHARED_UPSTREAM=1 brings that
# arrangement back, for comparison.
if [ "${NGINX_SHARED_UPSTREAM:-}" = 1 ]; then
  nginx_conf "$work/nginx" "$ups_server
$injector_server"
  nginx -c "$work/nginx/nginx.conf" -g 'daemon off;' & ngxpid=$!; pids+=($ngxpid)
  upspid=$ngxpid
else
  nginx_conf "$work/nginx" "$injector_server"
  nginx_conf "$work/ups-nginx" "$ups_server"
  nginx -c "$work/ups-nginx/nginx.conf" -g 'daemon off;' & upspid=$!; pids+=($upspid)
  nginx -c "$work/nginx/nginx.conf" -g 'daemon off;' & ngxpid=$!; pids+=($ngxpid)
fi
sleep 0.5

# upsproxy config for a log level; the tokens are shared through Vault, as
# replicas share them.
proxy_config() {
  cat <<HCL
listen       = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
log {
  level = "$1"
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
}
proxy_config warn >"$work/login.hcl"
redirect=$(curl -sS -o /dev/null -w '%{redirect_url}' "http://$SIM/security/v1/oauth/authorize?client_id=bench&redirect_uri=https%3A%2F%2F127.0.0.1%2Fupscallback&response_type=code")
UPSPROXY_CONFIG="$work/login.hcl" "$BIN" login --carrier bench --url "$redirect" >/dev/null

# start_proxy NAME BINARY LEVEL: runs `serve`, sets ADDR[NAME], PID[NAME]
# and ADMIN[NAME]. stderr is appended to NAME.log (O_APPEND, so run() can
# truncate it between runs; the access log is what a production log
# collector would read).
declare -A ADDR PID ADMIN
start_proxy() {
  local name=$1 bin=$2 level=$3 a ppid
  proxy_config "$level" >"$work/$name.hcl"
  UPSPROXY_CONFIG="$work/$name.hcl" "$bin" serve 2>>"$work/$name.log" & ppid=$!; pids+=($ppid)
  PID[$name]=$ppid
  for ((i = 0; i < 100; i++)); do
    [ "$(listening "$ppid" | wc -l)" -ge 2 ] && break; sleep 0.1
  done
  # The admin listener is the one answering /healthz.
  for a in $(listening "$ppid"); do
    if curl -sf "http://$a/healthz" >/dev/null 2>&1; then ADMIN[$name]=$a; else ADDR[$name]=$a; fi
  done
  [ -n "${ADDR[$name]:-}" ] || { echo "$name: proxy did not start:" >&2; tail -n 20 "$work/$name.log" >&2; exit 1; }
  curl -sf -X POST "http://${ADDR[$name]}/api/rating/v2409/Rate" -d '{}' >/dev/null
}
start_proxy warn "$BIN" warn
start_proxy info "$BIN" info
if [ -n "$BASELINE_BIN" ]; then
  start_proxy base-warn "$BASELINE_BIN" warn
  start_proxy base-info "$BASELINE_BIN" info
fi

# The bare goproxy: what any goproxy-based header injector costs. It lives
# in tools/bench (its own module: upsproxy itself no longer uses goproxy);
# `make bench` builds bin/bench, BARE_BIN names another build of it.
BARE=
BARE_BIN=${BARE_BIN:-./bin/bench}
if [ ! -x "$BARE_BIN" ] && command -v go >/dev/null 2>&1; then
  (cd tools/bench && timeout 300 go build -o "$work/bench" .) 2>"$work/bare-build.log" && BARE_BIN=$work/bench
fi
if [ -x "$BARE_BIN" ]; then
  "$BARE_BIN" bare-goproxy -plain -upstream "127.0.0.1:$UPS_PORT" >"$work/bare.out" 2>&1 & PID[goproxy-bare]=$!; pids+=($!)
  wait_for "$work/bare.out" 'listening on'
  BARE=$(sed -n 's/^listening on //p' "$work/bare.out")
else
  echo "goproxy-bare skipped: no bin/bench ($(tail -n 1 "$work/bare-build.log" 2>/dev/null))" >&2
fi

body='{"RateRequest":{"Shipment":{"Shipper":{"ShipperNumber":"W599Y7"}}}}'
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body   = '$body'
wrk.headers["Content-Type"] = "application/json"
LUA
# Forward-proxy mode: the request line carries the absolute URL (wrk sends
# wrk.path as it is), the connection goes to the proxy.
cat >"$work/abs.lua" <<LUA
wrk.method = "POST"
wrk.path   = "http://wwwcie.ups.com/api/rating/v2409/Rate"
wrk.body   = '$body'
wrk.headers["Content-Type"] = "application/json"
LUA
path=/api/rating/v2409/Rate

# cpu_ticks PID...: utime+stime of the processes, in clock ticks.
cpu_ticks() {
  local t=0 p f
  for p in "$@"; do
    f=$(cut -d' ' -f14,15 "/proc/$p/stat" 2>/dev/null) || continue
    t=$((t + ${f% *} + ${f#* }))
  done
  echo "$t"
}
# io_calls PID...: read and write syscalls of the processes so far.
io_calls() {
  local t=0 p
  for p in "$@"; do
    t=$((t + $(awk '$1 == "syscr:" || $1 == "syscw:" {s += $2} END {print s + 0}' "/proc/$p/io" 2>/dev/null || echo 0)))
  done
  echo "$t"
}
workers() { ps -o pid= --ppid "$1" | tr -d ' '; }
# The static UPS's workers; nginx_workers: the injector's and the static
# UPS's (one set when they are one nginx).
ups_workers() { workers "$upspid"; }
nginx_workers() { if [ "$upspid" = "$ngxpid" ]; then workers "$ngxpid"; else workers "$ngxpid"; workers "$upspid"; fi; }
HZ=$(getconf CLK_TCK)

# target NAME -> "URL SCRIPT PIDS..." (empty when not available)
target() {
  case $1 in
    upstream) echo "http://127.0.0.1:$UPS_PORT$path post.lua $(ups_workers | tr '\n' ' ')" ;;
    nginx) echo "http://127.0.0.1:$NGX_PORT$path post.lua $(nginx_workers | tr '\n' ' ')" ;;
    goproxy-bare) [ -n "$BARE" ] && echo "http://$BARE$path post.lua ${PID[goproxy-bare]}" ;;
    upsproxy-warn) echo "http://${ADDR[warn]}$path post.lua ${PID[warn]}" ;;
    upsproxy-info) echo "http://${ADDR[info]}$path post.lua ${PID[info]}" ;;
    upsproxy-abs) echo "http://${ADDR[warn]}$path abs.lua ${PID[warn]}" ;;
    base-warn) [ -n "$BASELINE_BIN" ] && echo "http://${ADDR[base-warn]}$path post.lua ${PID[base-warn]}" ;;
    base-info) [ -n "$BASELINE_BIN" ] && echo "http://${ADDR[base-info]}$path post.lua ${PID[base-info]}" ;;
    base-abs) [ -n "$BASELINE_BIN" ] && echo "http://${ADDR[base-warn]}$path abs.lua ${PID[base-warn]}" ;;
  esac
  return 0
}

# run NAME: one wrk run; prints a line and appends "name rps p50 p99 cpu
# calls" to results (latencies in µs, CPU in µs and syscalls per request;
# the upstream's own CPU is not counted for the proxies).
run() {
  local name=$1 spec url script procs before after io0 io1 reqs rps p50 p99 cpu calls f
  spec=$(target "$name")
  [ -n "$spec" ] || return 0
  read -r url script procs <<<"$spec"
  for f in warn info base-warn base-info; do [ -f "$work/$f.log" ] && : >"$work/$f.log"; done
  # shellcheck disable=SC2086
  before=$(cpu_ticks $procs) io0=$(io_calls $procs)
  local perfpid=
  if [ -n "${PERF:-}" ] && [ "$name" = upsproxy-warn ]; then
    perf record -q -F ${PERF_FREQ:-499} -g -p "${PID[warn]}" -o "$PERF" -- sleep 3 >/dev/null 2>&1 & perfpid=$!
  fi
  wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$work/$script" "$url" >"$work/$name.wrk"
  [ -z "$perfpid" ] || wait "$perfpid" || true
  # shellcheck disable=SC2086
  after=$(cpu_ticks $procs) io1=$(io_calls $procs)
  if grep -q 'Non-2xx' "$work/$name.wrk"; then
    echo "$name: non-2xx answers:" >&2; cat "$work/$name.wrk" >&2; exit 1
  fi
  reqs=$(awk '/requests in/ {print $1}' "$work/$name.wrk")
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/$name.wrk")
  p50=$(awk '$1=="50%" {print $2}' "$work/$name.wrk")
  p99=$(awk '$1=="99%" {print $2}' "$work/$name.wrk")
  cpu=$(awk -v d=$((after - before)) -v hz="$HZ" -v n="$reqs" 'BEGIN {printf "%.1f", d / hz * 1e6 / n}')
  calls=$(awk -v d=$((io1 - io0)) -v n="$reqs" 'BEGIN {printf "%.2f", d / n}')
  case $name in upstream | nginx) calls=n/a ;; esac
  printf '%-14s %10s req/s   p50 %8s   p99 %8s   cpu %6s µs/req   r+w/req %5s\n' "$name" "$rps" "$p50" "$p99" "$cpu" "$calls"
  echo "$name $rps $(us "$p50") $(us "$p99") $cpu $calls" >>"$work/results"
}
# us DURATION: wrk's "685.00us", "1.56ms" or "2.01s" in µs.
us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /ms$/) n *= 1000; else if (v ~ /[0-9]s$/) n *= 1e6; printf "%.0f", n }'; }

# A/B pairs run back to back: this machine's speed drifts within minutes.
TARGETS=${TARGETS:-upstream nginx goproxy-bare upsproxy-warn base-warn upsproxy-info base-info upsproxy-abs base-abs}
echo "wrk -t$THREADS -c$CONNS -d$DURATION, POST $path (small JSON), 127.0.0.1, $(nproc) cores, $ROUNDS round(s)"
: >"$work/results"
for ((r = 1; r <= ROUNDS; r++)); do
  [ "$ROUNDS" -gt 1 ] && echo "-- round $r"
  # Every other round in reverse order: the first target of a round runs
  # on a machine that has rested, which favoured it by up to 20% here.
  order=$TARGETS
  [ $((r % 2)) -eq 0 ] && order=$(echo "$TARGETS" | tr ' ' '\n' | tac | tr '\n' ' ')
  for t in $order; do run "$t"; done
done
if [ "$ROUNDS" -gt 1 ]; then
  echo "-- medians of $ROUNDS rounds"
  for t in $TARGETS; do
    awk -v t="$t" '$1 == t' "$work/results" | sort -k2,2n | awk -v t="$t" '
      { rps[NR] = $2; p50[NR] = $3; p99[NR] = $4; cpu[NR] = $5; rw[NR] = $6 }
      function med(a, n,   i, j, x, s) { for (i = 1; i <= n; i++) s[i] = a[i]; for (i = 2; i <= n; i++) for (j = i; j > 1 && s[j-1] > s[j]; j--) { x = s[j]; s[j] = s[j-1]; s[j-1] = x }; return n % 2 ? s[(n+1)/2] : (s[n/2] + s[n/2+1]) / 2 }
      END { if (NR) printf "%-14s %10.0f req/s   p50 %6.0fus   p99 %7.0fus   cpu %6.1f µs/req   r+w/req %5s\n", t, med(rps, NR), med(p50, NR), med(p99, NR), med(cpu, NR), rw[1] == "n/a" ? "n/a" : sprintf("%.2f", med(rw, NR)) }'
  done
fi
if [ -n "$BASELINE_BIN" ] && [ "$ROUNDS" -gt 1 ]; then
  # Each round's pair compared, then the median of those ratios: steadier
  # than comparing the medians when the machine's speed drifts.
  echo "-- BIN vs BASELINE_BIN, median of the per-round ratios"
  for m in warn info abs; do
    awk -v a="upsproxy-$m" -v b="base-$m" '
      $1 == a { ra[++na] = $2; ca[na] = $5 }
      $1 == b { rb[++nb] = $2; cb[nb] = $5 }
      function med(x, n,   i, j, t) { for (i = 2; i <= n; i++) for (j = i; j > 1 && x[j-1] > x[j]; j--) { t = x[j]; x[j] = x[j-1]; x[j-1] = t }; return n % 2 ? x[(n+1)/2] : (x[n/2] + x[n/2+1]) / 2 }
      END { n = na < nb ? na : nb; if (!n) exit; for (i = 1; i <= n; i++) { r[i] = ra[i] / rb[i]; c[i] = ca[i] / cb[i] }
            printf "%-6s req/s x%.3f   cpu/req x%.3f\n", substr(a, 10), med(r, n), med(c, n) }' "$work/results"
  done
fi
[ -n "${RESULTS_OUT:-}" ] && cp "$work/results" "$RESULTS_OUT"
if [ -n "${ADMIN[warn]:-}" ]; then
  echo "upsproxy requests counted (warn instance): $(curl -s "http://${ADMIN[warn]}/metrics" | awk '/^upsproxy_requests_total/ {s+=$2} END {print s}')"
fi
