package config

import (
	"time"

	"github.com/hashicorp/hcl/v2"
)

// MITM is the CA the proxy mints leaf certificates from when clients CONNECT
// to a UPS host. Both paths are set (relative ones resolved against the
// configuration file's directory); the files are read by the caller.
type MITM struct {
	CACert, CAKey string
	// SessionTickets lets clients that keep a TLS session cache resume
	// their session with the proxy instead of a full handshake, on any
	// replica: the ticket keys live in Vault.
	SessionTickets bool
	// TicketRotation is how often a new ticket key is made; a ticket stays
	// valid for up to two periods.
	TicketRotation time.Duration
}

// Bounds and default of mitm.session_ticket_rotation.
const (
	DefaultTicketRotation = time.Hour
	minTicketRotation     = time.Minute
	maxTicketRotation     = 24 * time.Hour
)

type rawMITM struct {
	CACert    *string   `hcl:"ca_cert,optional"`
	CAKey     *string   `hcl:"ca_key,optional"`
	Tickets   *bool     `hcl:"session_tickets,optional"`
	Rotation  *string   `hcl:"session_ticket_rotation,optional"`
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
	out := &MITM{CACert: bd.path(*r.CACert), CAKey: bd.path(*r.CAKey), SessionTickets: true}
	if b.given("session_tickets", r.Tickets != nil) {
		out.SessionTickets = *r.Tickets
	}
	out.TicketRotation = b.duration(&diags, "session_ticket_rotation", r.Rotation, DefaultTicketRotation)
	if r.Rotation != nil && !diags.HasErrors() && (out.TicketRotation < minTicketRotation || out.TicketRotation > maxTicketRotation) {
		diags = append(diags, b.errorf("session_ticket_rotation", "Invalid session_ticket_rotation",
			"session_ticket_rotation must be between %s and %s, not %s.", minTicketRotation, maxTicketRotation, out.TicketRotation))
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return out, nil
}
