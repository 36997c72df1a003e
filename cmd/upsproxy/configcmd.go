package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/upsproxy/upsproxy/internal/config"
	"github.com/upsproxy/upsproxy/internal/fileperm"
)

func (c *cli) configCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with the configuration file"}
	cmd.AddCommand(&cobra.Command{
		Use:   "validate",
		Short: "Parse and validate the config; diagnostics with file:line:column",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := c.configFile()
			cfg, files, diags := config.Load(path)
			if len(diags) > 0 {
				if err := files.WriteDiagnostics(c.errOut, diags, false); err != nil {
					return err
				}
			}
			if diags.HasErrors() || cfg == nil {
				return &exitCodeError{code: exitError, msg: fmt.Sprintf("%s: %d error(s)", path, len(diags.Errs()))}
			}
			c.warnExposedSecretFiles(cfg, fileperm.CheckPrivate)
			fmt.Fprintf(c.out, "%s: valid (%d carriers, %d clients, %d warnings)\n", path, len(cfg.Carriers), len(cfg.Clients), len(diags))
			return nil
		},
	})
	return cmd
}
