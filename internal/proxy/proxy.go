// Package proxy is upsproxy's request path: a goproxy-based HTTP proxy that
// accepts UPS API calls in three modes (HTTPS forward proxy with MITM, HTTP
// forward proxy, and base-URL mode), checks that they address UPS, resolves
// the carrier, strips what must not reach UPS, attaches the carrier's bearer
// token and streams the request to UPS and the response back.
//
// Every refusal is answered in UPS's own error envelope with an
// X-Upsproxy-Error header (see the Code* constants), and every request gets
// exactly one access log line.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
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

// Carrier is what the request path needs to know about a configured carrier.
type Carrier struct {
	Name        string
	Environment ups.Environment
	// Inactive carriers' requests are refused (UPSPROXY_CARRIER_INACTIVE).
	Inactive bool
	// Default marks the carrier used when a request names none; at most one.
	Default bool
}

// Options configures New.
type Options struct {
	Logger *zap.Logger      // nil: no logs
	Clock  func() time.Time // nil: time.Now
	Tokens TokenSource      // required
	// Carriers are fixed until the next Update.
	Carriers []Carrier
	// Upstreams is where each environment's requests go (the config's
	// test_url / production_url); only scheme and host are used, the
	// request's path and query are kept. http:// is allowed for the
	// simulator.
	Upstreams map[ups.Environment]*url.URL
	// Transport sends requests upstream; nil: NewTransport(TransportOptions{}).
	Transport http.RoundTripper
	// CA mints the certificates of HTTPS (CONNECT) proxying; nil refuses
	// CONNECT with UPSPROXY_MITM_NOT_CONFIGURED.
	CA *CA
	// TransactionSrc is the transactionSrc header added when the client
	// sent none; "" means "upsproxy".
	TransactionSrc string
}

// Proxy is the request path. It implements http.Handler: make it the
// Handler of the proxy listener's http.Server.
type Proxy struct {
	log       *zap.Logger
	now       func() time.Time
	tokens    TokenSource
	transport http.RoundTripper
	ca        *CA
	// transactionSrc is the header value added when missing, built once.
	transactionSrc []string

	routing atomic.Pointer[routing]

	gp   *goproxy.ProxyHttpServer
	mitm *goproxy.ConnectAction
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
	}
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
	src := opts.TransactionSrc
	if src == "" {
		src = "upsproxy"
	}
	p.transactionSrc = []string{src}
	if err := p.Update(opts.Carriers, opts.Upstreams); err != nil {
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
	gp.NonproxyHandler = http.HandlerFunc(p.serveOriginForm)
	gp.OnRequest().HandleConnectFunc(p.handleConnect)
	gp.OnRequest().DoFunc(p.handle)
	p.gp = gp
	p.mitm = &goproxy.ConnectAction{Action: goproxy.ConnectMitm, TLSConfig: p.mitmTLSConfig}
	return p, nil
}

// Update replaces the carriers and upstreams atomically: requests already
// in flight finish with the old ones. On error nothing changes.
func (p *Proxy) Update(carriers []Carrier, upstreams map[ups.Environment]*url.URL) error {
	rt, err := buildRouting(carriers, upstreams)
	if err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	p.routing.Store(rt)
	return nil
}

// ServeHTTP handles one request of the proxy listener, in any of the three
// modes.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect && !r.URL.IsAbs() {
		// Origin-form: mark it here rather than let goproxy route it to
		// NonproxyHandler first, which would cost a second pass through
		// goproxy's per-request set-up on the hot path of base-URL mode.
		markBaseURL(r)
	}
	p.gp.ServeHTTP(w, r)
}

// serveOriginForm is goproxy's NonproxyHandler, for origin-form requests
// that reach goproxy unmarked (ServeHTTP marks them first).
func (p *Proxy) serveOriginForm(w http.ResponseWriter, r *http.Request) {
	markBaseURL(r)
	p.gp.ServeHTTP(w, r)
}

// markBaseURL prepares an origin-form request (`POST /api/rating/...`,
// base-URL mode) for goproxy, which runs request handlers only on absolute
// URLs: it gets the base-URL marker host, and then takes the same chain as
// the other modes.
func markBaseURL(r *http.Request) {
	r.URL.Scheme = "http"
	r.URL.Host = baseURLHost
}

// handleConnect decides a CONNECT: MITM for a UPS host on port 443 when a
// CA is configured, refusal (with nothing dialled) otherwise.
func (p *Proxy) handleConnect(authority string, pctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
	t := connectTarget(authority)
	var err error
	switch {
	case t == nil:
		err = errHostNotAllowed
	case p.ca == nil:
		err = errMITMNotConfigured
	default:
		// goproxy copies UserData into the context of every request read
		// from the tunnel: that is how they learn which host was addressed.
		pctx.UserData = t
		return p.mitm, authority
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
