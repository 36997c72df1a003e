package config

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestEgressProxy(t *testing.T) {
	t.Setenv("UPSPROXY_TEST_EGRESS", "http://proxy-user:env-pass%40word@squid.corp:3128")
	const filePassword = "literal-pass-9"
	tests := []struct {
		name, expr       string
		url, user, pass  string // a valid egress proxy
		errSub, warnSub  string
		diagLine         int // line the diagnostic points at
		mustNotBePrinted string
	}{
		{name: "none: UPS is dialled directly", expr: `""`},
		{name: "no credentials", expr: `"http://squid.corp:3128"`, url: "http://squid.corp:3128"},
		{name: "an https proxy", expr: `"https://squid.corp:3129/"`, url: "https://squid.corp:3129"},
		{name: "an IPv6 proxy", expr: `"http://[fd00::1]:3128"`, url: "http://[fd00::1]:3128"},
		{name: "credentials from env(), percent-decoded", expr: `env("UPSPROXY_TEST_EGRESS")`, url: "http://squid.corp:3128", user: "proxy-user", pass: "env-pass@word"},
		{name: "a user without password", expr: `"http://proxy-user@squid.corp:3128"`, url: "http://squid.corp:3128", user: "proxy-user"},
		{name: "a literal password is warned about, masked in the printed line", expr: `"http://u:` + filePassword + `@squid.corp:3128"`,
			url: "http://squid.corp:3128", user: "u", pass: filePassword, warnSub: "egress_proxy has a password written in the config file", diagLine: 2, mustNotBePrinted: filePassword},
		{name: "no scheme", expr: `"squid.corp:3128"`, errSub: "must start with http://", diagLine: 2},
		{name: "socks is not supported", expr: `"socks5://squid.corp:1080"`, errSub: "SOCKS proxies are not supported", diagLine: 2},
		{name: "no port", expr: `"http://squid.corp"`, errSub: "it has no port", diagLine: 2},
		{name: "a bad port", expr: `"http://squid.corp:0"`, errSub: "port must be a number from 1 to 65535", diagLine: 2},
		{name: "a path", expr: `"http://squid.corp:3128/proxy"`, errSub: "give only scheme", diagLine: 2},
		{name: "a password without user", expr: `"http://:` + filePassword + `@squid.corp:3128"`, errSub: "no user name", diagLine: 2, mustNotBePrinted: filePassword},
		{name: "an unparsable URL with a password never echoes it", expr: `"http://u:` + filePassword + `@squid.corp:31x8"`, errSub: "it is not a URL", diagLine: 2, mustNotBePrinted: filePassword},
		{name: "not a string", expr: `["http://squid.corp:3128"]`, errSub: "string required", diagLine: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "ups {\n  egress_proxy = " + tt.expr + "\n}\n"
			cfg, files, diags := LoadBytes([]byte(src), "c.hcl")
			var out bytes.Buffer
			if err := files.WriteDiagnostics(&out, diags, false); err != nil {
				t.Fatal(err)
			}
			if tt.mustNotBePrinted != "" && strings.Contains(out.String()+describe(diags), tt.mustNotBePrinted) {
				t.Errorf("the diagnostics show the password:\n%s", out.String())
			}
			if tt.errSub != "" {
				if cfg != nil || !strings.Contains(describe(diags), tt.errSub) {
					t.Fatalf("want an error containing %q, got:%s", tt.errSub, describe(diags))
				}
				if d := errorsOf(diags)[0]; d.Subject == nil || d.Subject.Start.Line != tt.diagLine {
					t.Errorf("error should point at line %d, got:%s", tt.diagLine, describe(diags))
				}
				return
			}
			if cfg == nil {
				t.Fatalf("unexpected errors:%s", describe(diags))
			}
			if tt.warnSub != "" {
				if w := warningsOf(diags); len(w) != 1 || !strings.Contains(w[0].Summary, tt.warnSub) || w[0].Subject.Start.Line != tt.diagLine {
					t.Errorf("want one warning %q on line %d, got:%s", tt.warnSub, tt.diagLine, describe(diags))
				}
			} else if len(diags) > 0 {
				t.Fatalf("unexpected diagnostics:%s", describe(diags))
			}
			e := cfg.UPS.Egress
			if tt.url == "" {
				if e != nil {
					t.Fatalf("egress = %v, want none", e)
				}
				return
			}
			if e == nil || e.URL.String() != tt.url || e.Username != tt.user || e.Password.Value != tt.pass {
				t.Fatalf("egress = %v (password %d bytes), want %s user %q", e, len(e.Password.Value), tt.url, tt.user)
			}
			if s := fmt.Sprint(e) + fmt.Sprintf("%v %+v %#v", cfg.UPS, e, e); tt.pass != "" && strings.Contains(s, tt.pass) {
				t.Errorf("printing the egress proxy shows its password: %s", s)
			}
		})
	}
}
