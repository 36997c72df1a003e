#!/usr/bin/env bash
# What `make test` needs beyond Go and gcc, installed only when missing
# (idempotent, so every run may call it): headless Chromium for the
# console's browser test, and node + npm for the test that runs a real
# third-party UPS client from the npm registry. Both tests fail rather than
# skip without these, so a fresh machine gets them here. Debian/Ubuntu
# (apt-get); elsewhere install them yourself or set UPSPROXY_CHROMIUM.
set -euo pipefail
missing=()
if [ -z "${UPSPROXY_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1 &&
  ! command -v chromium-browser >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1; then
  missing+=(chromium)
fi
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "make test needs: ${missing[*]} (no apt-get here: install them, or set UPSPROXY_CHROMIUM)" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing test dependencies: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
