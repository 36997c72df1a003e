// Package proxy is upsproxy's request path: a goproxy-based HTTP proxy that
// accepts UPS API calls in three modes (HTTPS forward proxy with MITM, HTTP
// forward proxy, and base-URL mode), checks the client (allow_cidrs, proxy
// auth) and that the call addresses UPS, translates legacy URL shapes,
// resolves the carrier, strips what must not reach UPS (legacy credentials
// in headers or a UPSSecurity body element), attaches the carrier's bearer
// token and streams the request to UPS and the response back, replaying
// idempotent calls once when UPS refuses a token.
//
// The steps are in one place, Proxy.chain (chain.go). Every refusal is
// answered in UPS's own error envelope with an X-Upsproxy-Error header by
// one mapper (errors.go, the Code* constants), and every request gets
// exactly one access log line and one Observer call.
//
// Request bodies stream; a bounded prefix (Config.BodyScanLimit) of every
// body is read and scanned first (scan.go), the rest is scanned as it
// streams, and what the scanner cannot classify is refused. See README.md
// for the behaviour as ops see it.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"
	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// TokenSource gives the current access token for a carrier/environment from
// memory. Errors are the sentinels of internal/tokens (ErrNotLoggedIn,
// ErrStoreUnavailable, ErrRefreshFailed, *RefreshExpiredError); anything
// else is answered as UPSPROXY_TOKEN_STORE_UNAVAILABLE.
type TokenSource interface {
	Token(ctx context.Context, carrier string, env ups.Environment) (string, error)
}

// TokenInvalidator is implemented by token sources that can be told UPS
// refused a token (401/250002): the next Token call then renews it, or
// picks up a newer one. The proxy uses it before a replay; a TokenSource
// without it only gets a replay when its next Token differs anyway.
type TokenInvalidator interface {
	Invalidate(carrier string, env ups.Environment, token string)
}

// Observer is told about every request once, when its access log line is
// written (metrics). carrier is "" when none was resolved, errorCode ""
// unless the proxy answered with one of its own errors.
type Observer interface {
	ObserveRequest(carrier string, env ups.Environment, status int, errorCode string, d time.Duration)
}

// Options configures New.
type Options struct {
	Logger *zap.Logger      // nil: no logs
	Clock  func() time.Time // nil: time.Now
	Tokens TokenSource      // required
	// Transport sends requests upstream; nil: NewTransport(TransportOptions{}).
	Transport http.RoundTripper
	// CA mints the certificates of HTTPS (CONNECT) proxying; nil refuses
	// CONNECT with UPSPROXY_MITM_NOT_CONFIGURED.
	CA *CA
	// Observer, when set, is called once per request.
	Observer Observer
	// Config is the reloadable part; see Update.
	Config Config
}

// Proxy is the request path. It implements http.Handler: make it the
// Handler of the proxy listener's http.Server.
type Proxy struct {
	log         *zap.Logger
	now         func() time.Time
	tokens      TokenSource
	invalidator TokenInvalidator // nil when Tokens cannot be told
	transport   http.RoundTripper
	ca          *CA
	observer    Observer

	routing atomic.Pointer[routing]

	gp   *goproxy.ProxyHttpServer
	mitm *goproxy.ConnectAction
	// inflight counts requests from their start to their access log line,
	// in every mode; Drain waits for it (hijacked CONNECT tunnels are not
	// tracked by http.Server.Shutdown).
	inflight atomic.Int64
}

// rejectConnect refuses a CONNECT without dialling anything; goproxy writes
// ctx.Resp to the client. Our own value, because goproxy's RejectConnect
// carries a TLS config built on goproxy's public built-in CA.
var rejectConnect = &goproxy.ConnectAction{Action: goproxy.ConnectReject}

// errNeverDial guards goproxy's own dialling paths, which upsproxy never uses.
var errNeverDial = errors.New("upsproxy never opens tunnels or dials through goproxy")

// New builds the proxy from opts.
func New(opts Options) (*Proxy, error) {
	if opts.Tokens == nil {
		return nil, errors.New("proxy: Options.Tokens is required")
	}
	p := &Proxy{
		log:       opts.Logger,
		now:       opts.Clock,
		tokens:    opts.Tokens,
		transport: opts.Transport,
		ca:        opts.CA,
		observer:  opts.Observer,
	}
	p.invalidator, _ = opts.Tokens.(TokenInvalidator)
	if p.log == nil {
		p.log = zap.NewNop()
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.transport == nil {
		tr, err := NewTransport(TransportOptions{})
		if err != nil {
			return nil, fmt.Errorf("proxy: upstream transport: %w", err)
		}
		p.transport = tr
	}
	if err := p.Update(opts.Config); err != nil {
		return nil, err
	}

	gp := goproxy.NewProxyHttpServer()
	gp.Logger = goproxyLogger{p.log}
	// h2 inside a MITM tunnel is served by goproxy without running request
	// handlers, which would skip token injection and every check.
	gp.AllowHTTP2 = false
	// goproxy's default transport skips TLS verification and honours
	// HTTP(S)_PROXY. Upstream requests are sent by the request handler with
	// p.transport; this one only backs goproxy's paths we never take, and
	// refuses to dial.
	gp.Tr = &http.Transport{
		Proxy: nil,
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			return nil, errNeverDial
		},
	}
	// NewProxyHttpServer wires CONNECT dialling to $HTTPS_PROXY. upsproxy
	// never accepts a plain tunnel (only MITM), so dialling here is a bug.
	gp.ConnectDial = nil
	gp.ConnectDialWithReq = func(*http.Request, string, string) (net.Conn, error) { return nil, errNeverDial }
	// ServeHTTP hands goproxy CONNECT requests only; anything else that
	// reached it would be served by our own path too.
	gp.NonproxyHandler = http.HandlerFunc(p.serveHTTP)
	gp.OnRequest().HandleConnectFunc(p.handleConnect)
	gp.OnRequest().DoFunc(p.handle)
	p.gp = gp
	p.mitm = &goproxy.ConnectAction{Action: goproxy.ConnectMitm, TLSConfig: p.mitmTLSConfig}
	return p, nil
}

