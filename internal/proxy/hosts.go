package proxy

import (
	"net"
	"net/url"
	"strings"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// target is what a client addressed. The table below is the proxy's whole
// allow-list: a host that is not in it is never dialled, whatever the mode.
type target struct {
	host string
	env  ups.Environment // "" for base-URL mode: no particular UPS host
}

// Pointers to fixed values, shared by every request that addresses them.
var (
	testTarget       = &target{host: ups.TestHost, env: ups.Test}
	productionTarget = &target{host: ups.ProductionHost, env: ups.Production}
	baseURLTarget    = &target{host: baseURLHost}
)

// baseURLHost marks an origin-form request (the client's UPS base URL is
// the proxy itself): origin-form requests are given this host, so that
// every mode goes through the same target check. The .invalid TLD (RFC 2606) can never name a real host, so no request can
// reach anything through it: at worst a client that spells it out gets
// base-URL mode, which it could have had anyway.
const baseURLHost = "base-url.upsproxy.invalid"

// lookupUPSHost returns the UPS host named host, or nil. host is
// normalised first (normalHost): every check of a host name goes through
// here, so "WWWCIE.UPS.COM." is the Test host for the environment guard as
// much as for the allow-list.
func lookupUPSHost(host string) *target {
	switch normalHost(host) {
	case ups.ProductionHost:
		return productionTarget
	case ups.TestHost:
		return testTarget
	}
	return nil
}

// normalHost is a host name as the checks compare it: lower case and
// without the one trailing dot of a fully qualified name
// ("wwwcie.ups.com." resolves to the same host as "wwwcie.ups.com").
func normalHost(host string) string {
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// connectTarget checks the authority of a CONNECT request: a UPS host, on
// port 443 only. nil means refuse.
func connectTarget(authority string) *target {
	host, port, err := net.SplitHostPort(authority)
	if err != nil || port != "443" {
		return nil
	}
	return lookupUPSHost(host)
}

// requestTarget checks the URL of a request in absolute form, including the
// requests decrypted inside a MITM tunnel. nil means refuse.
func requestTarget(u *url.URL) *target {
	if u.Host == baseURLHost && u.Scheme == "http" {
		// Origin-form must be a path: "OPTIONS *" and friends are not UPS calls.
		if !strings.HasPrefix(u.Path, "/") {
			return nil
		}
		return baseURLTarget
	}
	port := u.Port()
	switch u.Scheme {
	case "https":
		if port != "" && port != "443" {
			return nil
		}
	case "http":
		if port != "" && port != "80" {
			return nil
		}
	default:
		return nil
	}
	return lookupUPSHost(u.Hostname())
}

// hostname strips an optional port (and IPv6 brackets) from a Host header
// value and normalises the name (normalHost). Unlike net.SplitHostPort it
// does not allocate an error for a host without a port, which is the
// common case on the hot path.
func hostname(hostport string) string {
	u := url.URL{Host: hostport}
	return normalHost(u.Hostname())
}
