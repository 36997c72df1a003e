package proxy

import (
	"crypto/tls"
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// HTTPS forward proxying: `CONNECT onlinetools.ups.com:443`, then TLS with
// a leaf from our CA, then HTTP/1.1 requests, each run through forward by
// the same connection loop as plain requests (conn.go), with the same
// deadlines and header limit. Only HTTP/1.1 is offered in ALPN: an h2
// client falls back to it.

// tunnel is what requests decrypted from a CONNECT tunnel inherit from it:
// the host the client addressed and, when proxy auth is on, the
// credentials it authenticated the CONNECT with. Each request in the
// tunnel is checked against the configuration current when it arrives.
type tunnel struct {
	target *target
	auth   string
}

// connect decides a CONNECT: MITM for a UPS host on port 443 when a CA is
// configured and the client authenticated (when required), an envelope
// refusal (with nothing dialled, connection closed) otherwise. It reports
// whether the connection goes on, as a tunnel.
func (c *clientConn) connect(req *http.Request) bool {
	authority := req.URL.Host
	tun, err := c.p.connectTunnel(req, authority)
	if err != nil {
		x := c.p.newExchange(req)
		x.authority = authority
		resp := x.fail(req, err)
		defer resp.Body.Close()
		return c.write(req, resp, false)
	}
	return c.startTunnel(authority, tun)
}

// connectTunnel checks a CONNECT request; nil error means MITM it.
func (p *Proxy) connectTunnel(r *http.Request, authority string) (*tunnel, error) {
	t := connectTarget(authority)
	switch {
	case t == nil:
		return nil, errHostNotAllowed
	case p.ca == nil:
		return nil, errMITMNotConfigured
	}
	rt := p.routing.Load()
	if rt.clients == nil {
		return &tunnel{target: t}, nil
	}
	auth := r.Header.Get("Proxy-Authorization")
	if _, err := rt.authenticate(r.Context(), auth); err != nil {
		return nil, err
	}
	return &tunnel{target: t, auth: auth}, nil
}

// mitmTLSConfig is the server side of the client's TLS inside a CONNECT
// tunnel: a leaf for the UPS host from our CA on the current template
// (HTTP/1.1 only: the connection loop speaks nothing else; the session
// ticket keys: tickets.go).
func (p *Proxy) mitmTLSConfig(authority string) (*tls.Config, error) {
	leaf, err := p.ca.LeafFor(hostname(authority))
	if err != nil {
		p.log.Error("mint MITM certificate", zap.String("host", authority), zap.Error(err))
		return nil, err
	}
	c := p.mitmConf.Load().Clone()
	c.Certificates = []tls.Certificate{*leaf}
	return c, nil
}

// startTunnel answers an accepted CONNECT with 200, does the client's TLS
// handshake with a leaf for authority, and makes the connection's loop go
// on with the requests inside; false ends the connection.
func (c *clientConn) startTunnel(authority string, tun *tunnel) bool {
	lim := &c.p.limits
	// From the 200 to the end of the handshake: a tunnel that never starts
	// TLS is closed then.
	_ = c.raw.SetDeadline(time.Now().Add(lim.TLSHandshakeTimeout))
	if _, err := io.WriteString(c.raw, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return false
	}
	// What the client sent right after the CONNECT (its ClientHello) is
	// already in the reader.
	src := cloneEarly(c.raw, c.br)
	cfg, err := c.p.mitmTLSConfig(authority)
	if err != nil {
		return false
	}
	tc := tls.Server(src, cfg)
	if err := tc.Handshake(); err != nil {
		// TLS errors carry no request data; their text is the best hint
		// when a client does not trust the proxy's CA.
		c.p.log.Warn("MITM TLS handshake with client failed", zap.String("host", authority), zap.Error(err))
		return false
	}
	_ = c.raw.SetWriteDeadline(time.Time{})
	c.tc, c.conn, c.tun, c.authority = tc, tc, tun, authority
	c.lr.r = tc
	c.lr.pre = nil
	c.br.Reset(&c.lr)
	c.lastMethod = ""
	// The first request inside gets ReadHeaderTimeout from now, as a new
	// connection does.
	c.first = true
	return true
}
