package clienttoken

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func testSigner(t testing.TB, fill byte) *Signer {
	t.Helper()
	s, err := NewSigner(bytes.Repeat([]byte{fill}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var t0 = time.Unix(1_780_000_000, 0)

func TestIssueThenVerifyGivesTheClaimsBackUntilExpiry(t *testing.T) {
	s := testSigner(t, 1)
	in := Claims{Kind: Access, Authenticated: true, Client: "shop-floor", Carrier: "acme",
		IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	tok, err := s.Issue(in)
	if err != nil {
		t.Fatal(err)
	}
	if !IsToken(tok) || strings.ContainsAny(tok, "+/= ") {
		t.Fatalf("token %q: no prefix or not URL/header-safe", tok)
	}
	for i := 0; i < 2; i++ { // the second answer comes from the cache
		got, err := s.Verify(tok, Access, t0.Add(59*time.Minute))
		if err != nil || got != in {
			t.Fatalf("verify #%d: %+v, %v; want %+v", i, got, err, in)
		}
	}
	if _, err := s.Verify(tok, Access, t0.Add(time.Hour)); !errors.Is(err, ErrExpired) {
		t.Fatalf("at expiry: %v, want ErrExpired", err)
	}
	if _, err := s.Verify(tok, Refresh, t0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("access token as refresh token: %v, want ErrMalformed", err)
	}
	other, _ := s.Issue(in)
	if other == tok {
		t.Fatal("two tokens with the same claims are equal: no nonce")
	}
}

func TestAnotherKeyOrAnyChangedCharacterIsRefused(t *testing.T) {
	s := testSigner(t, 1)
	tok, err := s.Issue(Claims{Kind: Refresh, Client: "c", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testSigner(t, 2).Verify(tok, Refresh, t0); !errors.Is(err, ErrSignature) {
		t.Fatalf("other key: %v, want ErrSignature", err)
	}
	for i := len(Prefix); i < len(tok); i++ {
		b := []byte(tok)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		if _, err := s.Verify(string(b), Refresh, t0); err == nil {
			t.Fatalf("token changed at %d accepted", i)
		}
	}
	for _, bad := range []string{"", "eyJhbGciOi.x.y", Prefix, Prefix + ".", tok + "x", strings.Replace(tok, ".", "", 1)} {
		if _, err := s.Verify(bad, Refresh, t0); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
	if _, err := s.Verify("some-ups-token", Access, t0); !errors.Is(err, ErrNotOurs) {
		t.Fatalf("UPS token: %v, want ErrNotOurs", err)
	}
}

func TestAPayloadThatDoesNotDecodeIsMalformedEvenWithAValidSignature(t *testing.T) {
	s := testSigner(t, 1)
	enc := base64.RawURLEncoding
	for _, p := range [][]byte{{}, {9}, bytes.Repeat([]byte{1}, fixedLen+1), append(append([]byte{1, 'a', 0}, make([]byte, 8+8+nonceSize)...), 5, 'x')} {
		signed := Prefix + enc.EncodeToString(p)
		mac := s.sum(signed)
		if _, err := s.Verify(signed+"."+enc.EncodeToString(mac[:]), Access, t0); !errors.Is(err, ErrMalformed) {
			t.Fatalf("payload %x: %v, want ErrMalformed", p, err)
		}
	}
}

func TestNamesOver255BytesAndUnknownKindsAreNotIssued(t *testing.T) {
	s := testSigner(t, 1)
	if _, err := s.Issue(Claims{Kind: Access, Client: strings.Repeat("x", 256)}); err == nil {
		t.Fatal("long client name issued")
	}
	if _, err := s.Issue(Claims{Kind: 'z'}); err == nil {
		t.Fatal("unknown kind issued")
	}
	if _, err := NewSigner(make([]byte, 16)); err == nil {
		t.Fatal("short key accepted")
	}
	long, err := s.Issue(Claims{Kind: Access, Client: strings.Repeat("x", 255), Carrier: strings.Repeat("y", 255), ExpiresAt: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(long) > maxTokenLen {
		t.Fatalf("longest token is %d bytes, over maxTokenLen %d", len(long), maxTokenLen)
	}
	if _, err := s.Verify(long, Access, t0); err != nil {
		t.Fatalf("longest token: %v", err)
	}
}

func TestTheCacheStaysBounded(t *testing.T) {
	s := testSigner(t, 1)
	for i := 0; i < cacheSize+10; i++ {
		tok, _ := s.Issue(Claims{Kind: Access, ExpiresAt: t0.Add(time.Hour)})
		if _, err := s.Verify(tok, Access, t0); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s.cache.m); n > cacheSize {
		t.Fatalf("cache holds %d tokens, bound %d", n, cacheSize)
	}
}

func TestVerifyingACachedTokenAllocatesNothing(t *testing.T) {
	s := testSigner(t, 1)
	tok, _ := s.Issue(Claims{Kind: Access, Client: "c", Carrier: "k", ExpiresAt: t0.Add(time.Hour)})
	if _, err := s.Verify(tok, Access, t0); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = s.Verify(tok, Access, t0) }); n != 0 {
		t.Fatalf("%v allocations per verification of a known token", n)
	}
}

// FuzzVerify feeds Verify arbitrary presented tokens: it must never panic,
// and only what the signer issued may pass.
func FuzzVerify(f *testing.F) {
	s := testSigner(f, 7)
	tok, _ := s.Issue(Claims{Kind: Access, Authenticated: true, Client: "c", Carrier: "k", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)})
	f.Add(tok)
	f.Add(Prefix + "AAAA.AAAA")
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.x")
	f.Add(Prefix)
	f.Fuzz(func(t *testing.T, in string) {
		c, err := s.Verify(in, Access, t0)
		if err == nil && in != tok {
			t.Fatalf("forged token accepted: %q -> %+v", in, c)
		}
		_ = IsToken(in)
	})
}

func BenchmarkVerify(b *testing.B) {
	s := testSigner(b, 1)
	tok, _ := s.Issue(Claims{Kind: Access, Client: "client", Carrier: "carrier", ExpiresAt: t0.Add(time.Hour)})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = s.Verify(tok, Access, t0)
		}
	})
	b.Run("uncached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = s.parse(tok)
		}
	})
}

// A 32-byte MAC is 43 base64 characters whose last one carries two unused
// bits: a lenient decoder reads four spellings of it as the same MAC, so
// a changed token would still verify. Only the issued spelling may.
func TestTheMACsUnusedBitsCannotBeChanged(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	s := testSigner(t, 1)
	for i := range 8 {
		tok, err := s.Issue(Claims{Kind: Access, Client: strings.Repeat("c", i+1), IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		last := strings.IndexByte(alphabet, tok[len(tok)-1])
		for bits := 1; bits < 4; bits++ {
			other := tok[:len(tok)-1] + string(alphabet[last^bits])
			if _, err := s.Verify(other, Access, t0); err == nil {
				t.Fatalf("token %d with its last character %q changed to %q accepted", i, tok[len(tok)-1], other[len(other)-1])
			}
		}
	}
}