// Update replaces the reloadable configuration atomically: requests
// already in flight finish with the old one. On error nothing changes.
func (p *Proxy) Update(cfg Config) error {
	rt, err := buildRouting(cfg)
	if err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	p.routing.Store(rt)
	return nil
}

// ServeHTTP handles one request of the proxy listener, in any of the three
// modes.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rt := p.routing.Load(); len(rt.allow) > 0 && !rt.allowed(r.RemoteAddr) {
		p.refuseClient(w, r)
		return
	}
	if r.Method == http.MethodConnect {
		// HTTPS forward proxy: goproxy runs the tunnel (handleConnect)
		// and the chain for each request inside it (handle).
		p.gp.ServeHTTP(w, r)
		return
	}
	p.serveHTTP(w, r)
}

// serveHTTP serves an origin-form (base-URL mode) or absolute-form (HTTP
// forward proxy) request: the chain, then its answer (respond.go).
func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !r.URL.IsAbs() {
		markBaseURL(r)
	}
	respond(w, p.chain(r, nil))
}

// refuseClient answers a client whose address is not allowed, before
// anything of its request is looked at, and closes the connection.
func (p *Proxy) refuseClient(w http.ResponseWriter, r *http.Request) {
	x := p.newExchange(r)
	x.authority = r.RemoteAddr
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	resp := x.fail(r, clientNotAllowedError(host))
	h := w.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	h.Set("Connection", "close")
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// markBaseURL marks an origin-form request (`POST /api/rating/...`,
// base-URL mode) with the base-URL marker host, which the chain's target
// check knows (hosts.go).
func markBaseURL(r *http.Request) {
	r.URL.Scheme = "http"
	r.URL.Host = baseURLHost
}

// tunnel is what requests decrypted from a CONNECT tunnel inherit from it
// (goproxy copies ctx.UserData into each of their contexts): the host the
// client addressed and, when proxy auth is on, the credentials it
// authenticated the CONNECT with. Each request in the tunnel is checked
// against the configuration current when it arrives.
type tunnel struct {
	target *target
	auth   string
}

// handleConnect decides a CONNECT: MITM for a UPS host on port 443 when a
// CA is configured and the client authenticated (when required), refusal
// (with nothing dialled) otherwise.
func (p *Proxy) handleConnect(authority string, pctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
	t := connectTarget(authority)
	var err error
	switch {
	case t == nil:
		err = errHostNotAllowed
	case p.ca == nil:
		err = errMITMNotConfigured
	default:
		rt := p.routing.Load()
		if rt.clients == nil {
			// A pointer to a fixed target: no allocation per tunnel.
			pctx.UserData = t
			return p.mitm, authority
		}
		auth := pctx.Req.Header.Get("Proxy-Authorization")
		if _, err = rt.authenticate(pctx.Req.Context(), auth); err == nil {
			pctx.UserData = &tunnel{target: t, auth: auth}
			return p.mitm, authority
		}
	}
	x := p.newExchange(pctx.Req)
	x.authority = authority
	resp := x.fail(pctx.Req, err)
	// goproxy closes the connection after a refused CONNECT; say so.
	resp.Close = true
	pctx.Resp = resp
	return rejectConnect, authority
}

// mitmTLSConfig is the server side of the client's TLS inside a CONNECT
// tunnel: a leaf for the UPS host from our CA, HTTP/1.1 only (see
// AllowHTTP2). Listing http/1.1 alone also holds if AllowHTTP2 is ever
// turned on: goproxy appends h2 after it, and Go's TLS server picks the
// first of its own protocols that the client offers.
func (p *Proxy) mitmTLSConfig(authority string, _ *goproxy.ProxyCtx) (*tls.Config, error) {
	leaf, err := p.ca.LeafFor(hostname(authority))
	if err != nil {
		p.log.Error("mint MITM certificate", zap.String("host", authority), zap.Error(err))
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{*leaf},
		NextProtos:   []string{"http/1.1"},
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// goproxyLogger routes goproxy's own messages to zap.
type goproxyLogger struct{ log *zap.Logger }

// Printf logs one goproxy message. goproxy formats errors that can quote
// raw request lines (a malformed header line may hold a client's
// credentials), so only the constant format is logged, except for TLS
// handshake failures: their text is the most useful hint when a client
// does not trust the proxy's CA, and it carries no request data.
func (l goproxyLogger) Printf(format string, v ...any) {
	if !strings.Contains(format, "WARN: ") {
		return // goproxy's INFO lines only come with Verbose, which is off
	}
	if strings.Contains(format, "Cannot handshake client") {
		l.log.Warn("MITM TLS handshake with client failed", zap.String("detail", strings.TrimSpace(fmt.Sprintf(format, v...))))
		return
	}
	l.log.Debug("goproxy", zap.String("event", strings.TrimSpace(format)))
}

// Drain waits until no request is in flight, or ctx ends. Call it after
// the server's Shutdown: Shutdown waits for plain HTTP connections, but the
// requests inside HTTPS (CONNECT) tunnels run on hijacked connections it
// does not see.
func (p *Proxy) Drain(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for p.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d requests still in flight: %w", p.inflight.Load(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}
