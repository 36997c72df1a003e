package config

import (
	"net/mail"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Notify is a channel that reminders are sent to: exactly one of Email and
// Webhook is set.
type Notify struct {
	// Name identifies the channel in `upsproxy notify test --channel`,
	// logs and metrics.
	Name string
	// Events it gets; empty means all (NotifyEvents).
	Events []string
	// Carriers it hears about; empty means all.
	Carriers  []string
	Email     *NotifyEmail
	Webhook   *NotifyWebhook
	DeclRange hcl.Range
}

// NotifyEvents are the events a notify block may select.
var NotifyEvents = []string{"expiring", "expired", "rejected", "failing", "renewed"}

// TLS modes of an email channel.
const (
	NotifyTLSStartTLS = "starttls"
	NotifyTLSImplicit = "implicit"
	NotifyTLSNone     = "none"
)

// NotifyEmail sends mail through an SMTP server.
type NotifyEmail struct {
	Host string
	// Port defaults by TLS mode: 587 starttls, 465 implicit, 25 none.
	Port int
	TLS  string
	// CAFile is a PEM bundle trusted for the server's certificate (an
	// internal relay); empty means the system's roots.
	CAFile   string
	Username string
	// Password may be a Vault reference the caller resolves.
	Password Secret
	From     string
	To       []string
}

// NotifyWebhook posts JSON to a URL.
type NotifyWebhook struct {
	// URL is a Secret: chat webhooks carry their credential in the URL.
	URL Secret
	// Headers' values are secrets too (an Authorization header).
	Headers map[string]Secret
}

type rawNotify struct {
	Name      string            `hcl:"name,label"`
	Events    []string          `hcl:"events,optional"`
	Carriers  []string          `hcl:"carriers,optional"`
	Email     *rawNotifyEmail   `hcl:"email,block"`
	Webhook   *rawNotifyWebhook `hcl:"webhook,block"`
	Body      hcl.Body          `hcl:",body"`
	DeclRange hcl.Range         `hcl:",def_range"`
}

type rawNotifyEmail struct {
	Host      *string        `hcl:"host,optional"`
	Port      *int           `hcl:"port,optional"`
	TLS       *string        `hcl:"tls,optional"`
	CAFile    *string        `hcl:"ca_file,optional"`
	Username  string         `hcl:"username,optional"`
	Password  hcl.Expression `hcl:"password,optional"`
	From      *string        `hcl:"from,optional"`
	To        []string       `hcl:"to,optional"`
	Body      hcl.Body       `hcl:",body"`
	DeclRange hcl.Range      `hcl:",def_range"`
}

type rawNotifyWebhook struct {
	URL       hcl.Expression `hcl:"url,optional"`
	Headers   hcl.Expression `hcl:"headers,optional"`
	Body      hcl.Body       `hcl:",body"`
	DeclRange hcl.Range      `hcl:",def_range"`
}

// buildNotify validates the notify blocks against the carriers.
func buildNotify(bd *builder, raws []*rawNotify, carriers []Carrier) ([]Notify, hcl.Diagnostics) {
	var out []Notify
	var diags hcl.Diagnostics
	seen := map[string]*rawNotify{}
	for _, r := range raws {
		n, d := r.build(bd, carriers)
		diags = append(diags, d...)
		if prev, dup := seen[r.Name]; dup {
			diags = append(diags, duplicate("notify", r.Name, r.DeclRange, prev.DeclRange)...)
			continue
		}
		seen[r.Name] = r
		out = append(out, n)
	}
	return out, diags
}

func (r *rawNotify) build(bd *builder, carriers []Carrier) (Notify, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	b := bd.block(r.Body, r.DeclRange)
	out := Notify{Name: r.Name, DeclRange: r.DeclRange}
	if !validName(r.Name) {
		diags = append(diags, b.blockErrorf("Invalid notify name",
			"Channel names appear in commands, logs and metrics: use letters, digits, '-', '_' and '.', starting with a letter or digit; %q does not fit.", r.Name))
	}
	for i, ev := range r.Events {
		if !slices.Contains(NotifyEvents, ev) {
			d := b.errorf("events", "Unknown event", "events may list %s; %q is none of them.", strings.Join(NotifyEvents, ", "), ev)
			d.Subject = b.elemRange("events", i)
			diags = append(diags, d)
			continue
		}
		out.Events = append(out.Events, ev)
	}
	for i, name := range r.Carriers {
		if !slices.ContainsFunc(carriers, func(c Carrier) bool { return c.Name == name }) {
			d := b.errorf("carriers", "Unknown carrier", "Notify %q lists carrier %q, but no carrier block has that name.", r.Name, name)
			d.Subject = b.elemRange("carriers", i)
			diags = append(diags, d)
			continue
		}
		out.Carriers = append(out.Carriers, name)
	}
	switch {
	case r.Email == nil && r.Webhook == nil:
		diags = append(diags, b.blockErrorf("Empty notify block",
			"Notify %q needs an email block or a webhook block saying where messages go.", r.Name))
	case r.Email != nil && r.Webhook != nil:
		diags = append(diags, b.blockErrorf("Two channels in one notify block",
			"Notify %q has both an email and a webhook block; give each its own notify block (and name).", r.Name))
	case r.Email != nil:
		var d hcl.Diagnostics
		out.Email, d = r.Email.build(bd)
		diags = append(diags, d...)
	default:
		var d hcl.Diagnostics
		out.Webhook, d = r.Webhook.build(bd)
		diags = append(diags, d...)
	}
	return out, diags
}

func (r *rawNotifyEmail) build(bd *builder) (*NotifyEmail, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	b := bd.block(r.Body, r.DeclRange)
	out := &NotifyEmail{TLS: NotifyTLSStartTLS, Username: r.Username}
	switch {
	case b.absent("host", r.Host != nil):
		diags = append(diags, b.missing("host", "the SMTP server's host name"))
	case b.given("host", r.Host != nil):
		if h := strings.TrimSpace(*r.Host); h == "" || strings.ContainsAny(h, " /:") {
			diags = append(diags, b.errorf("host", "Invalid host", "host must be a host name or address without a port (set port), not %q.", *r.Host))
		} else {
			out.Host = h
		}
	}
	if b.given("tls", r.TLS != nil) {
		switch *r.TLS {
		case NotifyTLSStartTLS, NotifyTLSImplicit, NotifyTLSNone:
			out.TLS = *r.TLS
		default:
			diags = append(diags, b.errorf("tls", "Invalid tls", "tls must be %q (port 587), %q (port 465) or %q (a relay on this host), not %q.",
				NotifyTLSStartTLS, NotifyTLSImplicit, NotifyTLSNone, *r.TLS))
		}
	}
	out.Port = map[string]int{NotifyTLSStartTLS: 587, NotifyTLSImplicit: 465, NotifyTLSNone: 25}[out.TLS]
	if b.given("port", r.Port != nil) {
		if *r.Port < 1 || *r.Port > 65535 {
			diags = append(diags, b.errorf("port", "Invalid port", "port must be between 1 and 65535, not %d.", *r.Port))
		} else {
			out.Port = *r.Port
		}
	}
	if b.given("ca_file", r.CAFile != nil) && *r.CAFile != "" {
		out.CAFile = bd.path(*r.CAFile)
	}
	pw, pdiags := bd.secret(b, "password", r.Password)
	for _, d := range pdiags {
		if d.Summary == literalSecretWarning {
			d.Summary = "password is a literal in the config file; use env(), file() or vault()"
			d.Detail = "Anyone who can read this file or its backups can send mail as upsproxy. Move the password to an environment variable, a file readable only by upsproxy, or Vault."
		}
	}
	diags = append(diags, pdiags...)
	out.Password = pw
	if pw.IsSet() && r.Username == "" {
		diags = append(diags, b.errorf("password", "Password without username", "password is set but username is not; set both, or neither for a server without authentication."))
	}
	if pw.IsSet() && out.TLS == NotifyTLSNone {
		diags = append(diags, b.errorf("password", "Password without TLS", "tls = \"none\" would send the password in clear; use \"starttls\" or \"implicit\"."))
	}
	switch {
	case b.absent("from", r.From != nil):
		diags = append(diags, b.missing("from", "the sender address, like \"upsproxy <upsproxy@example.com>\""))
	case b.given("from", r.From != nil):
		if _, err := mail.ParseAddress(*r.From); err != nil {
			diags = append(diags, b.errorf("from", "Invalid from", "from must be an email address, like \"upsproxy <upsproxy@example.com>\": %s.", err))
		} else {
			out.From = *r.From
		}
	}
	if len(r.To) == 0 && !b.failed("to") {
		diags = append(diags, b.missing("to", "a list of one or more recipient addresses"))
	}
	for i, to := range r.To {
		if _, err := mail.ParseAddress(to); err != nil {
			d := b.errorf("to", "Invalid recipient", "%q is not an email address: %s.", to, err)
			d.Subject = b.elemRange("to", i)
			diags = append(diags, d)
			continue
		}
		out.To = append(out.To, to)
	}
	return out, diags
}

func (r *rawNotifyWebhook) build(bd *builder) (*NotifyWebhook, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	b := bd.block(r.Body, r.DeclRange)
	out := &NotifyWebhook{}
	u, udiags := bd.secret(b, "url", r.URL)
	for _, d := range udiags {
		if d.Severity == hcl.DiagWarning && d.Summary == literalSecretWarning {
			continue // many webhook URLs are not secret; those that are can use env()
		}
		diags = append(diags, d)
	}
	switch {
	case udiags.HasErrors():
	case !u.IsSet():
		diags = append(diags, b.missing("url", "the URL the messages are posted to"))
	case u.Value != "":
		// The URL may carry the credential: the diagnostic never shows it.
		if _, why := httpURL(u.Value); why != "" {
			diags = append(diags, b.errorf("url", "Invalid url", "url must be an absolute http(s) URL: %s.", why))
		}
	}
	out.URL = u
	if r.Headers != nil && !b.failed("headers") {
		v, hdiags := r.Headers.Value(bd.ctx)
		diags = append(diags, hdiags...)
		if !hdiags.HasErrors() && !v.IsNull() {
			if !v.Type().IsObjectType() && !v.Type().IsMapType() {
				diags = append(diags, b.errorf("headers", "Invalid headers", "headers must be an object like { Authorization = env(\"HOOK_TOKEN\") }."))
			} else {
				out.Headers = map[string]Secret{}
				for it := v.ElementIterator(); it.Next(); {
					k, hv := it.Element()
					name := k.AsString()
					if !validHeaderName(name) {
						diags = append(diags, b.errorf("headers", "Invalid header name", "%q is not an HTTP header name.", name))
						continue
					}
					if hv.IsNull() || !hv.IsKnown() || !hv.Type().Equals(cty.String) || strings.ContainsAny(hv.AsString(), "\r\n") {
						diags = append(diags, b.errorf("headers", "Invalid header value",
							"The value of header %s must be a one-line string: use env(\"NAME\") or file(\"path\") for secrets.", name))
						continue
					}
					out.Headers[name] = Secret{Value: hv.AsString()}
				}
			}
		}
	}
	return out, diags
}

// validHeaderName accepts RFC 9110 tokens.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(isAlnumByte(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
