package config

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// sandbox evaluates env() and file() without touching the host, so fuzzed
// input cannot block on a device file or depend on the machine.
func sandbox() environment {
	return environment{
		lookupEnv: func(name string) (string, bool) {
			if name == unsetVar {
				return "", false
			}
			return "fuzz-" + name, true
		},
		readFile: func(path string) ([]byte, error) {
			if filepath.Base(path) == "client-secret.txt" {
				return []byte("fuzz-secret\n"), nil
			}
			return nil, errors.New("no such file in the sandbox")
		},
	}
}

func addFixtureSeeds(f *testing.F) {
	f.Helper()
	for _, dir := range []string{"valid", "invalid", "warning"} {
		paths, err := filepath.Glob(filepath.Join("testdata", dir, "*.hcl"))
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	if b, err := os.ReadFile(exampleConfig); err == nil {
		f.Add(b)
	}
}

// FuzzLoadBytes checks that no input makes loading or printing its
// diagnostics panic, and that the result is coherent: a Config exactly when
// there are no errors.
func FuzzLoadBytes(f *testing.F) {
	addFixtureSeeds(f)
	f.Add([]byte(`carrier "x" { environment = "test" }`))
	f.Add([]byte("limits {\n max_request_body = \"9223372036854775807GiB\"\n}\n"))
	f.Add([]byte("client_secret = vault(\"a\", \"b\")\n"))
	f.Add([]byte("ups {\n egress_proxy = \"http://u:p%40w@[::1]:3128\"\n}\ncarrier \"m\" {\n client_secret = vault(\"kv/data/x/../y\", \"f\")\n}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		if src == nil {
			src = []byte{}
		}
		cfg, files, diags := sandbox().loadBytes(src, "fuzz/upsproxy.hcl")
		if (cfg == nil) != diags.HasErrors() {
			t.Fatalf("cfg nil = %v but HasErrors = %v", cfg == nil, diags.HasErrors())
		}
		if files == nil {
			t.Fatal("Files is nil")
		}
		if err := files.WriteDiagnostics(io.Discard, diags, true); err != nil {
			t.Fatalf("WriteDiagnostics: %v", err)
		}
	})
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"10MiB", "1 KB", "0", "", "GiB", "9223372036854775807", "9223372036854775808", "8589934592GiB", "-1", "1.5MiB", " 7 b "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("ParseSize(%q) = %d, negative without error", s, n)
		}
	})
}
