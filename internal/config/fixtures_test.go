package config

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// Environment variables the fixtures and the example configuration read.
const (
	testClientSecret = "s3cr3t+from%env value"
	testRoleID       = "role-from-env"
	// unsetVar is read by the fixture that checks env() of an unset variable.
	unsetVar = "UPSPROXY_TEST_SURELY_UNSET_VARIABLE"
)

func setFixtureEnv(t *testing.T) {
	t.Helper()
	t.Setenv("UPS_CLIENT_SECRET", testClientSecret)
	t.Setenv("UPSPROXY_TEST_ROLE_ID", testRoleID)
	if _, ok := os.LookupEnv(unsetVar); ok {
		t.Fatalf("%s must not be set when running these tests", unsetVar)
	}
}

// fixtureWant is the expectation written in the first line of an invalid or
// warning fixture: "# want: LINE:COL text".
type fixtureWant struct {
	line, col int
	text      string
}

var wantLine = regexp.MustCompile(`^#\s*want:\s*(\d+):(\d+)\s+(.+)$`)

func readWant(t *testing.T, path string) fixtureWant {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		t.Fatalf("%s is empty; its first line must be \"# want: LINE:COL text\"", path)
	}
	m := wantLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
	if m == nil {
		t.Fatalf("%s: first line %q is not \"# want: LINE:COL text\"", path, sc.Text())
	}
	line, _ := strconv.Atoi(m[1])
	col, _ := strconv.Atoi(m[2])
	return fixtureWant{line: line, col: col, text: m[3]}
}

func fixtures(t *testing.T, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", dir, "*.hcl"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures in testdata/%s: %v", dir, err)
	}
	return paths
}

// matches reports whether d is at the wanted position and mentions the
// wanted text in its summary or detail.
func (w fixtureWant) matches(d *hcl.Diagnostic) bool {
	if d.Subject == nil || d.Subject.Start.Line != w.line || d.Subject.Start.Column != w.col {
		return false
	}
	msg := strings.ToLower(d.Summary + " " + d.Detail)
	return strings.Contains(msg, strings.ToLower(w.text))
}

func describe(diags hcl.Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		pos := "(no position)"
		if d.Subject != nil {
			pos = position(d.Subject)
		}
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		b.WriteString("\n  " + pos + " " + sev + ": " + d.Summary + ": " + d.Detail)
	}
	return b.String()
}

func errorsOf(diags hcl.Diagnostics) hcl.Diagnostics { return filter(diags, hcl.DiagError) }

func warningsOf(diags hcl.Diagnostics) hcl.Diagnostics { return filter(diags, hcl.DiagWarning) }

func filter(diags hcl.Diagnostics, sev hcl.DiagnosticSeverity) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, d := range diags {
		if d.Severity == sev {
			out = append(out, d)
		}
	}
	return out
}

func TestEveryValidFixtureLoadsWithoutAnyDiagnostic(t *testing.T) {
	setFixtureEnv(t)
	for _, path := range fixtures(t, "valid") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			cfg, _, diags := Load(path)
			if len(diags) > 0 {
				t.Fatalf("want no diagnostics, got:%s", describe(diags))
			}
			if cfg == nil {
				t.Fatal("Load returned a nil Config without errors")
			}
			if cfg.Path != path {
				t.Errorf("Config.Path = %q, want %q", cfg.Path, path)
			}
		})
	}
}

func TestEveryInvalidFixtureFailsWithExactlyTheExpectedErrorAtTheOffendingPosition(t *testing.T) {
	setFixtureEnv(t)
	for _, path := range fixtures(t, "invalid") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			want := readWant(t, path)
			cfg, _, diags := Load(path)
			if cfg != nil {
				t.Errorf("Load returned a Config for an invalid file")
			}
			errs := errorsOf(diags)
			if len(errs) != 1 {
				t.Fatalf("want exactly one error (%d:%d %q), got %d:%s", want.line, want.col, want.text, len(errs), describe(diags))
			}
			if !want.matches(errs[0]) {
				t.Fatalf("want an error at %d:%d mentioning %q, got:%s", want.line, want.col, want.text, describe(diags))
			}
		})
	}
}

func TestEveryWarningFixtureLoadsButWarnsAtTheOffendingPosition(t *testing.T) {
	setFixtureEnv(t)
	for _, path := range fixtures(t, "warning") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			want := readWant(t, path)
			cfg, _, diags := Load(path)
			if diags.HasErrors() || cfg == nil {
				t.Fatalf("want a usable Config with a warning, got:%s", describe(diags))
			}
			warns := warningsOf(diags)
			if len(warns) != 1 || !want.matches(warns[0]) {
				t.Fatalf("want exactly one warning at %d:%d mentioning %q, got:%s", want.line, want.col, want.text, describe(diags))
			}
		})
	}
}
