// Package login is the one login service: the steps of UPS's
// authorization-code flow (authorization URL with state and PKCE, exchange
// of a code or pasted redirect URL, storing the new pair with
// check-and-set) and the removal of stored tokens. `upsproxy login`,
// `upsproxy token delete` and the web console all call it, so no flow
// exists twice.
package login

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// Store is the token store (Vault KV v2 in production).
type Store interface {
	Get(ctx context.Context, carrier string, env ups.Environment) (vaultstore.Record, error)
	Put(ctx context.Context, rec vaultstore.Record) (int, error)
	Delete(ctx context.Context, carrier string, env ups.Environment) error
}

// OAuth is the UPS OAuth client of one carrier and environment.
type OAuth interface {
	UsesPKCE() bool
	AuthorizeURL(state, codeChallenge string) string
	Exchange(ctx context.Context, code, codeVerifier string) (ups.Token, error)
}

// Target names what a login is for.
type Target struct {
	Carrier     string
	Environment ups.Environment
	Grant       string
}

// Options configure a Service.
type Options struct {
	Store Store
	// Clock stamps the records; default time.Now.
	Clock func() time.Time
	// Sleep waits between write attempts; default a timer that ends with
	// the context. Tests make it instant.
	Sleep func(ctx context.Context, d time.Duration)
	// Attempts is how often a store write is tried; default 5.
	Attempts int
}

// Service runs logins against one token store.
type Service struct {
	opts Options
}

// New checks the options.
func New(opts Options) (*Service, error) {
	if opts.Store == nil {
		return nil, errors.New("login: a Store is required")
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = func(ctx context.Context, d time.Duration) {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	return &Service{opts: opts}, nil
}

// Authorization is one login attempt's authorization URL and the secrets
// that go with it: the state the redirect must carry back and the PKCE
// verifier the exchange must send ("" when the carrier has a secret).
type Authorization struct {
	URL, State, Verifier string
}

// StateFunc makes the state parameter of a login from its PKCE verifier
// (the console seals the verifier into the state so that any replica can
// finish the login).
type StateFunc func(verifier string) (string, error)

// Authorize starts a login: a PKCE verifier when the carrier has no client
// secret, the state (random when state is nil) and the authorization URL.
func Authorize(oc OAuth, state StateFunc) (Authorization, error) {
	var a Authorization
	challenge := ""
	if oc.UsesPKCE() {
		var err error
		if a.Verifier, challenge, err = ups.NewPKCE(); err != nil {
			return Authorization{}, err
		}
	}
	var err error
	if state == nil {
		a.State, err = ups.NewState()
	} else {
		a.State, err = state(a.Verifier)
	}
	if err != nil {
		return Authorization{}, err
	}
	a.URL = oc.AuthorizeURL(a.State, challenge)
	return a, nil
}

// CheckStore makes sure the store answers before a single-use code is
// spent: a login whose pair cannot be stored is lost.
func (s *Service) CheckStore(ctx context.Context, t Target) error {
	if _, err := s.opts.Store.Get(ctx, t.Carrier, t.Environment); err != nil && !errors.Is(err, vaultstore.ErrNotFound) {
		return fmt.Errorf("checking Vault before the login: %w", err)
	}
	return nil
}

// Complete spends the code at UPS and stores the pair, recording by as the
// writer ("login" for the CLI, "console:NAME" for the console). Once UPS
// has answered, the write runs to its end even if ctx ends: the code is
// spent either way.
func (s *Service) Complete(ctx context.Context, oc OAuth, t Target, code, verifier, by string) (ups.Token, error) {
	tok, err := oc.Exchange(ctx, code, verifier)
	if err != nil {
		return ups.Token{}, fmt.Errorf("exchanging the authorization code with UPS (%s): %w", t.Environment, err)
	}
	if err := s.Save(context.WithoutCancel(ctx), t, tok, by); err != nil {
		return ups.Token{}, err
	}
	return tok, nil
}

// Save stores a freshly minted pair, replacing whatever was stored
// (check-and-set against the version just read, so a concurrent refresh by
// a proxy is not silently overwritten), retrying a few times.
func (s *Service) Save(ctx context.Context, t Target, tok ups.Token, by string) error {
	rec := vaultstore.Record{Carrier: t.Carrier, Environment: t.Environment, Grant: t.Grant, Token: tok,
		UpdatedAt: s.opts.Clock(), UpdatedBy: by}
	var lastErr error
	for attempt := 0; attempt < s.opts.Attempts; attempt++ {
		if attempt > 0 {
			s.opts.Sleep(ctx, time.Duration(attempt)*500*time.Millisecond)
		}
		old, err := s.opts.Store.Get(ctx, t.Carrier, t.Environment)
		switch {
		case errors.Is(err, vaultstore.ErrNotFound):
			rec.Version = 0
		case err != nil:
			lastErr = err
			continue
		default:
			rec.Version = old.Version
		}
		if _, err = s.opts.Store.Put(ctx, rec); err == nil {
			return nil
		}
		lastErr = err
	}
	return fmt.Errorf("storing the new tokens in Vault failed (the authorization code is spent; run the login again once Vault is back): %w", lastErr)
}

// ErrNothingStored is Delete's answer when there was nothing to delete.
var ErrNothingStored = errors.New("no tokens stored")

// Delete removes every version of the stored tokens and returns what was
// stored (nil when the latest version could not be read, e.g. it was
// soft-deleted). ErrNothingStored when there was nothing.
func (s *Service) Delete(ctx context.Context, carrier string, env ups.Environment) (*vaultstore.Record, error) {
	old, getErr := s.opts.Store.Get(ctx, carrier, env)
	if getErr != nil && !errors.Is(getErr, vaultstore.ErrNotFound) {
		return nil, fmt.Errorf("reading the tokens from Vault: %w", getErr)
	}
	if err := s.opts.Store.Delete(ctx, carrier, env); err != nil {
		if errors.Is(err, vaultstore.ErrNotFound) {
			return nil, fmt.Errorf("carrier %q (%s): %w", carrier, env, ErrNothingStored)
		}
		return nil, fmt.Errorf("deleting the tokens from Vault: %w", err)
	}
	if getErr != nil {
		return nil, nil
	}
	return &old, nil
}
