#!/usr/bin/env python3
"""Rate a shipment through upsproxy with requests, in either mode.

    python3 rate.py forward   # HTTPS through the proxy, trusting ca.pem
    python3 rate.py base      # upsproxy as the UPS base URL

forward: the program keeps addressing UPS's host; requests sends the call
through the proxy (proxies=) and verifies the certificates upsproxy presents
against its CA (verify='ca.pem'). base: the program addresses upsproxy
itself, as software that only lets you change the UPS URL does.

Settings (environment): UPSPROXY_URL (default http://127.0.0.1:8080),
UPSPROXY_CA (default ca.pem), UPSPROXY_CARRIER (sent as X-Upsproxy-Carrier),
UPSPROXY_USER and UPSPROXY_PASSWORD (proxy credentials, when upsproxy.hcl has
client blocks), UPS_URL (default https://wwwcie.ups.com, UPS's Test host),
BODY (default ../../rate-request.json next to this file), UPS_CLIENT_ID and
UPS_CLIENT_SECRET (when set, the program first fetches its OAuth token from
UPS's token URL, as software written for UPS's OAuth does; upsproxy answers
that itself).

Needs: pip install requests
"""

import base64
import os
import sys
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import requests

RATE_PATH = "/api/rating/v2409/Rate"
TOKEN_PATH = "/security/v1/oauth/token"


def with_credentials(proxy_url, user, password):
    """proxy_url with user:password in it, percent-encoded, for proxies=."""
    parts = urlsplit(proxy_url)
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.netloc}"
    return urlunsplit(parts._replace(netloc=netloc))


def main(argv):
    mode = argv[1] if len(argv) > 1 else ""
    if mode not in ("forward", "base"):
        print(f"usage: {argv[0]} forward|base   (settings: see the top of this file)", file=sys.stderr)
        return 2

    proxy = os.environ.get("UPSPROXY_URL", "http://127.0.0.1:8080").rstrip("/")
    ca = os.environ.get("UPSPROXY_CA", "ca.pem")
    ups_url = os.environ.get("UPS_URL", "https://wwwcie.ups.com").rstrip("/")
    body = Path(os.environ.get("BODY", Path(__file__).resolve().parent.parent.parent / "rate-request.json"))
    user = os.environ.get("UPSPROXY_USER", "")
    password = os.environ.get("UPSPROXY_PASSWORD", "")
    carrier = os.environ.get("UPSPROXY_CARRIER", "")
    client_id = os.environ.get("UPS_CLIENT_ID", "")
    client_secret = os.environ.get("UPS_CLIENT_SECRET", "")

    session = requests.Session()
    # Everything below is explicit: HTTPS_PROXY, NO_PROXY or
    # REQUESTS_CA_BUNDLE in the environment must not change where the call
    # goes or what it trusts.
    session.trust_env = False
    headers = {"Content-Type": "application/json"}
    if carrier:
        headers["X-Upsproxy-Carrier"] = carrier

    if mode == "forward":
        proxy_url = with_credentials(proxy, user, password) if user else proxy
        # requests sends the URL's credentials as Proxy-Authorization, on the
        # CONNECT too. verify= is upsproxy's CA only: a call that bypassed the
        # proxy would fail on the certificate rather than reach UPS without a
        # token.
        session.proxies = {"https": proxy_url, "http": proxy_url}
        session.verify = ca
        base = ups_url
    else:
        if user:
            # requests sends proxy credentials only to a proxy; in base-URL
            # mode upsproxy is the server, so the header is set by hand.
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers["Proxy-Authorization"] = "Basic " + token
        base = proxy
    url = base + RATE_PATH

    if client_id:
        # UPS's client-credentials flow, unchanged: Basic client id and
        # secret, a form body, the access_token of the JSON answer.
        try:
            tok = session.post(base + TOKEN_PATH, data={"grant_type": "client_credentials"},
                               auth=(client_id, client_secret), timeout=60)
        except requests.exceptions.RequestException as e:
            print(f"POST {base + TOKEN_PATH}: {e}", file=sys.stderr)
            return 1
        if not tok.ok:
            print(f"token request failed: HTTP {tok.status_code} {tok.text}", file=sys.stderr)
            return 1
        headers["Authorization"] = "Bearer " + tok.json()["access_token"]

    try:
        data = body.read_bytes()
    except OSError as e:
        print(f"read the request body: {e}", file=sys.stderr)
        return 1
    try:
        resp = session.post(url, data=data, headers=headers, timeout=60)
    except requests.exceptions.SSLError as e:
        print(f"TLS error: is {ca} upsproxy's CA (upsproxy ca init)? {e}", file=sys.stderr)
        return 1
    except requests.exceptions.RequestException as e:
        print(f"POST {url}: {e}", file=sys.stderr)
        return 1

    code = resp.headers.get("X-Upsproxy-Error")
    if code:
        print(f"upsproxy refused the call: {code} (HTTP {resp.status_code})", file=sys.stderr)
    elif not resp.ok:
        print(f"UPS answered HTTP {resp.status_code}", file=sys.stderr)
    print(resp.text)
    return 0 if resp.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
