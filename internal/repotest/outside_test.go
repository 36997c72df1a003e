package repotest

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// root is the repository root, relative to this package's folder (the
// working directory of `go test`).
const root = "../.."

// machinePath matches absolute paths of one developer machine: the shared
// work area these helpers were written in, home folders, Windows profiles.
// The patterns are spelled so that this file does not match itself.
var machinePath = regexp.MustCompile(`/wor[k]/|/home/[A-Za-z0-9_.-]+|/User[s]/[A-Za-z0-9_.-]+|/roo[t]/|[A-Za-z]:\\User[s]\\|\bshare[d]/ups-openapi`)

// allowedMachinePaths are absolute paths that name a place inside a
// container image, not on anyone's machine.
var allowedMachinePaths = map[string]bool{
	"/home/nonroot": true, // the distroless image's home (Dockerfile, compose)
}

// relPath matches a relative path that climbs (../x), where it starts a
// token, so "a/../b" inside a URL is not taken for one.
var relPath = regexp.MustCompile(`(?:^|[\s"'(\x60=:\[,])((?:\.\./)+)[^\s"'()\x60]*`)

// joinedDots matches a run of ".." arguments, as in
// filepath.Join(dir, "..", "..", "specs").
var joinedDots = regexp.MustCompile(`(?:"\.\."\s*,\s*)+`)

// cdDir matches a shell "cd DIR" earlier on the same line, which changes
// what a relative path that follows is relative to.
var cdDir = regexp.MustCompile(`\bcd\s+([A-Za-z0-9_./-]+)\s*(?:&&|;)`)

// TestNoFileReachesOutsideTheRepository fails when a tracked file names a
// path outside the repository: a folder beside the checkout
// (a sibling folder reached with ../), or an absolute path of a developer machine. Such a file
// works on the machine it was written on and fails from a fresh clone.
// A relative path counts as outside when it climbs above the repository
// root from the file's own folder (where Go tests, Markdown links and
// compose files resolve it) and, after a "cd DIR" on the same line, from
// DIR as well.
func TestNoFileReachesOutsideTheRepository(t *testing.T) {
	files := projectFiles(t)
	if len(files) < 50 {
		t.Fatalf("found only %d project files under %s; is the root right?", len(files), root)
	}
	var problems []string
	for _, name := range files {
		if skipped(name) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
		if err != nil {
			t.Fatalf("reading %s: %v", name, err)
		}
		if bytes.IndexByte(b[:min(len(b), 8000)], 0) >= 0 {
			continue // binary
		}
		problems = append(problems, outsideReferences(name, string(b))...)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// outsideReferences lists the lines of file name (slash-separated, relative
// to the root) that reference a path outside the repository.
func outsideReferences(name, text string) []string {
	var out []string
	dir := path.Dir(name)
	for i, line := range strings.Split(text, "\n") {
		report := func(what string) {
			out = append(out, name+":"+strconv.Itoa(i+1)+": "+what+": "+strings.TrimSpace(clip(line, 200)))
		}
		for _, m := range machinePath.FindAllString(line, -1) {
			if !allowedMachinePaths[m] {
				report("absolute path of a developer machine " + m)
			}
		}
		bases := []string{dir}
		if m := cdDir.FindStringSubmatch(line); m != nil && !strings.HasPrefix(m[1], "/") {
			bases = append(bases, path.Join(dir, m[1]))
		}
		var climbs []int
		for _, m := range relPath.FindAllStringSubmatch(line, -1) {
			climbs = append(climbs, strings.Count(m[1], "../"))
		}
		for _, m := range joinedDots.FindAllString(line, -1) {
			climbs = append(climbs, strings.Count(m, `".."`))
		}
		for _, n := range climbs {
			if escapesFromAll(bases, n) {
				report("relative path climbing " + strconv.Itoa(n) + " levels above " + dir)
			}
		}
	}
	return out
}

// escapesFromAll reports whether climbing n levels leaves the repository
// from every base folder.
func escapesFromAll(bases []string, n int) bool {
	for _, b := range bases {
		depth := 0
		if b != "." {
			depth = strings.Count(b, "/") + 1
		}
		if n <= depth {
			return false
		}
	}
	return true
}

// skipped are files that are data from elsewhere, not project code, and
// this file, whose test cases spell out what the check must catch.
func skipped(name string) bool {
	return strings.HasPrefix(name, "third_party/") || path.Base(name) == "go.sum" ||
		name == "internal/repotest/outside_test.go"
}

// projectFiles lists the tracked files (slash-separated, relative to the
// root). Outside a git checkout (an exported tarball, the copy .ci/run
// tests in) it walks the tree instead, leaving out what .gitignore ignores.
func projectFiles(t *testing.T) []string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(root, ".git")); err == nil {
		cmd := exec.Command("git", "ls-files", "-z")
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git ls-files: %v", err)
		}
		var files []string
		for _, f := range strings.Split(string(out), "\x00") {
			if f == "" {
				continue
			}
			// A tracked file deleted in the working tree is not there to read.
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(f))); errors.Is(err, fs.ErrNotExist) {
				continue
			}
			files = append(files, f)
		}
		return files
	}
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "bin" || rel == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if rel == "upsproxy" || strings.HasSuffix(rel, ".test") || strings.HasSuffix(rel, ".out") || !d.Type().IsRegular() {
			return nil
		}
		files = append(files, rel)
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", root, err)
	}
	return files
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// The checker itself: what it must catch and what it must let through.
func TestOutsideReferences(t *testing.T) {
	bad := []struct{ file, line string }{
		{"internal/upssim/conformance_test.go", `return filepath.Join(filepath.Dir(file), "..", "..", "..", "share" + "d", "ups-openapi")`},
		{"internal/proxy/legacy.go", "// OpenAPI specs (../" + "shared/ups-openapi) that"},
		{"DEVELOPERS.md", "see [the spec](../" + "shared/SPEC.md)"},
		{"Makefile", "\tcp /wor" + "k/shared/x ."},
		{"scripts/demo.sh", "CONFIG=/home/" + "alice/upsproxy.hcl"},
		{"cmd/upsproxy/x_test.go", `os.ReadFile("../../../x")`},
		{"README.md", "C:\\User" + "s\\bob\\ups"},
	}
	for _, tt := range bad {
		if got := outsideReferences(tt.file, tt.line); len(got) == 0 {
			t.Errorf("%s: %q not reported", tt.file, tt.line)
		}
	}
	good := []struct{ file, line string }{
		{"cmd/upsproxy/e2e_test.go", `os.ReadFile("../../examples/rate-request.json")`},
		{"Makefile", "\tcd tools/vaultdev && $(GO) build -mod=mod -o ../../bin/vaultdev ."},
		{"examples/clients/README.md", "[README](../../README.md#errors-clients-see)."},
		{"internal/proxy/legacy_test.go", `"/ship/v1/shipments/cancel/../../security",`},
		{"examples/docker-compose/compose.yaml", "      - upsproxy-ca:/home/nonroot"},
		{"internal/upssim/conformance_test.go", `const specDir = "../../third_party/ups-openapi"`},
	}
	for _, tt := range good {
		if got := outsideReferences(tt.file, tt.line); len(got) > 0 {
			t.Errorf("%s: %q wrongly reported: %v", tt.file, tt.line, got)
		}
	}
}
