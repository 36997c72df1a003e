package config

import (
	"math"
	"net/netip"
	"regexp"
	"strings"
	"testing"
)

func TestParseSizeAcceptsBinaryAndDecimalUnitsAndRejectsTheRest(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{in: "1048576", want: 1 << 20},
		{in: "10MiB", want: 10 << 20},
		{in: "10 MiB", want: 10 << 20},
		{in: "10mib", want: 10 << 20},
		{in: "512KiB", want: 512 << 10},
		{in: "2GiB", want: 2 << 30},
		{in: "1KB", want: 1000},
		{in: "5MB", want: 5_000_000},
		{in: "1GB", want: 1_000_000_000},
		{in: "42B", want: 42},
		{in: "0", want: 0},
		{in: "9223372036854775807", want: math.MaxInt64},
		{in: "", wantErr: "whole number"},
		{in: "MiB", wantErr: "whole number"},
		{in: "-1", wantErr: "whole number"},
		{in: "1.5MiB", wantErr: "unknown unit"},
		{in: "10 parsecs", wantErr: `unknown unit "parsecs"`},
		{in: "10TiB", wantErr: "unknown unit"},
		{in: "9223372036854775808", wantErr: "too large"},
		{in: "8589934592GiB", wantErr: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSize(%q) = %d, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestListenAddressChecks(t *testing.T) {
	tests := []struct {
		addr       string
		valid      bool
		isLoopback bool
	}{
		{"127.0.0.1:8080", true, true},
		{"[::1]:8080", true, true},
		{"localhost:8080", true, true},
		{"127.0.0.1:0", true, true},
		{":8080", true, false},
		{"0.0.0.0:8080", true, false},
		{"10.1.2.3:8080", true, false},
		{"proxy.internal:8080", true, false},
		{"127.0.0.1", false, false},
		{"127.0.0.1:http", false, false},
		{"127.0.0.1:65536", false, false},
		{"::1:8080", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if got := hostPort(tt.addr) == ""; got != tt.valid {
				t.Errorf("valid = %v, want %v (%s)", got, tt.valid, hostPort(tt.addr))
			}
			if tt.valid {
				if got := isLoopbackListen(tt.addr); got != tt.isLoopback {
					t.Errorf("loopback = %v, want %v", got, tt.isLoopback)
				}
			}
		})
	}
}

func TestParseCIDRAcceptsNetworksAndSingleAddresses(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: "10.0.0.0/8", want: "10.0.0.0/8"},
		{in: "10.1.2.3/8", want: "10.0.0.0/8"},
		{in: "192.0.2.7", want: "192.0.2.7/32"},
		{in: "::ffff:192.0.2.7", want: "192.0.2.7/32"},
		{in: "2001:db8::1", want: "2001:db8::1/128"},
		{in: "fe80::1%eth0", wantErr: true},
		{in: "10.0.0.0/33", wantErr: true},
		{in: "ten.0.0.0/8", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseCIDR(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseCIDR(%q) = %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != netip.MustParsePrefix(tt.want) {
				t.Fatalf("parseCIDR(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestRewriteReplacesTheWholePathWithTheExpandedTemplate(t *testing.T) {
	tests := []struct {
		name, match, replace, path, want string
		ok                               bool
	}{
		{"anchored pattern with a numbered group", `^/ship/v1/rating/(Rate|Shop)$`, "/api/rating/v2409/$1", "/ship/v1/rating/Shop", "/api/rating/v2409/Shop", true},
		{"named group", `^/track/v1/details/(?P<n>\w+)$`, "/api/track/v1/details/${n}", "/track/v1/details/1Z9", "/api/track/v1/details/1Z9", true},
		{"unanchored pattern still replaces the whole path", `rating/(Rate)`, "/api/rating/v2409/$1", "/legacy/rating/Rate", "/api/rating/v2409/Rate", true},
		{"no match leaves the path alone", `^/ship/v1/rating/(Rate|Shop)$`, "/api/rating/v2409/$1", "/api/rating/v2409/Rate", "/api/rating/v2409/Rate", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Rewrite{Match: regexp.MustCompile(tt.match), Replace: tt.replace}
			got, ok := r.Apply(tt.path)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("Apply(%q) = %q, %v; want %q, %v", tt.path, got, ok, tt.want, tt.ok)
			}
		})
	}
	if _, ok := (Rewrite{}).Apply("/x"); ok {
		t.Error("a zero Rewrite must not match")
	}
}

func TestRewriteTemplatesNamingMissingGroupsAreRejected(t *testing.T) {
	re := regexp.MustCompile(`^/a/(?P<kind>\w+)/(\d+)$`)
	tests := []struct {
		tmpl    string
		wantErr string
	}{
		{tmpl: "/api/x/$1/$2"},
		{tmpl: "/api/x/${kind}/${2}"},
		{tmpl: "/api/x/$kind"},
		{tmpl: "/api/cost/$$5"},
		{tmpl: "/api/x/$3", wantErr: "only 2 group"},
		{tmpl: "/api/x/${nope}", wantErr: `no group named "nope"`},
		{tmpl: "/api/x/$1x", wantErr: `no group named "1x"`},
		{tmpl: "/api/x/${1", wantErr: "unterminated"},
		{tmpl: "/api/x/$", wantErr: "write $$"},
		{tmpl: "/api/x/$-", wantErr: "write $$"},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			got := templateProblem(re, tt.tmpl)
			if tt.wantErr == "" && got != "" || tt.wantErr != "" && !strings.Contains(got, tt.wantErr) {
				t.Fatalf("templateProblem(%q) = %q, want %q", tt.tmpl, got, tt.wantErr)
			}
		})
	}
}

func TestBcryptHashShapes(t *testing.T) {
	good := "$2a$10$mZfaaPCVaDin1zY4zdQu/uIJ3xL8oChYAJVdN28wS9GacPBDTE9A."
	tests := []struct {
		name string
		hash string
		ok   bool
	}{
		{"a real 2a hash", good, true},
		{"the 2b variant", "$2b$" + good[4:], true},
		{"the 2y variant from htpasswd", "$2y$" + good[4:], true},
		{"htpasswd output with the user name still attached", "erp:" + good, false},
		{"a plain password", "hunter2", false},
		{"truncated", good[:50], false},
		{"one character too many", good + "x", false},
		{"a character outside bcrypt base64", good[:40] + "!" + good[41:], false},
		{"cost out of range", "$2a$99$" + good[7:], false},
		{"md5-crypt", "$1$saltsalt$qjXMvbEw8oaL.CzflDugX/", false},
		{"argon2", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isBcryptHash(tt.hash); got != tt.ok {
				t.Fatalf("isBcryptHash = %v, want %v", got, tt.ok)
			}
		})
	}
}
