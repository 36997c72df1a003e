package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestHolderNamesDifferBetweenProcessesSharingHostAndPid(t *testing.T) {
	// Containers with a fixed hostname all run as pid 1: host/pid alone
	// would let one replica take another's live Vault lease for its own.
	a, b := holderName(""), holderName("token-refresh")
	host, _ := os.Hostname()
	if !strings.HasPrefix(a, fmt.Sprintf("%s/%d/", host, os.Getpid())) {
		t.Errorf("holder %q does not start with host/pid", a)
	}
	if strings.TrimSuffix(b, "/token-refresh") == a || !strings.HasSuffix(b, "/token-refresh") {
		t.Errorf("holders %q and %q: want distinct names, the second ending in its role", a, b)
	}
}
