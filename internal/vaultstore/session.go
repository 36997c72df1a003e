package vaultstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"go.uber.org/zap"
)

// Defaults of SessionOptions.
const (
	DefaultMinRetryDelay = time.Second
	DefaultMaxRetryDelay = time.Minute
)

// SessionOptions configure NewSession.
type SessionOptions struct {
	// Client says where Vault is (address, CA, timeout). Its Token is used
	// only when Auth is nil.
	Client ClientOptions
	// Auth logs in. Nil means TokenAuth with Client.Token, or VAULT_TOKEN.
	Auth Authenticator
	// Logger receives logins, renewals and failures (never a token or
	// credential); nil discards them.
	Logger *zap.Logger
	// Now is the clock for token expiry times; nil means time.Now.
	Now func() time.Time
	// MinRetryDelay and MaxRetryDelay bound the exponential backoff
	// between failed logins; defaults DefaultMinRetryDelay and
	// DefaultMaxRetryDelay.
	MinRetryDelay, MaxRetryDelay time.Duration
}

// Session owns a Vault client and keeps it logged in: it renews a
// renewable token before it expires and logs in again, with backoff, when
// the token reaches its max TTL or cannot be renewed. The token is swapped
// on the same client, so a Store built on Client() keeps working across
// logins. It is safe for concurrent use; only one Run at a time.
type Session struct {
	client *vaultapi.Client
	// loginClient is a token-less clone of client for logins, so that a
	// login never changes the token of requests in flight and never sends
	// a stale token along (Unwrap, for one, sends the client's token).
	loginClient *vaultapi.Client
	auth        Authenticator
	log         *zap.Logger
	now         func() time.Time
	minRetry    time.Duration
	maxRetry    time.Duration

	running atomic.Bool

	mu sync.Mutex
	// login is the answer of the login whose token is in use, and at the
	// time it was obtained.
	login   *vaultapi.Secret
	loginAt time.Time
	// fresh means the token has not been watched yet, so what will become
	// of it has not been logged.
	fresh bool
	// failures counts failed logins (and logins that brought no new
	// token) since the last new token, for the backoff.
	failures int
}

