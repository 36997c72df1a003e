package proxy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// Proxy authentication (client blocks). When any client is configured,
// every request needs Proxy-Authorization: Basic base64(user:password), in
// every mode: forward-proxy clients send it from their proxy settings (on
// the CONNECT for HTTPS, on each request for HTTP); base-URL mode has no
// proxy settings, so there the client must add the header itself. Plain
// Authorization is never taken as proxy credentials: legacy clients send
// stale UPS credentials in it, and it is stripped before UPS.

// authCacheSize bounds the verified credentials kept per configuration.
// A bcrypt comparison costs tens of milliseconds by design; the cache makes
// it once per client and password instead of once per request.
const authCacheSize = 256

// authCache remembers credentials that passed bcrypt. Keys are a salted
// SHA-256 of the whole header value, so the cache holds no password and
// cannot be used to test guesses faster than bcrypt allows. A failed
// header is remembered too (bad): a misconfigured client that retries the
// same wrong credentials in a loop (some OAuth clients retry a refused
// token request forever) then costs a hash, not a bcrypt, per attempt;
// every new guess still costs a bcrypt comparison, bounded by sem, so a
// client guessing passwords cannot take every CPU.
type authCache struct {
	salt [32]byte
	sem  chan struct{}

	mu  sync.RWMutex
	ok  map[[sha256.Size]byte]*client
	bad map[[sha256.Size]byte]struct{}
}

func newAuthCache() *authCache {
	c := &authCache{
		sem: make(chan struct{}, runtime.GOMAXPROCS(0)),
		ok:  make(map[[sha256.Size]byte]*client),
		bad: make(map[[sha256.Size]byte]struct{}),
	}
	// crypto/rand.Read never fails on supported platforms.
	_, _ = rand.Read(c.salt[:])
	return c
}

// unknownUserHash is compared against when the user name is unknown, so
// that an unknown name costs as much time as a wrong password and does not
// reveal which names exist. Its password is irrelevant.
var unknownUserHash = []byte("$2a$10$M59lmKZ5yds2Mefxyy4Li.nyhL1MVYk6jGogOWpnvLzOzIm4uhUd2")

// authenticate checks a Proxy-Authorization header value against the
// configured clients.
func (rt *routing) authenticate(ctx context.Context, header string) (*client, error) {
	if header == "" {
		return nil, errProxyAuthMissing
	}
	key := rt.auth.key(header)
	rt.auth.mu.RLock()
	cl := rt.auth.ok[key]
	_, bad := rt.auth.bad[key]
	rt.auth.mu.RUnlock()
	if cl != nil {
		return cl, nil
	}
	if bad {
		return nil, errProxyAuthFailed
	}

	user, password, ok := parseBasic(header)
	if !ok {
		return nil, errProxyAuthMissing
	}
	hash := unknownUserHash
	cl = rt.clients[user]
	if cl != nil {
		hash = cl.hash
	}
	select {
	case rt.auth.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, errProxyAuthFailed
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(password))
	<-rt.auth.sem
	if err != nil || cl == nil {
		rt.auth.mu.Lock()
		if len(rt.auth.bad) >= authCacheSize {
			for k := range rt.auth.bad {
				delete(rt.auth.bad, k)
				break
			}
		}
		rt.auth.bad[key] = struct{}{}
		rt.auth.mu.Unlock()
		return nil, errProxyAuthFailed
	}

	rt.auth.mu.Lock()
	if len(rt.auth.ok) >= authCacheSize {
		for k := range rt.auth.ok {
			delete(rt.auth.ok, k) // any one: the map's order is random enough
			break
		}
	}
	rt.auth.ok[key] = cl
	rt.auth.mu.Unlock()
	return cl, nil
}

// key is the cache key of a header value. Typical values fit the stack
// buffer, so a cache hit allocates nothing.
func (c *authCache) key(header string) [sha256.Size]byte {
	var buf [256]byte
	if len(c.salt)+len(header) <= len(buf) {
		n := copy(buf[:], c.salt[:])
		n += copy(buf[n:], header)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256(append(c.salt[:], header...))
}

// parseBasic decodes "Basic base64(user:password)" (scheme compared
// case-insensitively, as RFC 9110 says).
func parseBasic(header string) (user, password string, ok bool) {
	const prefix = "Basic "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(header[len(prefix):]))
	if err != nil {
		return "", "", false
	}
	user, password, ok = strings.Cut(string(raw), ":")
	return user, password, ok
}
