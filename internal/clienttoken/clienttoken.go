// Package clienttoken issues and verifies the OAuth tokens upsproxy hands
// its own clients when they ask what they believe is UPS's token endpoint.
//
// A token is
//
//	upsproxy1_<base64url(payload)>.<base64url(HMAC-SHA256(key, "upsproxy1_" + base64url(payload)))>
//
// The payload is a small binary record (kind, flags, issue and expiry
// times, a random nonce, the client and carrier names), so verifying a
// presented token is a base64 decode into a stack buffer and one HMAC, with
// no JSON. Every replica signs with the same key (kept in Vault, see
// vaultstore.SharedKey, "oauth"), so a token from one is accepted by all. The
// prefix can never start a UPS token (UPS's are opaque base64 or JWTs), so
// the proxy recognises its own tokens on sight and never forwards them.
package clienttoken

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash"
	"strings"
	"sync"
	"time"
)

// Prefix starts every token this package issues.
const Prefix = "upsproxy1_"

// KeySize is the length of a signing key.
const KeySize = 32

// Kind tells what a token may be used for.
type Kind byte

// Kinds of token.
const (
	// Access is a bearer for API calls.
	Access Kind = 'a'
	// Refresh can be traded at the token endpoint for a new pair.
	Refresh Kind = 'r'
	// Code is an authorization code from the proxy's authorize answer.
	Code Kind = 'c'
)

// String names the kind for logs and errors.
func (k Kind) String() string {
	switch k {
	case Access:
		return "access"
	case Refresh:
		return "refresh"
	case Code:
		return "code"
	}
	return "unknown"
}

// Claims is what a token says.
type Claims struct {
	Kind Kind
	// Authenticated: Client is a client block whose credentials were
	// checked when the token was issued. Otherwise Client is only the
	// client_id the client claimed (no client blocks configured).
	Authenticated bool
	// Client is the OAuth client id (the client block's name when
	// Authenticated); may be empty.
	Client string
	// Carrier is the carrier chosen when the token was issued (client pin,
	// client_ids or x-merchant-id); "" leaves it to each request.
	Carrier   string
	IssuedAt  time.Time // whole seconds
	ExpiresAt time.Time // whole seconds
}

// Errors of Verify. They never quote the token.
var (
	ErrNotOurs   = errors.New("not an upsproxy token")
	ErrMalformed = errors.New("malformed upsproxy token")
	ErrSignature = errors.New("upsproxy token signature does not match")
	ErrExpired   = errors.New("upsproxy token expired")
)

// Limits of the payload.
const (
	version     = 1
	flagAuth    = 1
	nonceSize   = 12
	maxName     = 255
	fixedLen    = 1 + 1 + 1 + 8 + 8 + nonceSize // version, kind, flags, issued, expires, nonce
	maxPayload  = fixedLen + 2 + 2*maxName
	maxTokenLen = len(Prefix) + (maxPayload+2)/3*4 + 1 + 43
	macLen      = sha256.Size
)

// Signer issues and verifies tokens with one key. It is safe for
// concurrent use.
type Signer struct {
	key   []byte
	macs  sync.Pool // of hash.Hash (HMAC-SHA256 with key), reset before use
	cache verifiedCache
}

// NewSigner returns a Signer for key (KeySize bytes).
func NewSigner(key []byte) (*Signer, error) {
	if len(key) != KeySize {
		return nil, errors.New("clienttoken: the signing key must be 32 bytes")
	}
	s := &Signer{key: append([]byte(nil), key...)}
	s.macs.New = func() any { return hmac.New(sha256.New, s.key) }
	s.cache.init()
	return s, nil
}

// NewKey returns a fresh random signing key.
func NewKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	return k, nil
}

// Issue signs c. Names longer than 255 bytes are an error.
func (s *Signer) Issue(c Claims) (string, error) {
	if len(c.Client) > maxName || len(c.Carrier) > maxName {
		return "", errors.New("clienttoken: client or carrier name longer than 255 bytes")
	}
	switch c.Kind {
	case Access, Refresh, Code:
	default:
		return "", errors.New("clienttoken: unknown token kind")
	}
	p := make([]byte, 0, fixedLen+2+len(c.Client)+len(c.Carrier))
	var flags byte
	if c.Authenticated {
		flags |= flagAuth
	}
	p = append(p, version, byte(c.Kind), flags)
	p = binary.BigEndian.AppendUint64(p, uint64(c.IssuedAt.Unix()))
	p = binary.BigEndian.AppendUint64(p, uint64(c.ExpiresAt.Unix()))
	var nonce [nonceSize]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return "", err
	}
	p = append(p, nonce[:]...)
	p = append(p, byte(len(c.Client)))
	p = append(p, c.Client...)
	p = append(p, byte(len(c.Carrier)))
	p = append(p, c.Carrier...)

	var b strings.Builder
	b.Grow(maxTokenLen)
	b.WriteString(Prefix)
	enc := base64.RawURLEncoding
	b.WriteString(enc.EncodeToString(p))
	signed := b.String()
	mac := s.sum(signed)
	b.WriteByte('.')
	b.WriteString(enc.EncodeToString(mac[:]))
	return b.String(), nil
}

