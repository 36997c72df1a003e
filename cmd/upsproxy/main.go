// Command upsproxy is a forward HTTP proxy that attaches UPS OAuth bearer
// tokens, kept in HashiCorp Vault, to the calls of legacy shipping software.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
