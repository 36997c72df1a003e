package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	mail "github.com/wneessen/go-mail"
)

// TLS modes of an email channel.
const (
	// TLSStartTLS: plain connection upgraded with STARTTLS, which the
	// server must offer (usually port 587).
	TLSStartTLS = "starttls"
	// TLSImplicit: TLS from the first byte (usually port 465).
	TLSImplicit = "implicit"
	// TLSNone: no encryption, for a relay on the same host; no password.
	TLSNone = "none"
)

// EmailOptions configure an email channel.
type EmailOptions struct {
	Host string
	Port int
	// TLS is TLSStartTLS (default), TLSImplicit or TLSNone.
	TLS string
	// RootCAs verify the server's certificate; nil means the system's.
	RootCAs *x509.CertPool
	// Username and Password, when set, authenticate with the strongest
	// mechanism the server offers.
	Username, Password string
	From               string
	To                 []string
	// Timeout bounds one delivery attempt. Default 30s.
	Timeout time.Duration
}

// Email sends events as plain-text mail through an SMTP server. It uses
// github.com/wneessen/go-mail rather than net/smtp: net/smtp is frozen, has
// no timeouts or contexts for a whole conversation, no implicit-TLS dialing
// and no message composition (encoded headers, Date, Message-ID).
type Email struct {
	name string
	opts EmailOptions
}

// NewEmail checks the options and returns the channel.
func NewEmail(name string, o EmailOptions) (*Email, error) {
	switch {
	case o.Host == "":
		return nil, fmt.Errorf("email channel %q: no host", name)
	case o.From == "":
		return nil, fmt.Errorf("email channel %q: no from address", name)
	case len(o.To) == 0:
		return nil, fmt.Errorf("email channel %q: no recipients", name)
	case o.TLS == TLSNone && o.Password != "":
		return nil, fmt.Errorf("email channel %q: a password is never sent without TLS", name)
	}
	if o.TLS == "" {
		o.TLS = TLSStartTLS
	}
	if o.Port == 0 {
		o.Port = map[string]int{TLSStartTLS: 587, TLSImplicit: 465, TLSNone: 25}[o.TLS]
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	return &Email{name: name, opts: o}, nil
}

// Name is the channel's name.
func (m *Email) Name() string { return m.name }

// Send delivers one event to every recipient.
func (m *Email) Send(ctx context.Context, ev Event) error {
	o := m.opts
	msg := mail.NewMsg()
	if err := msg.From(o.From); err != nil {
		return fmt.Errorf("from address: %w", err)
	}
	if err := msg.To(o.To...); err != nil {
		return fmt.Errorf("to address: %w", err)
	}
	msg.Subject(ev.Subject())
	msg.SetDateWithValue(ev.At)
	msg.SetMessageID()
	msg.SetGenHeader("X-Upsproxy-Event", string(ev.Event))
	msg.SetBodyString(mail.TypeTextPlain, ev.Body())

	opts := []mail.Option{
		mail.WithPort(o.Port),
		mail.WithTimeout(o.Timeout),
		mail.WithTLSConfig(&tls.Config{ServerName: o.Host, RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12}),
	}
	switch o.TLS {
	case TLSImplicit:
		opts = append(opts, mail.WithSSL())
	case TLSNone:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if o.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(o.Username), mail.WithPassword(o.Password))
	}
	c, err := mail.NewClient(o.Host, opts...)
	if err != nil {
		return fmt.Errorf("smtp client for %s:%d: %w", o.Host, o.Port, err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("smtp %s:%d: %w", o.Host, o.Port, redactSMTP(err))
	}
	return nil
}

// redactSMTP keeps the error's text but drops wrapped values that a log
// encoder could expand (go-mail's SendError carries the message).
func redactSMTP(err error) error {
	var se *mail.SendError
	if errors.As(err, &se) {
		return errors.New(se.Error())
	}
	return errors.New(err.Error())
}
