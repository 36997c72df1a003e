package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"html"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// loopbackTarget is a redirect URI that points back at this machine, so
// the login can catch UPS's redirect itself instead of asking the admin to
// paste it.
type loopbackTarget struct {
	uri    string // as configured, for messages
	scheme string // http or https
	host   string // 127.0.0.1, ::1, localhost... (no brackets)
	port   string // explicit, or the scheme's default
	path   string // the callback path; "/" when the URI has none
}

// parseLoopback reports whether redirectURI is an http(s) URL on a
// loopback host (a loopback IP, or localhost) and where to listen for it.
func parseLoopback(redirectURI string) (loopbackTarget, bool) {
	u, err := url.Parse(redirectURI)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return loopbackTarget{}, false
	}
	t := loopbackTarget{uri: redirectURI, scheme: strings.ToLower(u.Scheme), host: strings.ToLower(u.Hostname()), port: u.Port(), path: u.Path}
	switch t.scheme {
	case "https":
		if t.port == "" {
			t.port = "443"
		}
	case "http":
		if t.port == "" {
			t.port = "80"
		}
	default:
		return loopbackTarget{}, false
	}
	if n, err := strconv.Atoi(t.port); err != nil || n < 1 || n > 65535 {
		return loopbackTarget{}, false // no browser can be sent there
	}
	if t.path == "" {
		t.path = "/"
	}
	t.host = strings.TrimSuffix(t.host, ".")
	if t.host == "localhost" {
		return t, true
	}
	ip := net.ParseIP(t.host)
	return t, ip != nil && ip.IsLoopback()
}

// listenAddrs are the addresses to bind. "localhost" may resolve to either
// loopback address, and browsers differ in which they try first, so both
// are bound (the IPv6 one when available).
func (t loopbackTarget) listenAddrs() []string {
	if t.host == "localhost" {
		return []string{net.JoinHostPort("127.0.0.1", t.port), net.JoinHostPort("::1", t.port)}
	}
	return []string{net.JoinHostPort(t.host, t.port)}
}

// callback is what the browser brought back: a code, or why there is none.
type callback struct {
	code string
	err  error
}

// redirectCatcher is the short-lived listener that receives UPS's redirect
// to a loopback redirect URI. It takes exactly one redirect carrying this
// login's state, then tells the browser how the login ended.
type redirectCatcher struct {
	target loopbackTarget
	state  string
	srv    *http.Server
	lns    []net.Listener
	served sync.WaitGroup

	got     chan callback // the one decisive redirect, to the login
	taken   atomic.Bool   // set by the first decisive redirect
	outcome chan error    // how the exchange ended, to the waiting browser
	done    chan struct{} // closed by close: handlers stop waiting
	closing sync.Once
}

// resultWait bounds how long the browser's request waits for the exchange
// with UPS and the write to Vault before it is shown a neutral page.
const resultWait = 2 * time.Minute

