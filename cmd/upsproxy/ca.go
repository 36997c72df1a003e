package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/upsproxy/upsproxy/internal/proxy"
)

func (c *cli) caCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "ca", Short: "Manage the MITM certificate authority"}
	var out string
	initCmd := &cobra.Command{
		Use:   "init --out DIR",
		Short: "Create the MITM CA (ECDSA P-256, key mode 0600) and print how to trust it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out DIR is required")
			}
			certPath, keyPath, err := proxy.InitCA(out, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, `Created the upsproxy MITM CA:
  certificate: %[1]s
  private key: %[2]s (only its owner can read it: mode 0600; on Windows SYSTEM and
               Administrators. Keep it secret, readable only by the proxy)

Point the proxy at it:
  mitm {
    ca_cert = %[1]q
    ca_key  = %[2]q
  }

Then make the client software trust %[1]s and use the proxy
(the same text: upsproxy ca install-help --cert %[1]s --proxy HOST:PORT):

`, certPath, keyPath)
			return writeCAInstallHelp(c.out, certPath, "PROXY-HOST:8080")
		},
	}
	initCmd.Flags().StringVar(&out, "out", "", "directory to write ca.pem and ca-key.pem into")
	cmd.AddCommand(initCmd, c.caInstallHelpCmd())
	return cmd
}
