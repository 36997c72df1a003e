package ups

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits for ParseRedirect.
const (
	maxPasteLen = 8 << 10
	maxCodeLen  = 2048
)

// ParseRedirect parses what an admin pastes after login: a full redirect URL
// (e.g. the seed's "https://127.0.0.1/upscallback?code=123abc&scope=read"),
// a URL with the query only, or a bare code (with trimming of whitespace,
// surrounding quotes/angle brackets). If wantState != "" and the URL
// carries a state, it must match. An `error=access_denied` (with
// error_description) gives a clear error. No code, garbage, a code
// containing whitespace or control chars, too long input (>8 KiB) → clear
// one-line errors.
func ParseRedirect(pasted, wantState string) (code string, err error) {
	return parseRedirect(pasted, wantState, false)
}

// ParseRedirectWithState is ParseRedirect for a caller that must tie the
// code to the login it started: the pasted text must be the redirect with
// its state, and the state must be wantState. A bare code, or a URL
// without its state, is refused: it may come from another login of the
// same UPS application, whose tokens would then be stored under this one.
func ParseRedirectWithState(pasted, wantState string) (code string, err error) {
	if wantState == "" {
		return "", errors.New("no login state to check the pasted URL against")
	}
	return parseRedirect(pasted, wantState, true)
}

func parseRedirect(pasted, wantState string, needState bool) (code string, err error) {
	if len(pasted) > maxPasteLen {
		return "", fmt.Errorf("the pasted text is too long (%d bytes, at most %d): paste only the redirect URL or the code", len(pasted), maxPasteLen)
	}
	s := trimPaste(pasted)
	if s == "" {
		return "", errors.New("nothing was pasted: paste the URL the browser landed on after the UPS login, or its code")
	}
	if !utf8.ValidString(s) {
		return "", errors.New("the pasted text is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", errors.New("the pasted text contains control characters or line breaks: paste the redirect URL on one line")
		}
	}

	if needState && !strings.Contains(s, "://") && !strings.ContainsAny(s, "?#=&") {
		return "", errors.New("a code alone has no state to tie it to this login: paste the whole address the browser landed on")
	}
	if !strings.Contains(s, "://") && !strings.ContainsAny(s, "?#=&") {
		// A bare code. Copied out of an address bar it may be
		// percent-encoded; PathUnescape leaves '+' alone.
		c, err := url.PathUnescape(s)
		if err != nil {
			return "", errors.New("the pasted code has a malformed %-escape")
		}
		return checkCode(c)
	}

	params, err := redirectParams(s)
	if err != nil {
		return "", err
	}
	if e := first(params["error"]); e != "" {
		msg := fmt.Sprintf("the UPS login did not succeed: %s", oneLine(e, 100))
		if d := first(params["error_description"]); d != "" {
			msg += fmt.Sprintf(" (%s)", oneLine(d, 300))
		}
		return "", errors.New(msg + "; start the login again")
	}
	if needState && len(params["state"]) == 0 {
		return "", errors.New("the pasted URL has no state to tie it to this login: paste the whole address the browser landed on")
	}
	if wantState != "" {
		for _, st := range params["state"] {
			if subtle.ConstantTimeCompare([]byte(st), []byte(wantState)) != 1 {
				return "", errors.New("the state in the pasted URL does not match this login: paste the URL from the login just started")
			}
		}
	}
	var codes []string
	for _, c := range params["code"] {
		if c != "" && (len(codes) == 0 || codes[0] != c) {
			codes = append(codes, c)
		}
	}
	switch len(codes) {
	case 0:
		return "", errors.New("no authorization code in the pasted URL (expected ...?code=...)")
	case 1:
		return checkCode(codes[0])
	default:
		return "", errors.New("the pasted URL carries more than one different code")
	}
}

// trimPaste removes surrounding whitespace and pairs of quotes or angle
// brackets that terminals, mail clients and chat tools add.
func trimPaste(s string) string {
	pairs := []string{`""`, `''`, "``", "<>", "“”", "‘’", "«»"}
	for {
		s = strings.TrimSpace(s)
		trimmed := false
		for _, p := range pairs {
			open, size := utf8.DecodeRuneInString(p)
			closing := p[size:]
			if len(s) >= len(p) && strings.HasPrefix(s, string(open)) && strings.HasSuffix(s, closing) {
				s = s[size : len(s)-len(closing)]
				trimmed = true
				break
			}
		}
		if !trimmed {
			return s
		}
	}
}

// redirectParams returns the parameters of the query and of the fragment
// (some flows put them there) of a full URL, a path with a query, or a
// bare query string.
func redirectParams(s string) (url.Values, error) {
	var query, fragment string
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			// url's error would repeat the whole URL, code included.
			return nil, errors.New("the pasted text is not a valid URL")
		}
		query, fragment = u.RawQuery, u.EscapedFragment()
	} else {
		rest := s
		if i := strings.IndexByte(rest, '#'); i >= 0 {
			rest, fragment = rest[:i], rest[i+1:]
		}
		if i := strings.IndexByte(rest, '?'); i >= 0 {
			query = rest[i+1:]
		} else if strings.Contains(rest, "=") {
			query = rest
		}
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("the query of the pasted URL is malformed: %w", err)
	}
	if strings.Contains(fragment, "=") {
		fp, err := url.ParseQuery(fragment)
		if err != nil {
			return nil, fmt.Errorf("the fragment of the pasted URL is malformed: %w", err)
		}
		for k, v := range fp {
			params[k] = append(params[k], v...)
		}
	}
	return params, nil
}

func first(v []string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// checkCode enforces RFC 6749's code syntax (1*VSCHAR: printable ASCII) so
// that only a plausible code is sent to UPS, spending nothing on garbage.
func checkCode(c string) (string, error) {
	if c == "" {
		return "", errors.New("the pasted code is empty")
	}
	if len(c) > maxCodeLen {
		return "", fmt.Errorf("the pasted code is too long (%d bytes, at most %d)", len(c), maxCodeLen)
	}
	for _, r := range c {
		switch {
		case unicode.IsSpace(r):
			return "", errors.New("the pasted code contains whitespace: paste the redirect URL or the code alone")
		case unicode.IsControl(r):
			return "", errors.New("the pasted code contains control characters")
		case r < 0x21 || r > 0x7e:
			return "", errors.New("the pasted code contains characters a UPS code cannot have")
		}
	}
	return c, nil
}
