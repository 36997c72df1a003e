// Package proxy is upsproxy's request path: an HTTP proxy that accepts UPS
// API calls in three modes (HTTPS forward proxy with MITM, HTTP
// forward proxy, and base-URL mode), checks the client (allow_cidrs, proxy
// auth) and that the call addresses UPS, translates legacy URL shapes,
// resolves the carrier, strips what must not reach UPS (legacy credentials
// in headers or a UPSSecurity body element), attaches the carrier's bearer
// token and streams the request to UPS and the response back, replaying
// idempotent calls once when UPS refuses a token.
//
// The steps are in one place, Proxy.forward (forward.go). Every refusal is
// answered in UPS's own error envelope with an X-Upsproxy-Error header by
// one mapper (errors.go, the Code* constants), and every request gets
// exactly one access log line and one Observer call.
//
// The proxy serves its client connections itself (Serve, conn.go): plain
// requests and, after a CONNECT, the requests inside the TLS tunnel
// (tunnel.go), with the same deadlines and header limit (ConnLimits).
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
	"net/http"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/clienttoken"
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
	// An *http.Transport is wrapped in a client that sends small
	// HTTP/1.1 requests itself, with its settings and dialers (upstream.go).
	Transport http.RoundTripper
	// CA mints the certificates of HTTPS (CONNECT) proxying; nil refuses
	// CONNECT with UPSPROXY_MITM_NOT_CONFIGURED.
	CA *CA
	// Observer, when set, is called once per request.
	Observer Observer
	// Config is the reloadable part; see Update.
	Config Config
	// Limits are the connection deadlines and header limit; zero fields
	// take the Default* values.
	Limits ConnLimits
}

// Proxy is the request path. Serve it on the proxy listener (server.go).
type Proxy struct {
	log         *zap.Logger
	now         func() time.Time
	tokens      TokenSource
	invalidator TokenInvalidator // nil when Tokens cannot be told
	transport   http.RoundTripper
	ca          *CA
	observer    Observer
	limits      ConnLimits

	routing atomic.Pointer[routing]
	signer  atomic.Pointer[clienttoken.Signer] // of clients' OAuth tokens (oauthendpoint.go)

	// mitmConf is the MITM server TLS config without its leaf, swapped
	// whole when the session ticket keys change (tickets.go).
	mitmConf atomic.Pointer[tls.Config]
	// inflight counts requests from their start to their access log line,
	// in every mode; Shutdown waits for it.
	inflight atomic.Int64

	served       connSet
	shuttingDown atomic.Bool
}

// New builds the proxy from opts.
func New(opts Options) (*Proxy, error) {
	if opts.Tokens == nil {
		return nil, errors.New("proxy: Options.Tokens is required")
	}
	if err := opts.Limits.validate(); err != nil {
		return nil, err
	}
	p := &Proxy{
		log:       opts.Logger,
		now:       opts.Clock,
		tokens:    opts.Tokens,
		transport: opts.Transport,
		ca:        opts.CA,
		observer:  opts.Observer,
		limits:    opts.Limits.withDefaults(),
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
	if tr, ok := p.transport.(*http.Transport); ok {
		// Small requests go out on the caller's goroutine (upstream.go).
		p.transport = newUpstreamClient(tr)
	}
	if err := p.Update(opts.Config); err != nil {
		return nil, err
	}
	p.mitmConf.Store(mitmTemplate(nil))

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

// markBaseURL marks an origin-form request (`POST /api/rating/...`,
// base-URL mode) with the base-URL marker host, which the target
// check knows (hosts.go).
func markBaseURL(r *http.Request) {
	r.URL.Scheme = "http"
	r.URL.Host = baseURLHost
}
