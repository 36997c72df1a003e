package console

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// errForged is a sealed value this console did not make (or made with
// another key, or for another purpose).
var errForged = errors.New("not issued by this console")

// sealer encrypts and authenticates the console's cookies and login state
// with AES-256-GCM under keys derived from the key shared by every replica
// (kept in Vault), one key per purpose so a session cookie can never pass
// for a login state.
type sealer struct {
	aeads map[string]cipher.AEAD
	csrf  []byte
}

// Purposes of sealed values.
const (
	purposeSession = "session"
	purposeState   = "login-state"
)

func newSealer(master []byte) (*sealer, error) {
	if len(master) < 32 {
		return nil, errors.New("console: the shared key must be at least 32 bytes")
	}
	s := &sealer{aeads: map[string]cipher.AEAD{}, csrf: derive(master, "csrf")}
	for _, p := range []string{purposeSession, purposeState} {
		block, err := aes.NewCipher(derive(master, p))
		if err != nil {
			return nil, err
		}
		if s.aeads[p], err = cipher.NewGCM(block); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// derive is HMAC-SHA256(master, "upsproxy console "+purpose): independent
// keys from one shared secret.
func derive(master []byte, purpose string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("upsproxy console " + purpose))
	return m.Sum(nil)
}

// seal encodes v as JSON, encrypts it and returns URL-safe text (usable in
// a cookie and in the OAuth state parameter).
func (s *sealer) seal(purpose string, v any) (string, error) {
	aead := s.aeads[purpose]
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, []byte(purpose))), nil
}

// maxSealed bounds what open accepts: cookies and states are far smaller.
const maxSealed = 2048

// open reverses seal; errForged for anything else.
func (s *sealer) open(purpose, text string, v any) error {
	aead := s.aeads[purpose]
	if len(text) > maxSealed {
		return errForged
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(text)
	if err != nil || len(raw) < aead.NonceSize()+aead.Overhead() {
		return errForged
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(purpose))
	if err != nil {
		return errForged
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return fmt.Errorf("%w: %v", errForged, err)
	}
	return nil
}

// csrfToken is the anti-forgery token of a session: an HMAC of its id, so
// any replica can check it without storing anything.
func (s *sealer) csrfToken(sessionID string) string {
	m := hmac.New(sha256.New, s.csrf)
	m.Write([]byte(sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF compares in constant time.
func (s *sealer) checkCSRF(sessionID, token string) bool {
	return sessionID != "" && token != "" && hmac.Equal([]byte(s.csrfToken(sessionID)), []byte(token))
}

// randomID is 16 random bytes, base64url.
func randomID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