func (s *Signer) sum(signed string) [macLen]byte {
	h := s.macs.Get().(hash.Hash)
	h.Reset()
	// HMAC has no WriteString: the string goes through a stack buffer
	// rather than a []byte conversion that would allocate. hash.Hash
	// writes never fail.
	var buf [256]byte
	for rest := signed; len(rest) > 0; {
		n := copy(buf[:], rest)
		h.Write(buf[:n])
		rest = rest[n:]
	}
	var out [macLen]byte
	h.Sum(out[:0])
	s.macs.Put(h)
	return out
}

// IsToken reports whether s looks like one of our tokens (by its prefix
// alone). A bearer that does is never forwarded, valid or not.
func IsToken(s string) bool { return strings.HasPrefix(s, Prefix) }

// Verify checks a presented token: ours, signed with this key, of kind
// want and not expired at now. Tokens verified before are answered from a
// bounded cache without decoding or hashing.
func (s *Signer) Verify(tok string, want Kind, now time.Time) (Claims, error) {
	if c, ok := s.cache.get(tok); ok {
		if c.Kind != want {
			return Claims{}, ErrMalformed
		}
		if !now.Before(c.ExpiresAt) {
			return Claims{}, ErrExpired
		}
		return c, nil
	}
	c, err := s.parse(tok)
	if err != nil {
		return Claims{}, err
	}
	if c.Kind != want {
		return Claims{}, ErrMalformed
	}
	if !now.Before(c.ExpiresAt) {
		return Claims{}, ErrExpired
	}
	s.cache.put(tok, c)
	return c, nil
}

// parse checks the signature and decodes the payload.
func (s *Signer) parse(tok string) (Claims, error) {
	if !IsToken(tok) {
		return Claims{}, ErrNotOurs
	}
	if len(tok) > maxTokenLen {
		return Claims{}, ErrMalformed
	}
	dot := strings.LastIndexByte(tok, '.')
	if dot < len(Prefix) {
		return Claims{}, ErrMalformed
	}
	enc := base64.RawURLEncoding.Strict() // one spelling per token: no slack in the padding bits
	var got [macLen + 3]byte
	if enc.DecodedLen(len(tok)-dot-1) != macLen {
		return Claims{}, ErrMalformed
	}
	if n, err := enc.Decode(got[:], []byte(tok[dot+1:])); err != nil || n != macLen {
		return Claims{}, ErrMalformed
	}
	want := s.sum(tok[:dot])
	if !hmac.Equal(got[:macLen], want[:]) {
		return Claims{}, ErrSignature
	}
	// Signed by us: the payload is one we wrote, but decode it carefully
	// anyway (a key shared with an older release could sign other shapes).
	var buf [maxPayload + 3]byte
	body := tok[len(Prefix):dot]
	if enc.DecodedLen(len(body)) > len(buf) {
		return Claims{}, ErrMalformed
	}
	n, err := enc.Decode(buf[:], []byte(body))
	if err != nil {
		return Claims{}, ErrMalformed
	}
	return decodePayload(buf[:n])
}

func decodePayload(p []byte) (Claims, error) {
	if len(p) < fixedLen+2 || p[0] != version {
		return Claims{}, ErrMalformed
	}
	c := Claims{Kind: Kind(p[1]), Authenticated: p[2]&flagAuth != 0}
	issued := int64(binary.BigEndian.Uint64(p[3:11]))
	expires := int64(binary.BigEndian.Uint64(p[11:19]))
	c.IssuedAt, c.ExpiresAt = time.Unix(issued, 0), time.Unix(expires, 0)
	rest := p[fixedLen:]
	name := func() (string, bool) {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return "", false
		}
		n := int(rest[0])
		v := string(rest[1 : 1+n])
		rest = rest[1+n:]
		return v, true
	}
	var ok bool
	if c.Client, ok = name(); !ok {
		return Claims{}, ErrMalformed
	}
	if c.Carrier, ok = name(); !ok || len(rest) != 0 {
		return Claims{}, ErrMalformed
	}
	return c, nil
}

// cacheSize bounds the verified tokens remembered. Each is a few hundred
// bytes; a client fetching a token per call (which UPS asks integrators
// not to do) only churns the cache.
const cacheSize = 4096

// verifiedCache remembers tokens whose signature was checked, so a token
// used for many calls is decoded once. Only valid tokens go in: a client
// sending garbage costs one HMAC per request and no memory.
type verifiedCache struct {
	mu sync.RWMutex
	m  map[string]Claims
}

func (c *verifiedCache) init() { c.m = make(map[string]Claims) }

func (c *verifiedCache) get(tok string) (Claims, bool) {
	c.mu.RLock()
	v, ok := c.m[tok]
	c.mu.RUnlock()
	return v, ok
}

func (c *verifiedCache) put(tok string, v Claims) {
	c.mu.Lock()
	if len(c.m) >= cacheSize {
		for k := range c.m {
			delete(c.m, k) // any one: map order is random enough
			break
		}
	}
	c.m[tok] = v
	c.mu.Unlock()
}
