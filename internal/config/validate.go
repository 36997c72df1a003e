package config

import (
	"strconv"

	"github.com/hashicorp/hcl/v2"
)

// build is the validation pass: it turns the decoded file into a Config,
// applying defaults, then checks what spans blocks (unique names, one
// default, shipper numbers, references). It keeps going after an error so
// one run shows every problem.
func (r *rawConfig) build(ctx *hcl.EvalContext, dir string, decodeDiags hcl.Diagnostics) (*Config, hcl.Diagnostics) {
	bd := &builder{ctx: ctx, dir: dir, decodeDiags: decodeDiags}
	cfg := &Config{}
	var diags hcl.Diagnostics
	add := func(d hcl.Diagnostics) { diags = append(diags, d...) }

	add(r.buildTopLevel(bd, cfg))
	var d hcl.Diagnostics
	cfg.Log, d = r.Log.build(bd)
	add(d)
	cfg.Vault, d = r.Vault.build(bd)
	add(d)
	cfg.MITM, d = r.MITM.build(bd)
	add(d)
	cfg.UPS, d = r.UPS.build(bd)
	add(d)
	cfg.Reminders, d = r.Reminders.build(bd)
	add(d)
	cfg.Limits, d = r.Limits.build(bd)
	add(d)

	rewrites := map[string]*rawRewrite{}
	for _, rr := range r.Rewrites {
		rw, d := rr.build(bd)
		add(d)
		if prev, dup := rewrites[rr.Name]; dup {
			add(duplicate("rewrite", rr.Name, rr.DeclRange, prev.DeclRange))
			continue
		}
		rewrites[rr.Name] = rr
		cfg.Rewrites = append(cfg.Rewrites, rw)
	}

	carriers := map[string]*rawCarrier{}
	var defaultCarrier *rawCarrier
	type claim struct {
		carrier string
		account *rawShipperAccount
	}
	numbers := map[string]claim{}
	clientIDs := map[string]string{} // OAuth client id -> carrier
	for _, rc := range r.Carriers {
		c, d := rc.build(bd)
		add(d)
		if prev, dup := carriers[rc.Name]; dup {
			add(duplicate("carrier", rc.Name, rc.DeclRange, prev.DeclRange))
			continue
		}
		carriers[rc.Name] = rc
		b := bd.block(rc.Body, rc.DeclRange)
		if rc.Default {
			if defaultCarrier != nil {
				add(hcl.Diagnostics{b.errorf("default", "Two default carriers",
					"Carrier %q is already the default (%s); only one carrier may have default = true.",
					defaultCarrier.Name, position(&defaultCarrier.DeclRange))})
			} else {
				defaultCarrier = rc
			}
		}
		for i, a := range c.ShipperAccounts {
			if a.Number == "" {
				continue
			}
			ra := rc.ShipperAccounts[i]
			if prev, taken := numbers[a.Number]; taken {
				ab := bd.block(ra.Body, ra.DeclRange)
				add(hcl.Diagnostics{ab.errorf("number", "Shipper number claimed twice",
					"Shipper number %s is already claimed by shipper_account %q of carrier %q (%s); a request naming it must resolve to one carrier.",
					a.Number, prev.account.Name, prev.carrier, position(&prev.account.DeclRange))})
				continue
			}
			numbers[a.Number] = claim{carrier: rc.Name, account: ra}
		}
		for _, id := range c.ClientIDs {
			if prev, taken := clientIDs[id]; taken && prev != rc.Name {
				add(hcl.Diagnostics{b.errorf("client_ids", "Client id claimed twice",
					"OAuth client id %q is already in client_ids of carrier %q; a client's token must resolve to one carrier.", id, prev)})
				continue
			}
			clientIDs[id] = rc.Name
		}
		cfg.Carriers = append(cfg.Carriers, c)
	}

	clients := map[string]*rawClient{}
	for _, rc := range r.Clients {
		c, d := rc.build(bd)
		add(d)
		if prev, dup := clients[rc.Name]; dup {
			add(duplicate("client", rc.Name, rc.DeclRange, prev.DeclRange))
			continue
		}
		clients[rc.Name] = rc
		if rc.Carrier != "" && carriers[rc.Carrier] == nil {
			b := bd.block(rc.Body, rc.DeclRange)
			add(hcl.Diagnostics{b.errorf("carrier", "Unknown carrier",
				"Client %q uses carrier %q, but no carrier block has that name.", rc.Name, rc.Carrier)})
		}
		cfg.Clients = append(cfg.Clients, c)
	}

	cfg.Notify, d = buildNotify(bd, r.Notify, cfg.Carriers)
	add(d)
	cfg.Console, d = r.Console.build(bd, cfg)
	add(d)

	if len(r.Clients) == 0 && !isLoopbackListen(cfg.Listen) {
		b := bd.block(r.Body, hcl.Range{})
		add(hcl.Diagnostics{{
			Severity: hcl.DiagWarning,
			Summary:  "proxy is reachable from the network without proxy authentication",
			Detail: "listen is not a loopback address and there is no client block, so anyone who can reach " + cfg.Listen +
				" can spend this proxy's UPS tokens. Add client blocks (proxy authentication), restrict allow_cidrs, or listen on 127.0.0.1.",
			Subject: b.valueRange("listen"),
			Context: b.attrRange("listen"),
		}})
	}
	return cfg, diags
}

// duplicate is the error for a second block of kind with an existing name.
func duplicate(kind, name string, at, first hcl.Range) hcl.Diagnostics {
	return hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  "Duplicate " + kind + " name " + strconv.Quote(name),
		Detail:   "A " + kind + " named " + strconv.Quote(name) + " was already defined at " + position(&first) + "; names must be unique.",
		Subject:  at.Ptr(),
	}}
}
