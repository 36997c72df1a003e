package ups

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// maxLifetime bounds expires_in and refresh_token_expires_in: anything
// longer is garbage, and would overflow time.Duration further on.
const maxLifetime = 100 * 365 * 24 * time.Hour

// TokenResponse is UPS's token JSON as UPS writes it: every field a string,
// numbers included, in the order of the spec's generateTokenSuccessResponse;
// client_credentials answers have no refresh_* fields. The simulator and
// the proxy's own OAuth endpoint write it; ParseTokenResponse reads it (and
// is lenient where UPS might not be).
type TokenResponse struct {
	RefreshTokenExpiresIn string `json:"refresh_token_expires_in,omitempty"`
	RefreshTokenStatus    string `json:"refresh_token_status,omitempty"`
	TokenType             string `json:"token_type"`
	IssuedAt              string `json:"issued_at"`
	ClientID              string `json:"client_id"`
	AccessToken           string `json:"access_token"`
	RefreshToken          string `json:"refresh_token,omitempty"`
	Scope                 string `json:"scope"`
	RefreshTokenIssuedAt  string `json:"refresh_token_issued_at,omitempty"`
	ExpiresIn             string `json:"expires_in"`
	RefreshCount          string `json:"refresh_count"`
	Status                string `json:"status"`
}

// FormatLifetime renders a lifetime as UPS's *expires_in fields do: whole
// seconds, one short ("14399" for four hours, "5183999" for 60 days), so a
// client adding it to its own receipt time stays on the safe side.
// Lifetimes under two seconds are not shortened, so the simulator's tiny
// test TTLs stay usable; negative ones are "0".
func FormatLifetime(d time.Duration) string {
	secs := int64(d / time.Second)
	if secs >= 2 {
		secs--
	}
	if secs < 0 {
		secs = 0
	}
	return strconv.FormatInt(secs, 10)
}

// FormatEpochMillis renders t as UPS's *issued_at fields do: milliseconds
// since the epoch.
func FormatEpochMillis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// ParseTokenResponse converts the body of a successful UPS token or refresh
// response into a Token. UPS sends every field as a JSON string, numbers
// included; JSON numbers are accepted too. Expiries are receivedAt plus the
// *_in lifetimes (the server's clock may be off; ours decides when to
// refresh); IssuedAt comes from issued_at (epoch ms), else receivedAt.
//
// Errors wrap ErrMalformedResponse. Even then the returned Token holds what
// could be read, in particular a refresh token: after a refresh it is the
// only valid one left, so a caller must not throw it away. Error texts never
// contain token values.
func ParseTokenResponse(body []byte, receivedAt time.Time) (Token, error) {
	fields, err := decodeTokenJSON(body)
	if err != nil {
		return Token{}, fmt.Errorf("%w: %w", ErrMalformedResponse, err)
	}
	return tokenFromFields(fields, receivedAt)
}

func decodeTokenJSON(body []byte) (map[string]any, error) {
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0:
		return nil, errors.New("empty body")
	case trimmed[0] == '<':
		return nil, errors.New("got an HTML page instead of JSON")
	case trimmed[0] != '{':
		return nil, errors.New("body is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: data after the object")
	}
	return m, nil
}

// tokenFromFields converts decoded fields. It reads all of them before
// reporting the first problem, so that the partial Token is as full as
// possible.
func tokenFromFields(m map[string]any, receivedAt time.Time) (Token, error) {
	f := fieldReader{m: m}
	t := Token{
		AccessToken:        f.text("access_token"),
		RefreshToken:       f.text("refresh_token"),
		TokenType:          f.text("token_type"),
		Scope:              f.text("scope"),
		ClientID:           f.text("client_id"),
		Status:             f.text("status"),
		RefreshTokenStatus: f.text("refresh_token_status"),
	}
	if t.TokenType == "" {
		t.TokenType = "Bearer"
	}
	if t.AccessToken == "" && f.err == nil {
		f.err = errors.New("no access_token in the response")
	}

	if d, ok := f.lifetime("expires_in"); ok {
		t.ExpiresAt = receivedAt.Add(d)
	} else if f.err == nil {
		f.err = errors.New("no expires_in in the response")
	}
	t.IssuedAt = f.epochMillis("issued_at", receivedAt)

	if d, ok := f.lifetime("refresh_token_expires_in"); ok {
		t.RefreshExpiresAt = receivedAt.Add(d)
	}
	if t.RefreshToken != "" {
		t.RefreshIssuedAt = f.epochMillis("refresh_token_issued_at", receivedAt)
	} else {
		t.RefreshIssuedAt = f.epochMillis("refresh_token_issued_at", time.Time{})
	}
	if n, ok := f.integer("refresh_count"); ok {
		if n < 0 || n > math.MaxInt32 {
			f.fail("refresh_count", n)
		} else {
			t.RefreshCount = int(n)
		}
	}
	if f.err != nil {
		return t, fmt.Errorf("%w: %w", ErrMalformedResponse, f.err)
	}
	return t, nil
}

// fieldReader reads UPS's string-typed fields, remembering the first error.
type fieldReader struct {
	m   map[string]any
	err error
}

func (f *fieldReader) setErr(err error) {
	if f.err == nil {
		f.err = err
	}
}

func (f *fieldReader) fail(name string, v any) {
	s := fmt.Sprint(v)
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	f.setErr(fmt.Errorf("%s: %q is out of range", name, s))
}

// text returns a string field; the value is never put in an error, since
// it may be a token.
func (f *fieldReader) text(name string) string {
	switch v := f.m[name].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		f.setErr(fmt.Errorf("%s: want a JSON string, got %s", name, jsonType(v)))
		return ""
	}
}

// integer returns a whole number sent as a string or a JSON number; ok is
// false when the field is absent, null or "".
func (f *fieldReader) integer(name string) (n int64, ok bool) {
	var s string
	switch v := f.m[name].(type) {
	case nil:
		return 0, false
	case string:
		s = strings.TrimSpace(v)
		if s == "" {
			return 0, false
		}
	case json.Number:
		s = v.String()
	case float64: // from a decoder without UseNumber
		if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
			f.setErr(fmt.Errorf("%s: %v is not a whole number", name, v))
			return 0, false
		}
		return int64(v), true
	default:
		f.setErr(fmt.Errorf("%s: want a number in a JSON string, got %s", name, jsonType(v)))
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// A JSON number may be written 1.4399e4; accept it when whole.
		fl, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || fl != math.Trunc(fl) || math.Abs(fl) > 1<<53 {
			if len(s) > 40 {
				s = s[:40] + "..."
			}
			f.setErr(fmt.Errorf("%s: %q is not a whole number", name, s))
			return 0, false
		}
		n = int64(fl)
	}
	return n, true
}

// lifetime returns a positive number of seconds as a duration.
func (f *fieldReader) lifetime(name string) (time.Duration, bool) {
	n, ok := f.integer(name)
	if !ok {
		return 0, false
	}
	if n <= 0 || n > int64(maxLifetime/time.Second) {
		f.fail(name, n)
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

// epochMillis returns a time given in epoch milliseconds, or def when the
// field is absent or unusable.
func (f *fieldReader) epochMillis(name string, def time.Time) time.Time {
	n, ok := f.integer(name)
	if !ok {
		return def
	}
	// Between 1970 and 9999: anything else is not a UPS timestamp.
	if n <= 0 || n > 253402300799999 {
		f.fail(name, n)
		return def
	}
	return time.UnixMilli(n).UTC()
}

func jsonType(v any) string {
	switch v.(type) {
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", v)
	}
}
