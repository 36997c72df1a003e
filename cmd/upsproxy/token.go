package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/tokens"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

func (c *cli) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Inspect and manage the stored UPS tokens",
	}
	cmd.AddCommand(c.tokenInfoCmd())
	return cmd
}

func (c *cli) tokenInfoCmd() *cobra.Command {
	var carrier, env string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "info --carrier NAME [--env E] [--json]",
		Short: "Show the Access Token Information of a carrier (never the token values)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			car, e, err := carrierEnv(cfg, carrier, env)
			if err != nil {
				return err
			}
			store, err := c.tokenStore(cfg, zap.NewNop())
			if err != nil {
				return err
			}
			rec, err := store.Get(cmd.Context(), car.Name, e)
			if errors.Is(err, vaultstore.ErrNotFound) {
				return fmt.Errorf("no tokens stored for carrier %q (%s): run %s", car.Name, e, tokens.LoginCommand(car.Name, e))
			}
			if err != nil {
				return err
			}
			info := tokens.Describe(rec, time.Now())
			if asJSON {
				enc := json.NewEncoder(c.out)
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			}
			return writeInfo(c.out, info)
		},
	}
	cmd.Flags().StringVar(&carrier, "carrier", "", "carrier name")
	cmd.Flags().StringVar(&env, "env", "", "test or production (default: the carrier's)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// writeInfo prints the seed's "Access Token Information" table.
func writeInfo(w io.Writer, in tokens.Info) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Access Token Information\t\n")
	fmt.Fprintf(tw, "Carrier:\t%s (%s)\n", in.Carrier, in.Environment)
	fmt.Fprintf(tw, "Token Type:\t%s\n", in.TokenType)
	fmt.Fprintf(tw, "Token Status:\t%s\n", in.TokenStatus)
	fmt.Fprintf(tw, "Token Issued:\t%s\n", fmtTime(in.TokenIssued))
	fmt.Fprintf(tw, "Token Expires:\t%s\n", fmtTime(in.TokenExpires))
	fmt.Fprintf(tw, "Token Scope:\t%s\n", in.TokenScope)
	fmt.Fprintf(tw, "Refresh Token Status:\t%s\n", in.RefreshTokenStatus)
	fmt.Fprintf(tw, "Refresh Token Issued:\t%s\n", fmtTime(in.RefreshTokenIssued))
	fmt.Fprintf(tw, "Refresh Token Expires:\t%s\n", fmtTime(in.RefreshTokenExpires))
	fmt.Fprintf(tw, "Refresh Count:\t%d\n", in.RefreshCount)
	return tw.Flush()
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
