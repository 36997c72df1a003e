// Package smtptest runs a real SMTP server (github.com/emersion/go-smtp)
// in-process for tests: STARTTLS or implicit TLS with a freshly minted
// certificate for 127.0.0.1, AUTH PLAIN with one user, and every accepted
// message kept for assertions.
package smtptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configure a Server.
type Options struct {
	// Username and Password: AUTH PLAIN must succeed with them before MAIL
	// is accepted. Empty: no authentication.
	Username, Password string
	// Implicit: TLS from the first byte instead of STARTTLS.
	Implicit bool
	// FailFirst answers the first n DATA commands with a 451.
	FailFirst int
}

// Message is one accepted mail.
type Message struct {
	From string
	To   []string
	Data string
	// TLS and User tell how it arrived.
	TLS  bool
	User string
}

// Server is a running test SMTP server.
type Server struct {
	Host string
	Port int
	// CAPEM is the PEM certificate clients must trust.
	CAPEM []byte
	// CAFile is CAPEM written to a file in the test's temp directory.
	CAFile string

	opts     Options
	mu       sync.Mutex
	messages []Message
	authOK   int
	authBad  int
	failLeft int
}

// Start runs a server until the test ends.
func Start(t *testing.T, o Options) *Server {
	t.Helper()
	cert, certPEM := mintCert(t)
	s := &Server{Host: "127.0.0.1", CAPEM: certPEM, opts: o, failLeft: o.FailFirst}
	s.CAFile = t.TempDir() + "/smtp-ca.pem"
	if err := writeFile(s.CAFile, certPEM); err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, c: c}, nil
	}))
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = discardLogger{}
	var ln net.Listener
	var err error
	if o.Implicit {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", srv.TLSConfig)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	s.Port = ln.Addr().(*net.TCPAddr).Port
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Messages returns the accepted messages so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Auths returns the successful and failed AUTH attempts.
func (s *Server) Auths() (ok, bad int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authOK, s.authBad
}

type session struct {
	s    *Server
	c    *smtp.Conn
	user string
	msg  Message
}

func (x *session) AuthMechanisms() []string {
	if x.s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		x.s.mu.Lock()
		defer x.s.mu.Unlock()
		if username != x.s.opts.Username || password != x.s.opts.Password {
			x.s.authBad++
			return errors.New("invalid credentials")
		}
		x.s.authOK++
		x.user = username
		return nil
	}), nil
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if x.s.opts.Username != "" && x.user == "" {
		return smtp.ErrAuthRequired
	}
	x.msg = Message{From: from}
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.msg.To = append(x.msg.To, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	if x.s.failLeft > 0 {
		x.s.failLeft--
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	_, x.msg.TLS = x.c.TLSConnectionState()
	x.msg.User = x.user
	x.msg.Data = string(b)
	x.s.messages = append(x.s.messages, x.msg)
	return nil
}

func (x *session) Reset()        { x.msg = Message{} }
func (x *session) Logout() error { return nil }

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

// mintCert makes a self-signed certificate for 127.0.0.1 and localhost.
func mintCert(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return cert, certPEM
}

// CertPool is a pool trusting the server's certificate.
func (s *Server) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(s.CAPEM)
	return p
}

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }
