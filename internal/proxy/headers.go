package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/upsproxy/upsproxy/internal/clienttoken"
)

// UPS's optional request headers, canonical form (header names are
// case-insensitive; Go writes them canonicalized).
const (
	transIDHeader        = "Transid"        // transId: unique per request, up to 32 chars
	transactionSrcHeader = "Transactionsrc" // transactionSrc: the calling application
	authorizationHeader  = "Authorization"
)

// stripRequestHeaders removes from an outgoing request everything that must
// not reach UPS: credentials the client sent (Authorization, legacy access-key
// headers), proxy headers, the proxy's own X-Upsproxy-* headers and the
// hop-by-hop headers of the client's connection.
func stripRequestHeaders(h http.Header) {
	conn := h["Connection"]
	for k := range h {
		if strippedRequestHeader(k) || connectionListed(conn, k) {
			delete(h, k)
		}
	}
}

// stripQueryCredentials returns the raw query q without the parameters
// that carry a client's credential: access_token (the bearer of RFC 6750,
// 2.3, as OAuth libraries may send it) and any parameter that holds an
// upsproxy token. The proxy replaces the client's credentials with the
// carrier's in the Authorization header; one left in the URL would reach
// UPS (and its logs) beside it. Names and values are compared decoded, as
// UPS's server would read them. A query without either is returned as it
// is, without allocating.
func stripQueryCredentials(q string) string {
	if q == "" {
		return q
	}
	var kept []byte // nil until a parameter is dropped
	rest := q
	for i := 0; rest != ""; {
		seg, after, more := strings.Cut(rest, "&")
		if credentialParam(seg) {
			if kept == nil {
				kept = make([]byte, 0, len(q))
				kept = append(kept, strings.TrimSuffix(q[:i], "&")...)
			}
		} else if kept != nil {
			if len(kept) > 0 {
				kept = append(kept, '&')
			}
			kept = append(kept, seg...)
		}
		i += len(seg)
		if more {
			i++
		}
		rest = after
	}
	if kept == nil {
		return q
	}
	return strings.TrimSuffix(string(kept), "&")
}

// credentialParam reports whether one raw query parameter ("name=value")
// carries a credential (see stripQueryCredentials): it is named
// access_token, or an upsproxy token appears anywhere in it (also after a
// ';', which some servers read as a separator). Only a segment with a
// percent escape is decoded (one allocation).
func credentialParam(seg string) bool {
	if strings.IndexByte(seg, '%') >= 0 {
		if d, err := url.QueryUnescape(seg); err == nil {
			seg = d
		}
	}
	name, _, _ := strings.Cut(seg, "=")
	return strings.EqualFold(strings.TrimSpace(name), "access_token") || strings.Contains(seg, clienttoken.Prefix)
}

// strippedRequestHeader reports whether a request header k must be removed.
// Case-insensitive, so it holds even for a header map that was not
// canonicalized.
func strippedRequestHeader(k string) bool {
	if hasPrefixFold(k, "Proxy-") || hasPrefixFold(k, "X-Upsproxy-") {
		return true
	}
	if isASCII(k) {
		// Case folding keeps an ASCII string's length (a non-ASCII one
		// may fold to ASCII of another length: the Kelvin sign is a k),
		// so only the names of k's length can match.
		switch len(k) {
		case len("Authorization"):
			return strings.EqualFold(k, "Authorization")
		case len("AccessLicenseNumber"):
			return strings.EqualFold(k, "AccessLicenseNumber")
		case len("Username"): // = len("Password")
			return strings.EqualFold(k, "Username") || strings.EqualFold(k, "Password")
		}
		return hopByHop(k)
	}
	switch {
	case strings.EqualFold(k, "Authorization"),
		strings.EqualFold(k, "AccessLicenseNumber"),
		strings.EqualFold(k, "Username"),
		strings.EqualFold(k, "Password"):
		return true
	}
	return hopByHop(k)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// cleanResponseHeaders removes from UPS's response what the client must not
// see: the proxy's own X-Upsproxy-* headers (UPS must never be able to forge
// the proxy's errors), Proxy-* headers (they would be read as the proxy's)
// and the hop-by-hop headers of the upstream connection.
func cleanResponseHeaders(h http.Header) {
	conn := h["Connection"]
	for k := range h {
		if hasPrefixFold(k, "X-Upsproxy-") || hasPrefixFold(k, "Proxy-") || hopByHop(k) || connectionListed(conn, k) {
			delete(h, k)
		}
	}
}

// hopByHop reports whether k is a hop-by-hop header (RFC 9110 7.6.1): it
// describes one connection and must not be forwarded. Trailer and
// Transfer-Encoding are not listed: net/http keeps them out of Header maps.
func hopByHop(k string) bool {
	if isASCII(k) && len(k) != len("Connection") && len(k) != len("Keep-Alive") && len(k) != len("Te") && len(k) != len("Upgrade") {
		return false // see strippedRequestHeader
	}
	switch {
	case strings.EqualFold(k, "Connection"),
		strings.EqualFold(k, "Keep-Alive"),
		strings.EqualFold(k, "Te"),
		strings.EqualFold(k, "Upgrade"):
		return true
	}
	return false
}

// connectionListed reports whether the Connection header's values name k:
// such headers are hop-by-hop by declaration. Matching each key against
// the list (rather than deleting each listed name) needs no canonicalized
// copy of the names, so the usual "Connection: keep-alive" costs nothing.
func connectionListed(conn []string, k string) bool {
	for _, v := range conn {
		for v != "" {
			var name string
			name, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(textproto.TrimString(name), k) {
				return true
			}
		}
	}
	return false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// hasHeader reports whether h has a non-empty value for the canonical key k.
func hasHeader(h http.Header, k string) bool {
	vs := h[k]
	return len(vs) > 0 && vs[0] != ""
}

// newTransID returns 32 random hex characters: UPS's transId allows up to
// 32, and 128 random bits make collisions a non-issue.
func newTransID() string {
	var raw [16]byte
	// crypto/rand.Read never fails on supported platforms (it crashes the
	// program instead), per its documentation since Go 1.24.
	_, _ = rand.Read(raw[:])
	var buf [32]byte
	hex.Encode(buf[:], raw[:])
	return string(buf[:])
}
