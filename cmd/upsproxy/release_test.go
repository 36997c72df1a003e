package main

import (
	"context"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

func TestVersion_ShowsOSAndArchitecture(t *testing.T) {
	out := newBuf()
	if code := run(context.Background(), []string{"version"}, strings.NewReader(""), out, newBuf()); code != 0 {
		t.Fatal(code)
	}
	if want := ", " + runtime.GOOS + "/" + runtime.GOARCH + ")"; !strings.Contains(out.String(), want) {
		t.Fatalf("version output %q lacks %q", out.String(), want)
	}
}

// TestPackaging_ReleaseBuildsEveryTargetWithBuildsFlags keeps `make
// release` on the flags of `make build` (which the Dockerfile test pins)
// and on the four targets the README promises.
func TestPackaging_ReleaseBuildsEveryTargetWithBuildsFlags(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	recipe := regexp.MustCompile(`(?ms)^release:\n((?:\t.*\n)+)`).FindSubmatch(mk)
	if recipe == nil {
		t.Fatal("Makefile has no release target")
	}
	if !strings.Contains(string(recipe[1]), "GOOS=$$os GOARCH=$$arch $(GOBUILD) -o ") {
		t.Errorf("release does not build with $(GOBUILD):\n%s", recipe[1])
	}
	targets := regexp.MustCompile(`(?m)^RELEASE_TARGETS\s*:=\s*(.*)$`).FindSubmatch(mk)
	if targets == nil || strings.Join(strings.Fields(string(targets[1])), " ") != "windows/amd64 linux/amd64 linux/arm64 darwin/arm64" {
		t.Errorf("RELEASE_TARGETS: %q", targets)
	}
}
