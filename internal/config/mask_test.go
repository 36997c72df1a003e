package config

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// printed loads src and returns what WriteDiagnostics prints for it.
func printed(t *testing.T, src string) string {
	t.Helper()
	_, files, diags := LoadBytes([]byte(src), "c.hcl")
	if len(diags) == 0 {
		t.Fatalf("want diagnostics for:\n%s", src)
	}
	var out bytes.Buffer
	for _, color := range []bool{false, true} {
		if err := files.WriteDiagnostics(&out, diags, color); err != nil {
			t.Fatal(err)
		}
	}
	return out.String()
}

const carrierHead = `carrier "main" {
  environment   = "test"
  client_id     = "id"
  redirect_uri  = "https://127.0.0.1/upscallback"
`

// The literal-secret warning points at the secret's line; the snippet it
// prints must not show the secret, however the value is written and even
// when the file does not parse.
func TestDiagnosticSnippetsNeverShowSecretValues(t *testing.T) {
	const secret = "pasted-Secret-9f8e7d"
	tests := []struct {
		name, src string
		keep      []string // what must still be shown
	}{
		{"literal (the start-up warning)", carrierHead + `  client_secret = "` + secret + `"
}
`, []string{`client_secret = "********************"`, "c.hcl:5:19: Warning: client_secret is a literal"}},
		{"literal with an error elsewhere in the block", carrierHead + `  client_secret = "` + secret + `" # ` + secret + `
  grant = "bogus"
}
`, []string{`grant = "bogus"`}},
		{"heredoc", carrierHead + "  client_secret = <<EOT\n" + secret + "\nEOT\n}\n", nil},
		{"bare word", carrierHead + "  client_secret = " + secret + "x\n}\n", nil},
		{"unterminated string (a parse error)", carrierHead + `  client_secret = "` + secret + "\n}\n", nil},
		{"bad escape (a parse error)", carrierHead + `  client_secret = "` + secret + `\q"` + "\n}\n", nil},
		{"template with an unknown variable", carrierHead + `  client_secret = "` + secret + `${nope}"` + "\n}\n", nil},
		{"unknown function", carrierHead + `  client_secret = upper("` + secret + `")` + "\n}\n", []string{"upper("}},
		{"SMTP password", `notify "x" {
  email {
    host     = "smtp.example.com"
    from     = "a@example.com"
    username = "u"
    password = "` + secret + `"
    to       = ["b@example.com"]
  }
}
`, []string{`password = "********************"`, "password is a literal"}},
		{"webhook URL and header", `notify "x" {
  webhook {
    url     = "https://hooks.example.com/` + secret + `" + 1
    headers = {
      Authorization = "Bearer ` + secret + `"
      "X-Other"     = 5
    }
  }
}
`, []string{"Authorization = \"", "url     = \"*"}},
		{"password hash", `client "shop" {
  password_hash = "` + secret + `"
}
` + carrierHead + "  client_secret = env(\"UPS_SECRET_UNSET_FOR_TEST\")\n}\n", []string{`env("UPS_SECRET_UNSET_FOR_TEST")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := printed(t, tt.src)
			if strings.Contains(out, secret) || strings.Contains(out, secret[:12]) {
				t.Errorf("diagnostics show the secret:\n%s", out)
			}
			for _, want := range tt.keep {
				if !strings.Contains(out, want) {
					t.Errorf("diagnostics lack %q:\n%s", want, out)
				}
			}
		})
	}
}

// Masking keeps every byte offset, so snippets and positions still point at
// the right line and column, and leaves everything else alone.
func TestMaskSecretsKeepsLayoutAndOtherValues(t *testing.T) {
	src := "client_id = \"visible\"\n# client_secret = \"in a comment\"\nclient_secret = \"abc\" // trailing\nclient_secret = vault(\"kv/data/ups\", \"secret\")\nnext = \"shown\"\n"
	got := string(maskSecrets([]byte(src)))
	want := "client_id = \"visible\"\n# client_secret = \"in a comment\"\nclient_secret = \"***\" ***********\nclient_secret = vault(\"kv/data/ups\", \"secret\")\nnext = \"shown\"\n"
	if got != want {
		t.Errorf("maskSecrets:\n got %q\nwant %q", got, want)
	}
	if len(got) != len(src) {
		t.Errorf("length changed: %d -> %d", len(src), len(got))
	}
	var nilFiles map[string]*hcl.File
	if m := maskedFiles(nilFiles); len(m) != 0 {
		t.Errorf("maskedFiles(nil) = %v", m)
	}
}

// FuzzMaskSecrets: whatever the file holds, masking never panics, keeps the
// length and every line break, and changes nothing but to '*'.
func FuzzMaskSecrets(f *testing.F) {
	addFixtureSeeds(f)
	f.Add([]byte(carrierHead + "  client_secret = \"x${a}\\q\n}\n"))
	f.Add([]byte("client_secret = <<EOT\nabc\nEOT\npassword_hash = [\"a\",\n\"b\"]\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		got := maskSecrets(src)
		if len(got) != len(src) {
			t.Fatalf("length %d -> %d", len(src), len(got))
		}
		for i := range src {
			if got[i] != src[i] && (got[i] != '*' || src[i] == '\n' || src[i] == '\r') {
				t.Fatalf("byte %d: %q -> %q", i, src[i], got[i])
			}
		}
	})
}

// Every attribute the loader evaluates as a Secret is masked in snippets: a
// new one added without a secretAttributes entry fails here.
func TestEverySecretAttributeIsMasked(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	call := regexp.MustCompile(`bd\.secret\(b, "([a-z_]+)"`)
	found := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range call.FindAllSubmatch(src, -1) {
			found++
			if !secretAttributes[string(m[1])] {
				t.Errorf("%s: secret attribute %q is missing from secretAttributes", f, m[1])
			}
		}
	}
	if found < 3 {
		t.Errorf("found only %d bd.secret calls; has the loader changed?", found)
	}
}