// NewSession builds the Vault client and performs the first login, so that
// a wrong credential fails at start with, e.g., "vault approle login
// failed: ..." (errors.Is(err, ErrUnavailable) when Vault could not be
// reached). Call Run to keep the token alive.
func NewSession(ctx context.Context, opts SessionOptions) (*Session, error) {
	client, err := newBaseClient(opts.Client)
	if err != nil {
		return nil, err
	}
	loginClient, err := client.CloneWithHeaders()
	if err != nil {
		return nil, fmt.Errorf("vault client for %s: %w", client.Address(), err)
	}
	auth := opts.Auth
	if auth == nil {
		auth = TokenAuth{Token: firstSet(opts.Client.Token, opts.Client.getenv()(EnvToken))}
	}
	if st, ok := auth.(stateful); ok {
		// Our own copy: memory between logins is not shared with whoever
		// else holds the authenticator.
		auth = st.withState()
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	s := &Session{
		client:      client,
		loginClient: loginClient,
		auth:        auth,
		log:         log.Named("vault").With(zap.String("method", auth.Method())),
		now:         opts.Now,
		minRetry:    opts.MinRetryDelay,
		maxRetry:    opts.MaxRetryDelay,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.minRetry <= 0 {
		s.minRetry = DefaultMinRetryDelay
	}
	if s.maxRetry <= 0 {
		s.maxRetry = DefaultMaxRetryDelay
	}
	if s.maxRetry < s.minRetry {
		s.maxRetry = s.minRetry
	}
	if _, err := s.doLogin(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Client is the Vault client, logged in. Its token changes over time; use
// the client, do not copy its token.
func (s *Session) Client() *vaultapi.Client { return s.client }

// Run keeps the token alive until ctx is done, then returns. Renewable
// tokens are renewed by the Vault library's LifetimeWatcher; when renewal
// ends (max TTL reached, or renewals failed until the token was about to
// expire) and for tokens that are not renewable, Run logs in again before
// the token expires, retrying with backoff. A token without TTL (root, dev)
// is used as it is. The old token is not revoked: requests may still be
// using it, and it expires shortly anyway.
func (s *Session) Run(ctx context.Context) {
	if !s.running.CompareAndSwap(false, true) {
		s.log.Error("vault session is already running; this second Run returns at once")
		return
	}
	defer s.running.Store(false)
	for ctx.Err() == nil {
		if !s.keepAlive(ctx) {
			return
		}
		s.relogin(ctx)
	}
}

// doLogin logs in and puts the new token on the client.
func (s *Session) doLogin(ctx context.Context) (*vaultapi.Secret, error) {
	s.loginClient.ClearToken()
	// Vault counts the TTL from when it answers; counting it from before
	// the request errs on the safe side.
	at := s.now()
	secret, err := s.auth.Login(ctx, s.loginClient)
	s.loginClient.ClearToken()
	if err != nil {
		return nil, err
	}
	if secret, err = loginAnswer(s.auth.Method(), secret); err != nil {
		return nil, err
	}
	fresh := secret.Auth.ClientToken != s.client.Token()
	s.client.SetToken(secret.Auth.ClientToken)
	s.mu.Lock()
	s.login, s.loginAt = secret, at
	if fresh {
		s.fresh, s.failures = true, 0
	}
	s.mu.Unlock()
	if fresh {
		fields := []zap.Field{
			zap.Duration("ttl", leaseOf(secret)),
			zap.Bool("renewable", secret.Auth.Renewable),
			zap.Strings("policies", secret.Auth.TokenPolicies),
		}
		if ttl := leaseOf(secret); ttl > 0 {
			fields = append(fields, zap.Time("expires_at", at.Add(ttl)))
		}
		s.log.Info("logged in to vault", fields...)
	}
	return secret, nil
}

// ttlSlack is how much earlier than its TTL says a token may die. Vault
// counts TTLs in whole seconds and truncates a lease's start and "now" to
// the second when it checks a renewal against the max TTL, so a renewal may
// report up to a second more than is left (seen with a 2s TTL: "2s"
// answered 1.05s before the token died). The rest covers the login itself.
//
// The LifetimeWatcher alone is safe for TTLs of a minute and more (it
// renews at 2/3 of the TTL and gives up in the last 10-20%); for a TTL of a
// few seconds that second decides whether requests meet a dead token. TTLs
// under about 5s are not supported: the watcher renews at 2/3 of the TTL,
// after this deadline, so such tokens are replaced by new logins instead
// of being renewed.
const ttlSlack = time.Second + 100*time.Millisecond

// keepAlive watches the current token until a new login is due (true) or
// ctx is done (false).
func (s *Session) keepAlive(ctx context.Context) bool {
	s.mu.Lock()
	login, loginAt, fresh := s.login, s.loginAt, s.fresh
	s.fresh = false
	s.mu.Unlock()

	ttl := leaseOf(login)
	if ttl <= 0 {
		if fresh {
			s.log.Info("vault token has no TTL: it will not be renewed")
		}
		<-ctx.Done()
		return false
	}
	if fresh && !login.Auth.Renewable {
		s.log.Info("vault token is not renewable: will log in again before it expires", zap.Time("expires_at", loginAt.Add(ttl)))
	}
	// The latest time the token is known to be alive at, less the slack.
	deadline := loginAt.Add(ttl - ttlSlack)
	// The watcher counts the lease from its start; Run may start well after
	// the first login.
	remaining := deadline.Sub(s.now())
	if remaining <= 0 {
		s.log.Info("vault token is about to expire: logging in again", zap.Time("expires_at", loginAt.Add(ttl)))
		return true
	}
	auth := *login.Auth
	auth.LeaseDuration = int((remaining + ttlSlack) / time.Second)
	w, err := s.client.NewLifetimeWatcher(&vaultapi.LifetimeWatcherInput{Secret: &vaultapi.Secret{Auth: &auth}})
	if err != nil {
		// Only a nil secret or token makes this fail, which doLogin rules
		// out; log in again rather than give up.
		s.log.Error("cannot watch the vault token: logging in again", zap.Error(err))
		return true
	}
	go w.Start()
	watching := true
	stop := func() {
		if watching {
			w.Stop()
			// Start returns once an in-flight renewal (bounded by the
			// client timeout) is over; wait so that Run leaves nothing
			// behind.
			<-w.DoneCh()
			watching = false
		}
	}
	defer stop()
	safety := time.NewTimer(remaining)
	defer safety.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case err := <-w.DoneCh():
			watching = false
			switch {
			case err != nil:
				s.log.Warn("vault token renewal failed: logging in again", zap.Error(err))
			case login.Auth.Renewable:
				s.log.Info("vault token cannot be renewed any further (max TTL): logging in again")
			default:
				s.log.Info("vault token is about to expire: logging in again", zap.Time("expires_at", deadline.Add(ttlSlack)))
			}
			return true
		case <-safety.C:
			s.log.Info("vault token is about to expire: logging in again", zap.Time("expires_at", deadline.Add(ttlSlack)))
			return true
		case r := <-w.RenewCh():
			if r == nil || r.Secret == nil || r.Secret.Auth == nil {
				continue
			}
			got := time.Duration(r.Secret.Auth.LeaseDuration) * time.Second
			now := s.now()
			s.log.Debug("renewed vault token", zap.Duration("ttl", got), zap.Time("expires_at", now.Add(got)))
			if got < ttl {
				// Capped: the max TTL is near and renewing only shrinks what
				// is left. A new login gives a full TTL now, while the old
				// token still has time for requests in flight.
				s.log.Info("vault token cannot be renewed any further (max TTL): logging in again")
				return true
			}
			deadline = now.Add(got - ttlSlack)
			safety.Reset(deadline.Sub(now))
		}
	}
}

// relogin logs in until it gets a new token or ctx is done, waiting with
// backoff between attempts. A login that brings the same token again
// (token auth whose file was not updated) counts as a failure for the
// backoff, so that a token at its end is not looked up in a tight loop.
func (s *Session) relogin(ctx context.Context) {
	for {
		old := s.client.Token()
		secret, err := s.doLogin(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil && secret.Auth.ClientToken != old {
			return
		}
		s.mu.Lock()
		s.failures++
		failures := s.failures
		s.mu.Unlock()
		delay := s.backoff(failures)
		if err == nil {
			s.log.Warn("vault login brought the same token again: put a new one where the token auth reads it",
				zap.Duration("ttl", leaseOf(secret)), zap.Duration("retry_in", delay))
			// Then go back to watching (and renewing, if it still can be)
			// the token it has.
			sleep(ctx, delay)
			return
		}
		level := zap.WarnLevel
		if errors.Is(err, ErrPermissionDenied) || failures > 3 {
			// A refused credential, or a Vault that stays away, needs an
			// operator.
			level = zap.ErrorLevel
		}
		s.log.Log(level, "vault login failed: will retry", zap.Error(err),
			zap.Int("attempt", failures), zap.Duration("retry_in", delay))
		if !sleep(ctx, delay) {
			return
		}
	}
}

// backoff is the delay after the nth failure: doubling from the minimum up
// to the maximum, with jitter so that replicas do not retry in step.
func (s *Session) backoff(n int) time.Duration {
	d := s.minRetry
	for i := 1; i < n && d < s.maxRetry; i++ {
		d *= 2
	}
	d = min(d, s.maxRetry)
	return d/2 + rand.N(d/2+1)
}

// leaseOf is a login answer's TTL.
func leaseOf(secret *vaultapi.Secret) time.Duration {
	if secret == nil || secret.Auth == nil {
		return 0
	}
	return time.Duration(secret.Auth.LeaseDuration) * time.Second
}

// sleep waits for d or until ctx is done, and reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
