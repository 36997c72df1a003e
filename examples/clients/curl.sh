#!/usr/bin/env bash
# Rate a shipment through upsproxy with curl, in either mode.
#
#   ./curl.sh forward   HTTPS forward proxy: curl CONNECTs through upsproxy to
#                       the UPS host and trusts upsproxy's CA (ca.pem)
#   ./curl.sh base      base-URL mode: curl sends the request to upsproxy
#                       itself, as software that only lets you change the
#                       UPS URL does
#
# Settings (environment):
#   UPSPROXY_URL       the proxy (default http://127.0.0.1:8080)
#   UPSPROXY_CA        upsproxy's CA certificate, forward mode (default ./ca.pem)
#   UPSPROXY_USER      proxy user (a client block of upsproxy.hcl), if any;
#   UPSPROXY_PASSWORD  its password (asked for when unset)
#   UPSPROXY_CARRIER   sent as X-Upsproxy-Carrier (default: upsproxy decides)
#   UPS_URL            the UPS host addressed in forward mode
#                      (default https://wwwcie.ups.com, UPS's Test host)
#   BODY               the request (default: ../rate-request.json)
#   UPS_CLIENT_ID      when set, curl first fetches an OAuth token from UPS's
#   UPS_CLIENT_SECRET  token URL with these, as software written for UPS's
#                      OAuth does (upsproxy answers that itself)
#
# The proxy password, client secret and token never appear on curl's command
# line (where `ps` would show them): they go to curl through a config read
# from stdin.
set -euo pipefail

mode=${1:-}
proxy=${UPSPROXY_URL:-http://127.0.0.1:8080}
ca=${UPSPROXY_CA:-ca.pem}
ups_url=${UPS_URL:-https://wwwcie.ups.com}
body=${BODY:-$(dirname "$0")/../rate-request.json}
path=/api/rating/v2409/Rate

# quote VALUE: VALUE as a double-quoted string of a curl config file.
quote() {
  local v=${1//\\/\\\\}
  printf '"%s"' "${v//\"/\\\"}"
}

config=""
if [ -n "${UPSPROXY_USER:-}" ]; then
  if [ -z "${UPSPROXY_PASSWORD+set}" ]; then
    read -rsp "proxy password for $UPSPROXY_USER: " UPSPROXY_PASSWORD
    echo >&2
  fi
  case $mode in
  forward)
    # Sent as Proxy-Authorization, on the CONNECT too. curl percent-decodes
    # proxy credentials, so a literal % is written %25.
    config="proxy-user = $(quote "${UPSPROXY_USER//%/%25}:${UPSPROXY_PASSWORD//%/%25}")" ;;
  base)
    # curl sends --proxy-user only to a proxy; here upsproxy is the server,
    # so the header is set by hand.
    basic=$(printf '%s:%s' "$UPSPROXY_USER" "$UPSPROXY_PASSWORD" | base64 | tr -d '\n')
    config="header = $(quote "Proxy-Authorization: Basic $basic")" ;;
  esac
fi

case $mode in
forward)
  # --proxy wins over HTTPS_PROXY/NO_PROXY, --cacert over the system store:
  # the call goes through upsproxy or fails, it never reaches UPS directly.
  route=(--proxy "$proxy" --cacert "$ca")
  base=$ups_url
  ;;
base)
  # --noproxy '*': upsproxy is the server here, never reached through
  # another proxy named in the environment.
  route=(--noproxy '*')
  base=$proxy
  ;;
*)
  echo "usage: $0 forward|base   (settings: see the top of this script)" >&2
  exit 2
  ;;
esac

if [ -n "${UPS_CLIENT_ID:-}" ]; then
  # UPS's client-credentials flow, unchanged: Basic client id and secret, a
  # form body, the access_token of the JSON answer as the bearer.
  answer=$(curl -sS --fail-with-body --max-time 60 -K - "${route[@]}" \
    --data grant_type=client_credentials "$base/security/v1/oauth/token" \
    <<<"$config
user = $(quote "$UPS_CLIENT_ID:${UPS_CLIENT_SECRET:-}")") || { echo "token request failed: $answer" >&2; exit 1; }
  token=$(sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p' <<<"$answer")
  if [ -z "$token" ]; then
    echo "no access_token in the token answer" >&2
    exit 1
  fi
  config="$config
header = $(quote "Authorization: Bearer $token")"
fi

args=(-sS --fail-with-body --max-time 60 -K - -H 'Content-Type: application/json' --data "@$body")
if [ -n "${UPSPROXY_CARRIER:-}" ]; then
  args+=(-H "X-Upsproxy-Carrier: $UPSPROXY_CARRIER")
fi
exec curl "${args[@]}" "${route[@]}" "$base$path" <<<"$config"
