package config

import "github.com/hashicorp/hcl/v2"

// MITM is the CA the proxy mints leaf certificates from when clients CONNECT
// to a UPS host. Both paths are set (relative ones resolved against the
// configuration file's directory); the files are read by the caller.
type MITM struct {
	CACert, CAKey string
}

type rawMITM struct {
	CACert    *string   `hcl:"ca_cert,optional"`
	CAKey     *string   `hcl:"ca_key,optional"`
	Body      hcl.Body  `hcl:",body"`
	DeclRange hcl.Range `hcl:",def_range"`
}

func (r *rawMITM) build(bd *builder) (*MITM, hcl.Diagnostics) {
	if r == nil {
		return nil, nil
	}
	b := bd.block(r.Body, r.DeclRange)
	if b.failed("ca_cert") || b.failed("ca_key") {
		return nil, nil
	}
	const hint = "the CA needs both its certificate and its key (create them with: upsproxy ca init --out DIR)"
	switch {
	case r.CACert == nil && r.CAKey == nil:
		return nil, hcl.Diagnostics{b.blockErrorf("Incomplete mitm block",
			"A mitm block needs ca_cert and ca_key: %s. Remove the block to disable CONNECT interception.", hint)}
	case r.CACert == nil:
		return nil, hcl.Diagnostics{b.errorf("ca_key", "Incomplete mitm block", "ca_key is set but ca_cert is not: %s.", hint)}
	case r.CAKey == nil:
		return nil, hcl.Diagnostics{b.errorf("ca_cert", "Incomplete mitm block", "ca_cert is set but ca_key is not: %s.", hint)}
	}
	var diags hcl.Diagnostics
	if *r.CACert == "" {
		diags = append(diags, b.errorf("ca_cert", "Invalid mitm block", "ca_cert must not be empty."))
	}
	if *r.CAKey == "" {
		diags = append(diags, b.errorf("ca_key", "Invalid mitm block", "ca_key must not be empty."))
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return &MITM{CACert: bd.path(*r.CACert), CAKey: bd.path(*r.CAKey)}, nil
}
