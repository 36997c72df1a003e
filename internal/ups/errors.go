package ups

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/upsproxy/upsproxy/internal/redact"
)

// ErrMalformedResponse marks a 2xx answer from the token endpoint that is not
// a usable UPS token (HTML page, missing access_token, non-numeric
// expires_in...). It is temporary: proxies and WAFs produce such pages.
var ErrMalformedResponse = errors.New("malformed UPS token response")

// Error is a non-2xx answer (or an RFC 6749 error body) from UPS's token or
// refresh endpoint. Its text never contains the secrets of the request.
type Error struct {
	StatusCode int
	// Code and Message come from UPS's error envelope (or, failing that,
	// from an RFC 6749 error/error_description body); both are empty when
	// the body is neither.
	Code, Message string
	// Body is the start of the body (about 200 bytes, one line) when it is
	// not an error envelope, e.g. an HTML error page.
	Body string
}

// Error implements error, in one line.
func (e *Error) Error() string {
	s := fmt.Sprintf("UPS token endpoint answered HTTP %d", e.StatusCode)
	switch {
	case e.Code != "" || e.Message != "":
		s += ": " + strings.TrimSpace(e.Code+" "+e.Message)
	case e.Body != "":
		s += fmt.Sprintf(": %q", e.Body)
	}
	return s
}

// Temporary reports whether retrying later (with backoff) may succeed:
// 5xx, 408, 429 or UPS code 10429.
func (e *Error) Temporary() bool {
	return e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests ||
		e.StatusCode == http.StatusRequestTimeout || e.Code == CodeTooManyRequests
}

// InvalidGrant reports whether UPS rejected the refresh token or
// authorization code itself (spent, expired, revoked, unknown): only a new
// login helps. UPS's 10400 also covers a bad Authorization header and a bad
// redirect URI; when the message names one of those, it is not the grant.
func (e *Error) InvalidGrant() bool {
	if e.Temporary() {
		return false
	}
	if strings.EqualFold(e.Code, "invalid_grant") {
		return true
	}
	if e.StatusCode != http.StatusBadRequest && e.StatusCode != http.StatusUnauthorized {
		return false
	}
	text := strings.ToLower(e.Message + " " + e.Body)
	if strings.Contains(text, "invalid refresh token") || strings.Contains(text, "invalid_grant") {
		return true
	}
	return e.Code == CodeInvalidRequest && !e.InvalidClient() && !strings.Contains(text, "redirect")
}

// InvalidClient reports whether UPS rejected the application's credentials
// (client id or secret): a configuration problem a new login cannot fix.
func (e *Error) InvalidClient() bool {
	if strings.EqualFold(e.Code, "invalid_client") || e.Code == CodeInvalidClient {
		return true
	}
	text := strings.ToLower(e.Message)
	return e.Code == CodeInvalidRequest && (strings.Contains(text, "authorization header") || strings.Contains(text, "clientid"))
}

// IsTemporary reports whether err, from a Client method, is worth retrying
// with backoff: a temporary *Error, a malformed 2xx, a network error or a
// timeout. Cancellation by the caller and rejections by UPS are not.
func IsTemporary(err error) bool {
	if err == nil {
		return false
	}
	var ue *Error
	if errors.As(err, &ue) {
		return ue.Temporary()
	}
	if errors.Is(err, ErrMalformedResponse) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// bodySnippetLen is how much of a non-envelope error body Error keeps.
const bodySnippetLen = 200

// newError converts x/oauth2's RetrieveError, scrubbing secrets we sent
// in case the server echoed them.
func newError(re *oauth2.RetrieveError, red redactor) *Error {
	e := &Error{}
	if re.Response != nil {
		e.StatusCode = re.Response.StatusCode
	}
	if d, ok := ParseEnvelope(re.Body); ok {
		e.Code, e.Message = oneLine(red.apply(d.Code), 100), oneLine(red.apply(d.Message), 500)
		return e
	}
	if re.ErrorCode != "" {
		e.Code, e.Message = oneLine(red.apply(re.ErrorCode), 100), oneLine(red.apply(re.ErrorDescription), 500)
		return e
	}
	e.Body = oneLine(red.apply(string(re.Body)), bodySnippetLen)
	return e
}

// oneLine collapses runs of whitespace and control characters to one space
// and truncates to at most limit bytes of valid UTF-8.
func oneLine(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = true
			continue
		}
		sep := space && b.Len() > 0
		need := utf8.RuneLen(r)
		if sep {
			need++
		}
		if b.Len()+need > limit {
			break
		}
		if sep {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// redactor replaces secret values (and their usual encodings) in text
// that came back from a server.
type redactor []string

// minRedactLen avoids mangling every message for values too short to be
// real secrets.
const minRedactLen = redact.MinLen

func newRedactor(clientID, secret string, sent ...string) redactor {
	var r redactor
	add := func(v string) {
		if len(v) >= minRedactLen {
			r = append(r, v, url.QueryEscape(v), url.PathEscape(v))
		}
	}
	add(secret)
	for _, v := range sent {
		add(v)
	}
	if secret != "" {
		r = append(r, base64.StdEncoding.EncodeToString([]byte(clientID+":"+secret)))
	}
	// Longest first, so that a value is not half-replaced via a substring.
	slices.SortFunc(r, func(a, b string) int {
		if d := len(b) - len(a); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return slices.Compact(r)
}

// apply masks each value where it stands as a whole token, so that a
// value that happens to occur inside a longer word does not mangle it.
func (r redactor) apply(s string) string {
	for _, v := range r {
		s = redact.Replace(s, v, "[REDACTED]")
	}
	return s
}
