package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/upsproxy/upsproxy/internal/config"
	"github.com/upsproxy/upsproxy/internal/fileperm"
	"github.com/upsproxy/upsproxy/internal/proxy"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
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
			if errs := checkConfigFiles(cfg); len(errs) > 0 {
				for _, err := range errs {
					fmt.Fprintf(c.errOut, "Error: %v\n", err)
				}
				return &exitCodeError{code: exitError, msg: fmt.Sprintf("%s: %d file(s) that serve could not load", path, len(errs))}
			}
			c.warnExposedSecretFiles(cfg, fileperm.CheckPrivate)
			fmt.Fprintf(c.out, "%s: valid (%d carriers, %d clients, %d warnings)\n", path, len(cfg.Carriers), len(cfg.Clients), len(diags))
			return nil
		},
	})
	return cmd
}

// checkConfigFiles loads the certificate and key files the configuration
// names, with the loaders serve uses, so that a missing, unreadable or
// malformed one fails validate rather than the next start: the MITM CA,
// ups.ca_file, vault's ca_cert and the email channels' ca_file.
func checkConfigFiles(cfg *config.Config) []error {
	var errs []error
	if m := cfg.MITM; m != nil && m.CACert != "" {
		if _, err := proxy.LoadCA(m.CACert, m.CAKey, 1); err != nil {
			errs = append(errs, fmt.Errorf("mitm: %w", err))
		}
	}
	if cfg.UPS.CAFile != "" {
		if _, err := upstreamTransport(cfg); err != nil {
			errs = append(errs, fmt.Errorf("ups: %w", err))
		}
	}
	if cfg.Vault.CACert != "" {
		if err := vaultstore.CheckCACert(cfg.Vault.CACert); err != nil {
			errs = append(errs, err)
		}
	}
	for _, nb := range cfg.Notify {
		if _, err := emailRoots(nb); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
