package config

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Defaults of the top-level attributes.
const (
	DefaultListen         = "127.0.0.1:8080"
	DefaultAdminListen    = "127.0.0.1:9090"
	DefaultTransactionSrc = "upsproxy"
)

// maxTransactionSrc is UPS's documented limit for the transactionSrc header.
const maxTransactionSrc = 512

// rawConfig is the file as gohcl decodes it. Pointers tell an absent
// attribute (take the default) from one the user wrote (validate it).
type rawConfig struct {
	Listen         *string       `hcl:"listen,optional"`
	AdminListen    *string       `hcl:"admin_listen,optional"`
	TransactionSrc *string       `hcl:"transaction_src,optional"`
	AllowCIDRs     []string      `hcl:"allow_cidrs,optional"`
	Log            *rawLog       `hcl:"log,block"`
	Vault          *rawVault     `hcl:"vault,block"`
	MITM           *rawMITM      `hcl:"mitm,block"`
	UPS            *rawUPS       `hcl:"ups,block"`
	Reminders      *rawReminders `hcl:"reminders,block"`
	Limits         *rawLimits    `hcl:"limits,block"`
	Rewrites       []*rawRewrite `hcl:"rewrite,block"`
	Clients        []*rawClient  `hcl:"client,block"`
	Carriers       []*rawCarrier `hcl:"carrier,block"`
	Notify         []*rawNotify  `hcl:"notify,block"`
	Console        *rawConsole   `hcl:"console,block"`
	Body           hcl.Body      `hcl:",body"`
}

// buildTopLevel validates the top-level attributes into cfg.
func (r *rawConfig) buildTopLevel(bd *builder, cfg *Config) hcl.Diagnostics {
	var diags hcl.Diagnostics
	b := bd.block(r.Body, hcl.Range{})

	listen := func(name string, p *string, def string) string {
		if !b.given(name, p != nil) {
			return def
		}
		if why := hostPort(*p); why != "" {
			diags = append(diags, b.errorf(name, "Invalid listen address",
				"%s must be host:port, like \"127.0.0.1:8080\" or \":8080\" for every interface: %s.", name, why))
			return def
		}
		return *p
	}
	cfg.Listen = listen("listen", r.Listen, DefaultListen)
	cfg.AdminListen = listen("admin_listen", r.AdminListen, DefaultAdminListen)
	if cfg.Listen == cfg.AdminListen && !strings.HasSuffix(cfg.Listen, ":0") {
		diags = append(diags, b.errorf("admin_listen", "Invalid listen address",
			"admin_listen and listen are both %q; the admin listener needs its own address.", cfg.Listen))
	}

	cfg.TransactionSrc = DefaultTransactionSrc
	if b.given("transaction_src", r.TransactionSrc != nil) {
		if why := transactionSrcProblem(*r.TransactionSrc); why != "" {
			diags = append(diags, b.errorf("transaction_src", "Invalid transaction_src", "transaction_src %s.", why))
		} else {
			cfg.TransactionSrc = *r.TransactionSrc
		}
	}

	for i, s := range r.AllowCIDRs {
		p, err := parseCIDR(s)
		if err != nil {
			d := b.errorf("allow_cidrs", "Invalid CIDR",
				"allow_cidrs entries must be networks like \"10.0.0.0/8\" or single addresses like \"192.0.2.7\"; %q is neither.", s)
			d.Subject = b.elemRange("allow_cidrs", i)
			diags = append(diags, d)
			continue
		}
		cfg.AllowCIDRs = append(cfg.AllowCIDRs, p)
	}
	return diags
}

// parseCIDR accepts a network or a bare address (a one-address network).
// Host bits are cleared so "10.1.2.3/8" means 10.0.0.0/8, as ops expect.
func parseCIDR(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("address %q has a zone", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return p.Masked(), nil
}

// transactionSrcProblem explains why s cannot be sent as the transactionSrc
// header, or returns "".
func transactionSrcProblem(s string) string {
	if s == "" {
		return "must not be empty"
	}
	if len(s) > maxTransactionSrc {
		return "is longer than UPS's limit of 512 characters"
	}
	for _, c := range []byte(s) {
		if c < 0x20 || c > 0x7e {
			return "must be printable ASCII: it is sent as an HTTP header"
		}
	}
	return ""
}
