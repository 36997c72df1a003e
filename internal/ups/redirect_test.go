package ups

import (
	"strings"
	"testing"
	"unicode"
)

func TestParseRedirect(t *testing.T) {
	tests := []struct {
		name      string
		pasted    string
		wantState string
		want      string
		wantErr   string // substring of the error; "" means success
	}{
		{name: "the seed's example redirect URL", pasted: "https://127.0.0.1/upscallback?code=123abc&scope=read", want: "123abc"},
		{name: "bare code", pasted: "123abc", want: "123abc"},
		{name: "bare code with whitespace and newline around it", pasted: "  123abc \r\n", want: "123abc"},
		{name: "URL in double quotes", pasted: `"https://127.0.0.1/upscallback?code=123abc"`, want: "123abc"},
		{name: "URL in angle brackets as mail clients paste it", pasted: "<https://127.0.0.1/upscallback?code=123abc>", want: "123abc"},
		{name: "code in single quotes", pasted: "'123abc'", want: "123abc"},
		{name: "URL in typographic quotes", pasted: "“https://127.0.0.1/upscallback?code=123abc”", want: "123abc"},
		{name: "query only with question mark", pasted: "?code=123abc&scope=read", want: "123abc"},
		{name: "query only without question mark", pasted: "code=123abc&state=s1", wantState: "s1", want: "123abc"},
		{name: "path and query without scheme and host", pasted: "/upscallback?code=123abc", want: "123abc"},
		{name: "host and path without scheme", pasted: "127.0.0.1/upscallback?code=123abc", want: "123abc"},
		{name: "percent-encoded code in URL is decoded", pasted: "https://127.0.0.1/upscallback?code=ab%2Bc%2Fd%3D", want: "ab+c/d="},
		{name: "percent-encoded bare code is decoded", pasted: "ab%2Bc%3D", want: "ab+c="},
		{name: "plus in a bare code is kept", pasted: "ab+c", want: "ab+c"},
		{name: "code in the fragment", pasted: "https://127.0.0.1/upscallback#code=123abc&state=s1", wantState: "s1", want: "123abc"},
		{name: "state matches", pasted: "https://127.0.0.1/upscallback?code=123abc&state=s1", wantState: "s1", want: "123abc"},
		{name: "state absent from the URL is accepted", pasted: "https://127.0.0.1/upscallback?code=123abc", wantState: "s1", want: "123abc"},
		{name: "state not checked when none is expected", pasted: "https://127.0.0.1/upscallback?code=123abc&state=other", want: "123abc"},
		{name: "same code twice is fine", pasted: "https://127.0.0.1/upscallback?code=123abc&code=123abc", want: "123abc"},

		{name: "state mismatch", pasted: "https://127.0.0.1/upscallback?code=123abc&state=evil", wantState: "s1", wantErr: "state"},
		{name: "second state mismatches", pasted: "https://127.0.0.1/upscallback?code=123abc&state=s1&state=evil", wantState: "s1", wantErr: "state"},
		{name: "access denied with description", pasted: "https://127.0.0.1/upscallback?error=access_denied&error_description=The+user+denied+access&state=s1", wantState: "s1", wantErr: "access_denied (The user denied access)"},
		{name: "error without description", pasted: "https://127.0.0.1/upscallback?error=server_error", wantErr: "did not succeed: server_error"},
		{name: "no code in URL", pasted: "https://127.0.0.1/upscallback?scope=read", wantErr: "no authorization code"},
		{name: "empty code in URL", pasted: "https://127.0.0.1/upscallback?code=&scope=read", wantErr: "no authorization code"},
		{name: "URL without query", pasted: "https://127.0.0.1/upscallback", wantErr: "no authorization code"},
		{name: "two different codes", pasted: "?code=a1&code=b2", wantErr: "more than one"},
		{name: "empty", pasted: "", wantErr: "nothing was pasted"},
		{name: "only whitespace and quotes", pasted: ` "" `, wantErr: "nothing was pasted"},
		{name: "garbage sentence", pasted: "I could not log in", wantErr: "whitespace"},
		{name: "code with inner space in URL", pasted: "https://127.0.0.1/upscallback?code=12+3abc", wantErr: "whitespace"},
		{name: "code with tab escape in URL", pasted: "?code=12%093abc", wantErr: "whitespace"},
		{name: "code with NUL escape in URL", pasted: "?code=12%003abc", wantErr: "control"},
		{name: "line break inside the paste", pasted: "https://127.0.0.1/upscallback?code=1\n23abc", wantErr: "line breaks"},
		{name: "non-ASCII code", pasted: "?code=c%C3%B6de", wantErr: "cannot have"},
		{name: "invalid UTF-8", pasted: "\xff\xfe", wantErr: "UTF-8"},
		{name: "bad percent escape in query", pasted: "?code=%zz", wantErr: "malformed"},
		{name: "bad percent escape in bare code", pasted: "abc%zz", wantErr: "malformed"},
		{name: "unparsable URL", pasted: "https://[::1/upscallback?code=abc", wantErr: "not a valid URL"},
		{name: "too long", pasted: "https://127.0.0.1/upscallback?code=" + strings.Repeat("a", 9000), wantErr: "too long"},
		{name: "code too long", pasted: "?code=" + strings.Repeat("a", 3000), wantErr: "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRedirect(tt.pasted, tt.wantState)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseRedirect = %q, want an error mentioning %q", got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %q, want it to mention %q", err, tt.wantErr)
				}
				if strings.ContainsAny(err.Error(), "\r\n") {
					t.Errorf("error spans lines: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("error = %v, want code %q", err, tt.want)
			}
			if got != tt.want {
				t.Errorf("code = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseRedirectErrorsDoNotRepeatTheCode(t *testing.T) {
	// The admin's terminal may be recorded; a rejected paste need not be
	// echoed back in full.
	_, err := ParseRedirect("https://[::1/upscallback?code=SECRETCODE", "")
	if err == nil || strings.Contains(err.Error(), "SECRETCODE") {
		t.Errorf("error = %v, want one that does not quote the code", err)
	}
}

func TestParseRedirectWithStateNeedsTheState(t *testing.T) {
	for _, tc := range []struct{ pasted, want string }{
		{"https://127.0.0.1/upscallback?code=abc&state=s1", ""},
		{"?state=s1&code=abc", ""},
		{"https://127.0.0.1/upscallback#code=abc&state=s1", ""},
		{"abc", "a code alone has no state"},
		{"https://127.0.0.1/upscallback?code=abc", "has no state"},
		{"code=abc", "has no state"},
		{"https://127.0.0.1/upscallback?code=abc&state=", "does not match"},
		{"https://127.0.0.1/upscallback?code=abc&state=s2", "does not match"},
		{"https://127.0.0.1/upscallback?code=abc&state=s1&state=s2", "does not match"},
		{"?error=access_denied", "did not succeed"},
	} {
		code, err := ParseRedirectWithState(tc.pasted, "s1")
		switch {
		case tc.want == "" && (err != nil || code != "abc"):
			t.Errorf("%q: %q, %v", tc.pasted, code, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || code != ""):
			t.Errorf("%q: %q, %v; want an error saying %q", tc.pasted, code, err, tc.want)
		}
	}
	if _, err := ParseRedirectWithState("?code=abc&state=", ""); err == nil {
		t.Error("no state to check against, yet accepted")
	}
}

func FuzzParseRedirect(f *testing.F) {
	for _, seed := range []string{
		"https://127.0.0.1/upscallback?code=123abc&scope=read",
		"https://127.0.0.1/upscallback?code=123abc&state=s1",
		"https://127.0.0.1/upscallback#code=123abc",
		"?error=access_denied&error_description=denied",
		"<\"123abc\">", "code=a&code=b", "%", "?code=%zz", "https://[::1", "“”", "\x00",
		" ab%2Bc ", "a+b", "?code=a+b",
	} {
		f.Add(seed, "")
		f.Add(seed, "s1")
	}
	f.Fuzz(func(t *testing.T, pasted, state string) {
		code, err := ParseRedirect(pasted, state)
		if strict, serr := ParseRedirectWithState(pasted, state); serr == nil && (strict != code || err != nil) {
			t.Fatalf("the strict parser accepted %q (code %q) where ParseRedirect gave %q, %v", pasted, strict, code, err)
		}
		if err != nil {
			if code != "" {
				t.Fatalf("error %v with code %q", err, code)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if code == "" {
			t.Fatal("success with an empty code")
		}
		for _, r := range code {
			if unicode.IsSpace(r) || unicode.IsControl(r) {
				t.Fatalf("code %q contains whitespace or control characters", code)
			}
		}
	})
}
