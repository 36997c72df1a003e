// Package redact is the safety net that masks known secret values in text
// that may reach a log or a user, such as an error that quotes a server's
// answer. The first line of defence is building messages that never hold a
// secret; this only catches what slips through, so it must never mangle
// ordinary text: it masks only values long enough to be real credentials,
// and only where they stand as a whole token.
package redact

import "strings"

// Mask replaces a secret in text.
const Mask = "<redacted>"

// MinLen is the shortest value that is masked. Every real credential
// upsproxy handles is far longer (UPS client secrets, codes and tokens;
// Vault tokens, secret IDs and wrapping tokens; JWTs), while masking a
// short value such as a test token "t" would turn every "t" of a message
// into the mask and make it unreadable.
const MinLen = 8

// String returns s with every whole-token occurrence of each secret of at
// least MinLen bytes replaced by Mask. Longer secrets are masked first, so
// that a secret containing another is not half-replaced.
func String(s string, secrets ...string) string {
	for _, sec := range byLength(secrets) {
		s = Replace(s, sec, Mask)
	}
	return s
}

// Replace returns s with every whole-token occurrence of secret replaced by
// mask; a secret shorter than MinLen is left alone. An occurrence is a
// whole token unless it is glued to a letter or digit on a side where the
// secret itself begins or ends with one: "tok-abc12345" is masked in
// "token=tok-abc12345;" but not inside "xtok-abc12345y".
func Replace(s, secret, mask string) string {
	if len(secret) < MinLen || !strings.Contains(s, secret) {
		return s
	}
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, secret)
		if i < 0 {
			b.WriteString(rest)
			return b.String()
		}
		end := i + len(secret)
		before := len(s) - len(rest) + i // index of the match in s
		if wholeToken(s, before, before+len(secret), secret) {
			b.WriteString(rest[:i])
			b.WriteString(mask)
		} else {
			b.WriteString(rest[:i+1])
			end = i + 1
		}
		rest = rest[end:]
	}
}

// wholeToken reports whether s[start:end], an occurrence of secret, is not
// glued to a word character on either side.
func wholeToken(s string, start, end int, secret string) bool {
	if start > 0 && isWord(s[start-1]) && isWord(secret[0]) {
		return false
	}
	if end < len(s) && isWord(s[end]) && isWord(secret[len(secret)-1]) {
		return false
	}
	return true
}

func isWord(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// byLength returns the non-empty secrets, longest first.
func byLength(secrets []string) []string {
	out := make([]string, 0, len(secrets))
	for _, s := range secrets {
		if s != "" {
			out = append(out, s)
		}
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && len(out[j]) > len(out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
