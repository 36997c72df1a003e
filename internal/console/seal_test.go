package console

import (
	"bytes"
	"strings"
	"testing"
)

func testSealer(t testing.TB, b byte) *sealer {
	s, err := newSealer(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSeal_OnlyTheSameKeyAndPurposeOpenIt(t *testing.T) {
	a, b := testSealer(t, 1), testSealer(t, 2)
	text, err := a.seal(purposeState, loginState{Carrier: "main", Verifier: "v3rifier-secret"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text, "v3rifier") || strings.ContainsAny(text, "+/=") {
		t.Fatalf("sealed state is readable or not URL-safe: %s", text)
	}
	var st loginState
	if err := a.open(purposeState, text, &st); err != nil || st.Verifier != "v3rifier-secret" {
		t.Fatalf("open = %v, %+v", err, st)
	}
	var s session
	for name, open := range map[string]func() error{
		"another key":     func() error { return b.open(purposeState, text, &st) },
		"another purpose": func() error { return a.open(purposeSession, text, &s) },
		"one bit flipped": func() error { return a.open(purposeState, flip(text), &st) },
		"truncated":       func() error { return a.open(purposeState, text[:len(text)-2], &st) },
		"too long":        func() error { return a.open(purposeState, strings.Repeat("A", maxSealed+1), &st) },
	} {
		if err := open(); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}

func flip(s string) string {
	b := []byte(s)
	if b[10] == 'A' {
		b[10] = 'B'
	} else {
		b[10] = 'A'
	}
	return string(b)
}

func TestCSRF_BoundToTheSession(t *testing.T) {
	s := testSealer(t, 1)
	tok := s.csrfToken("session-1")
	if !s.checkCSRF("session-1", tok) || s.checkCSRF("session-2", tok) || s.checkCSRF("", s.csrfToken("")) || s.checkCSRF("session-1", "") {
		t.Fatal("CSRF check accepts the wrong token")
	}
	if testSealer(t, 2).checkCSRF("session-1", tok) {
		t.Fatal("another key's token passes")
	}
}

// FuzzOpen feeds cookies and state parameters as a hostile browser would:
// open must never panic and never accept what it did not seal.
func FuzzOpen(f *testing.F) {
	s := testSealer(f, 7)
	// sealed once with key 7: session{ID: "x", User: "alice", Exp: 1}
	const good = "m3Od9B00SIPqf5u97b3-AXDZi4_YhHdmfJHgSkD-O0dsutuel6iGkY9N7sv_5mBdnspPYkBdiQ"
	var probe session
	if err := s.open(purposeSession, good, &probe); err != nil || probe.User != "alice" {
		f.Fatalf("the seed no longer opens: %v", err)
	}
	f.Add(good)
	f.Add("")
	f.Add("eyJpIjoieCJ9")
	f.Add(strings.Repeat("_", 64))
	f.Fuzz(func(t *testing.T, text string) {
		var sess session
		if err := s.open(purposeSession, text, &sess); err == nil && text != good {
			// Only a value sealed with this key can open; the fuzzer cannot forge one.
			t.Fatalf("opened an unsealed value %q", text)
		}
	})
}
