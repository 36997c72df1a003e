#!/usr/bin/env bash
# What `make bench` runs: every benchmark of issue 13 in one go, then ONE
# table with each target's figures and its ratio to the anchor of its row,
# and the WAN latency chart (PNG).
#
#   throughput  scripts/bench-vs-nginx.sh: keep-alive req/s of nginx, a bare
#               goproxy and upsproxy (base-URL and HTTP forward proxy);
#               anchor nginx. Needs wrk and nginx (installed with apt-get
#               when missing and possible, else skipped).
#   wan         bin/bench wan: 1 KB Rate, toxiproxy injecting LATENCY each
#               way (and the TCP handshake round trip) between the clients
#               and upsproxy on one side and a TLS "UPS" on the other;
#               p50/p99 direct vs through upsproxy; anchor: direct.
#   mitm        bin/bench mitm: HTTPS forward proxy, a new CONNECT and TLS
#               handshake per call, clients with and without a TLS session
#               cache; anchor: bare goproxy.
#   scale       bin/bench scale: RSS with many idle client connections,
#               1,000 carriers x 2 environments against the dev Vault, a
#               refresh storm (5 storms at a token's renewal instant, each
#               against the same burst with a valid token after an identical
#               warm-up; medians and ranges). The storm alone:
#               bin/bench scale -root . -idle 0 -carriers 0
#
# Knobs: OUT (bench-results), SECTIONS ("throughput wan mitm scale"),
# LATENCY (20ms), DURATION/ROUNDS (throughput, 5s/5: single rounds here
# swing by ±15%, medians of 5 by less), CHART
# (docs/bench/wan-latency.png). Benchmarks share the CPU with everything
# else on the machine: the load average is printed next to every figure.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench-results}
SECTIONS=${SECTIONS:-throughput wan mitm scale}
LATENCY=${LATENCY:-20ms}
CHART=${CHART:-docs/bench/wan-latency.png}
mkdir -p "$OUT" "$(dirname "$CHART")"
: >"$OUT/results.jsonl"
rm -f "$OUT/throughput.txt"

make -s build vaultdev
(cd tools/bench && go build -o ../../bin/bench .)

has() { case " $SECTIONS " in *" $1 "*) return 0 ;; esac; return 1; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), $(go version | cut -d' ' -f3)"
tload=
if has throughput; then
  if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      apt-get install -y -qq wrk nginx-light >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk nginx-light >/dev/null; }
    fi
  fi
  if command -v wrk >/dev/null && command -v nginx >/dev/null; then
    tload=$(load)
    RESULTS_OUT="$OUT/throughput.txt" DURATION=${DURATION:-5s} ROUNDS=${ROUNDS:-5} \
      TARGETS=${TARGETS:-upstream nginx goproxy-bare upsproxy-warn upsproxy-abs} scripts/bench-vs-nginx.sh
  else
    echo "throughput skipped: wrk and nginx are needed (apt-get install wrk nginx-light)" >&2
  fi
fi
has wan && bin/bench wan -root . -latency "$LATENCY" -out "$OUT/results.jsonl"
has mitm && bin/bench mitm -root . -rounds "${MITM_ROUNDS:-3}" -out "$OUT/results.jsonl"
has scale && bin/bench scale -root . -out "$OUT/results.jsonl"

echo
args=(-in "$OUT/results.jsonl" -md "$OUT/table.md" -png "$CHART")
[ -f "$OUT/throughput.txt" ] && args+=(-nginx "$OUT/throughput.txt" -nginx-load "$tload")
bin/bench report "${args[@]}"
echo
echo "table: $OUT/table.md   chart: $CHART"
