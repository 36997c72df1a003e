package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// EgressProxy is a forward proxy (a corporate squid, say) that every
// upstream connection is tunnelled through with CONNECT. TLS to UPS runs
// inside the tunnel, verified end to end as without it.
type EgressProxy struct {
	// URL is http://host:port, or https://host:port for a proxy that is
	// itself reached over TLS. User info in it is ignored: see Username.
	URL *url.URL
	// Username and Password, when Username is set, are sent to the egress
	// proxy as Proxy-Authorization Basic on every CONNECT.
	Username, Password string
}

// String shows the egress proxy without its credentials.
func (e EgressProxy) String() string {
	if e.URL == nil {
		return "<none>"
	}
	return e.URL.Scheme + "://" + e.URL.Host
}

// GoString keeps %#v from printing the password.
func (e EgressProxy) GoString() string { return "proxy.EgressProxy(" + e.String() + ")" }

// EgressError is a failure to open a tunnel to an upstream host through the
// egress proxy. Its text names the proxy and the target, never credentials.
type EgressError struct {
	// Proxy is the egress proxy's host:port; Target the tunnel's host:port.
	Proxy, Target string
	// Status is the proxy's answer to CONNECT, 0 when there was none.
	Status int
	// Err is the cause when there was no answer (dial, TLS, read).
	Err error
	// hint says what to check, for the operator.
	hint string
}

func (e *EgressError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "egress proxy %s: CONNECT %s: ", e.Proxy, e.Target)
	if e.Status != 0 {
		fmt.Fprintf(&b, "answered %d %s", e.Status, http.StatusText(e.Status))
	} else {
		b.WriteString(e.Err.Error())
	}
	if e.hint != "" {
		b.WriteString(" (" + e.hint + ")")
	}
	return b.String()
}

func (e *EgressError) Unwrap() error { return e.Err }

// egressConnectTimeout bounds the CONNECT exchange (and the TLS handshake
// with an https:// egress proxy) after the TCP connection is up.
const egressConnectTimeout = 10 * time.Second

// egressDialer opens a CONNECT tunnel per upstream connection. It is the
// transport's DialContext, so the cost is paid per new connection only: a
// request on a pooled connection never sees it. (net/http's own
// Transport.Proxy would recompute the proxy URL string for every request's
// connection-pool key.)
type egressDialer struct {
	addr string      // host:port of the egress proxy
	tls  *tls.Config // non-nil for an https:// egress proxy
	// authLine is the rendered "Proxy-Authorization: Basic ...\r\n" line,
	// or "".
	authLine string
	hasAuth  bool
	dialer   *net.Dialer
}

func newEgressDialer(e *EgressProxy, roots *tls.Config, dialer *net.Dialer) (*egressDialer, error) {
	u := e.URL
	if u == nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.Port() == "" {
		return nil, fmt.Errorf("egress proxy %s: want http://host:port or https://host:port", e)
	}
	d := &egressDialer{addr: net.JoinHostPort(u.Hostname(), u.Port()), dialer: dialer}
	if u.Scheme == "https" {
		d.tls = roots.Clone()
		d.tls.ServerName = u.Hostname()
		d.tls.NextProtos = nil
	}
	if e.Username != "" {
		cred := base64.StdEncoding.EncodeToString([]byte(e.Username + ":" + e.Password))
		d.authLine = "Proxy-Authorization: Basic " + cred + "\r\n"
		d.hasAuth = true
	}
	return d, nil
}

// DialContext connects to target (host:port) through the egress proxy.
func (d *egressDialer) DialContext(ctx context.Context, _, target string) (net.Conn, error) {
	conn, err := d.dialer.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, &EgressError{Proxy: d.addr, Target: target, Err: err}
	}
	// The transport hands the request's context, which may have no
	// deadline: bound the exchange, and end it early when ctx ends.
	deadline := time.Now().Add(egressConnectTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	tunnel, err := d.connect(ctx, conn, target)
	if !stop() {
		// ctx ended during the exchange: its error is the cause.
		conn.Close()
		return nil, &EgressError{Proxy: d.addr, Target: target, Err: ctx.Err()}
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return tunnel, nil
}

// DialTLSContext is DialContext followed by the TLS handshake with target,
// verified with upstream: the transport's own handshake, done here so that
// a failed verification says it happened inside the egress proxy's tunnel
// (the usual cause: a proxy that inspects TLS).
func (d *egressDialer) DialTLSContext(ctx context.Context, network, target string, upstream *tls.Config) (net.Conn, error) {
	conn, err := d.DialContext(ctx, network, target)
	if err != nil {
		return nil, err
	}
	conf := upstream.Clone()
	if conf.ServerName == "" {
		host, _, err := net.SplitHostPort(target)
		if err != nil {
			host = target
		}
		conf.ServerName = host
	}
	hctx, cancel := context.WithTimeout(ctx, tlsHandshakeTimeout)
	defer cancel()
	tc := tls.Client(conn, conf)
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		e := &EgressError{Proxy: d.addr, Target: target, Err: fmt.Errorf("TLS with %s inside the tunnel: %w", conf.ServerName, err)}
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) {
			e.hint = "does the egress proxy inspect TLS? upsproxy verifies UPS's certificate end to end: exempt the UPS hosts from inspection"
		}
		return nil, e
	}
	return tc, nil
}

// connect sends the CONNECT request over conn and reads the answer.
func (d *egressDialer) connect(ctx context.Context, conn net.Conn, target string) (net.Conn, error) {
	fail := func(err error) error { return &EgressError{Proxy: d.addr, Target: target, Err: err} }
	if d.tls != nil {
		tc := tls.Client(conn, d.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fail(fmt.Errorf("TLS with the egress proxy: %w", err))
		}
		conn = tc
	}
	if _, err := conn.Write([]byte("CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n" + d.authLine + "\r\n")); err != nil {
		return nil, fail(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return nil, fail(fmt.Errorf("reading the answer: %w", err))
	}
	// A CONNECT answer has no body (RFC 9110 9.3.6); a refusal may have one,
	// which nobody reads: the connection is closed.
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &EgressError{Proxy: d.addr, Target: target, Status: resp.StatusCode}
		switch {
		case resp.StatusCode == http.StatusProxyAuthRequired && d.hasAuth:
			e.hint = "check the user and password of ups.egress_proxy"
		case resp.StatusCode == http.StatusProxyAuthRequired:
			e.hint = "the proxy wants credentials: give user:password@ in ups.egress_proxy"
		case resp.StatusCode == http.StatusForbidden:
			e.hint = "the proxy's policy does not allow this host or port"
		}
		return nil, e
	}
	if br.Buffered() > 0 {
		// Bytes after the answer belong to the tunnel (the upstream
		// never speaks first, but a proxy may pipeline).
		return &bufferedConn{Conn: conn, r: br}, nil
	}
	return conn, nil
}

// bufferedConn is a conn whose first bytes were already read into r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