// startCatcher binds the redirect URI's host and port and starts serving
// (with a fresh self-signed certificate for https). It fails with a clear
// message when the port cannot be bound.
func startCatcher(t loopbackTarget, state string, now func() time.Time, log *zap.Logger) (*redirectCatcher, error) {
	c := &redirectCatcher{
		target:  t,
		state:   state,
		got:     make(chan callback, 1),
		outcome: make(chan error, 1),
		done:    make(chan struct{}),
	}
	// A browser refusing the self-signed certificate makes the server log
	// a TLS handshake error: expected, so debug only.
	errLog, err := zap.NewStdLogAt(log, zap.DebugLevel)
	if err != nil {
		return nil, err
	}
	c.srv = &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
	if t.scheme == "https" {
		cert, err := selfSignedCert(t.host, now())
		if err != nil {
			return nil, err
		}
		c.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	for i, addr := range t.listenAddrs() {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			if i > 0 {
				// localhost's second address (::1): IPv6 may be off.
				log.Debug("not listening on a second loopback address", zap.String("addr", addr), zap.Error(err))
				continue
			}
			c.closeListeners()
			return nil, bindError(t, addr, err)
		}
		c.lns = append(c.lns, ln)
	}
	// Decided once: Serve itself fills in srv.TLSConfig (for HTTP/2).
	useTLS := c.srv.TLSConfig != nil
	for _, ln := range c.lns {
		c.served.Add(1)
		go func() {
			defer c.served.Done()
			var err error
			if useTLS {
				err = c.srv.ServeTLS(ln, "", "")
			} else {
				err = c.srv.Serve(ln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				log.Debug("login listener stopped", zap.Error(err))
			}
		}()
	}
	return c, nil
}

// bindError explains a failed bind and offers the way around it.
func bindError(t loopbackTarget, addr string, err error) error {
	why := ""
	switch {
	case errors.Is(err, syscall.EACCES):
		why = fmt.Sprintf(" (port %s is below 1024: binding it needs root or CAP_NET_BIND_SERVICE)", t.port)
	case errors.Is(err, syscall.EADDRINUSE):
		why = " (another program uses that port)"
	}
	return fmt.Errorf("cannot listen on %s to catch the login redirect to %s: %w%s; use --manual to paste the redirect URL instead",
		addr, t.uri, err, why)
}

// wait returns the code of the redirect, or why there is none: the
// browser brought an error, or ctx ended (timeout, Ctrl-C).
func (c *redirectCatcher) wait(ctx context.Context) (string, error) {
	select {
	case cb := <-c.got:
		return cb.code, cb.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// finish tells the waiting browser how the exchange and the write to Vault
// ended.
func (c *redirectCatcher) finish(err error) {
	select {
	case c.outcome <- err:
	default:
	}
}

// close stops the listener, giving a browser still being answered a
// moment to receive its page. Once it returns, the port is free.
func (c *redirectCatcher) close() {
	c.closing.Do(func() {
		close(c.done)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := c.srv.Shutdown(ctx); err != nil {
			_ = c.srv.Close()
		}
		// Serve may not have registered its listener yet, in which case
		// Shutdown did not close it.
		c.closeListeners()
		c.served.Wait()
	})
}

func (c *redirectCatcher) closeListeners() {
	for _, ln := range c.lns {
		_ = ln.Close()
	}
}

// ServeHTTP answers the browser. Only the first request on the callback
// path that carries a code, an error or a state decides the login; others
// get an explanation and change nothing.
func (c *redirectCatcher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != c.target.path {
		writePage(w, http.StatusNotFound, "Not found", "This is upsproxy's login listener; it only answers "+c.target.path+".")
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writePage(w, http.StatusMethodNotAllowed, "Method not allowed", "The login redirect is a GET request.")
		return
	}
	q := r.URL.Query()
	if !q.Has("code") && !q.Has("error") && !q.Has("state") {
		writePage(w, http.StatusBadRequest, "Waiting for UPS", "upsproxy is waiting for UPS to send your browser back here after the login.")
		return
	}
	if !c.taken.CompareAndSwap(false, true) {
		writePage(w, http.StatusConflict, "Already done", "This login already received its redirect; see the terminal where upsproxy login runs.")
		return
	}
	cb := c.check(q, r.URL.RawQuery)
	c.got <- cb // buffered: the only send
	if cb.err != nil {
		writePage(w, http.StatusBadRequest, "Login failed", cb.err.Error())
		return
	}
	timer := time.NewTimer(resultWait)
	defer timer.Stop()
	select {
	case err := <-c.outcome:
		writeOutcome(w, err)
	case <-c.done:
		// finish tells the outcome before the login closes the catcher:
		// when both are there, select picks either, and the outcome is
		// what the browser must show.
		select {
		case err := <-c.outcome:
			writeOutcome(w, err)
		default:
			writePage(w, http.StatusServiceUnavailable, "Login ended", "The login ended before the tokens were stored; see the terminal where upsproxy login runs.")
		}
	case <-r.Context().Done():
	case <-timer.C:
		writePage(w, http.StatusAccepted, "Still working", "upsproxy is still exchanging the code with UPS; see the terminal where upsproxy login runs.")
	}
}

// writeOutcome answers the browser with how the exchange and the write to
// Vault ended.
func writeOutcome(w http.ResponseWriter, err error) {
	if err != nil {
		writePage(w, http.StatusBadGateway, "Login failed", err.Error()+" See the terminal where upsproxy login runs.")
		return
	}
	writePage(w, http.StatusOK, "Login complete", "Login complete, you can close this tab.")
}

// check verifies the redirect's state, then reads its code (or UPS's
// error) as a pasted redirect would be read.
func (c *redirectCatcher) check(q url.Values, rawQuery string) callback {
	states := q["state"]
	ok := len(states) > 0
	for _, s := range states {
		if subtle.ConstantTimeCompare([]byte(s), []byte(c.state)) != 1 {
			ok = false
		}
	}
	if !ok {
		return callback{err: errors.New("the redirect's state does not match this login (a tab from an earlier login, or a forged request): nothing was stored; start the login again")}
	}
	code, err := ups.ParseRedirect("?"+rawQuery, c.state)
	return callback{code: code, err: err}
}

// writePage answers with a small HTML page. The request URL held a
// single-use code: the page loads nothing and leaks no referrer.
func writePage(w http.ResponseWriter, status int, title, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>upsproxy: %s</title>
<style>body{font-family:sans-serif;max-width:40em;margin:4em auto;line-height:1.5}</style></head>
<body><h1>%s</h1><p>%s</p></body></html>
`, html.EscapeString(title), html.EscapeString(title), html.EscapeString(msg))
}

// selfSignedCert makes a throwaway ECDSA P-256 certificate for the
// listener's host. Browsers will warn about it; the login says so.
func selfSignedCert(host string, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("login listener key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("login listener certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: host, Organization: []string{"upsproxy login listener"}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("login listener certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
