package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// duration returns the positive duration written in attribute name, or def
// when the attribute is absent.
func (b block) duration(diags *hcl.Diagnostics, name string, p *string, def time.Duration) time.Duration {
	if !b.given(name, p != nil) {
		return def
	}
	d, err := time.ParseDuration(*p)
	if err != nil {
		*diags = append(*diags, b.errorf(name, "Invalid duration",
			"%s must be a Go duration such as \"30s\", \"10m\" or \"168h\": %s.", name, err))
		return def
	}
	if d <= 0 {
		*diags = append(*diags, b.errorf(name, "Invalid duration", "%s must be positive, not %s.", name, *p))
		return def
	}
	return d
}

// size returns the positive byte size written in attribute name, or def
// when the attribute is absent.
func (b block) size(diags *hcl.Diagnostics, name string, p *string, def int64) int64 {
	if !b.given(name, p != nil) {
		return def
	}
	n, err := ParseSize(*p)
	if err != nil {
		*diags = append(*diags, b.errorf(name, "Invalid size", "%s: %s.", name, err))
		return def
	}
	if n <= 0 {
		*diags = append(*diags, b.errorf(name, "Invalid size", "%s must be positive, not %q.", name, *p))
		return def
	}
	return n
}

// hostPort checks that s is "host:port" with a numeric port, the form
// net.Listen accepts. An empty host (":8080") means every interface.
func hostPort(s string) string {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return err.Error()
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Sprintf("the port %q is not a number between 0 and 65535", port)
	}
	return ""
}

// isLoopbackListen reports whether a valid listen address only accepts
// connections from the local machine.
func isLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// httpURL parses s as an absolute http or https URL, returning a reason when
// it is not one.
func httpURL(s string) (*url.URL, string) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err.Error()
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, "it must start with https:// or http://"
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, "it has no host name"
	}
	if u.User != nil {
		// Credentials in a URL end up in logs and error messages.
		return nil, "it must not contain user information"
	}
	return u, ""
}
