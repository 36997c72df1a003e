package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/config"
	"github.com/upsproxy/upsproxy/internal/login"
	"github.com/upsproxy/upsproxy/internal/tokens"
	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// exitUnknown is the monitoring-plugin code for "cannot tell" (Nagios
// UNKNOWN), used by token check when Vault or the config cannot be read.
const exitUnknown = 3

func (c *cli) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Inspect and manage the stored UPS tokens",
	}
	cmd.AddCommand(c.tokenInfoCmd(), c.tokenListCmd(), c.tokenCheckCmd(), c.tokenRefreshCmd(), c.tokenDeleteCmd())
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
				return writeJSON(c.out, info)
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

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// expiresIn says how long until t in whole days, as the reminders do.
func expiresIn(t, now time.Time) string {
	switch d := tokens.DaysLeft(t, now); d {
	case 0:
		return "less than a day"
	case 1:
		return "1 day"
	default:
		return fmt.Sprintf("%d days", d)
	}
}

// tokenRow is one line of token list.
type tokenRow struct {
	Carrier        string          `json:"carrier"`
	Environment    ups.Environment `json:"environment"`
	Grant          string          `json:"grant"`
	Status         string          `json:"status"`
	AccessExpires  time.Time       `json:"access_token_expires,omitzero"`
	RefreshExpires time.Time       `json:"refresh_token_expires,omitzero"`
	DaysLeft       *int            `json:"days_left,omitempty"`
	Warning        string          `json:"warning,omitempty"`
	InConfig       bool            `json:"in_config"`
	Active         bool            `json:"active"`
}

func (c *cli) tokenListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--json]",
		Short: "One row per carrier and environment: status, expiries, days left, warnings",
		Long: `Lists every carrier and environment with tokens in Vault, and every active
carrier of the config with nothing stored. Never prints token values.

WARNING says what needs doing: "expires in N days: run ..." within
reminders.warn_before, "EXPIRED: run ...", "REJECTED: run ...", "inactive"
(the carrier is configured inactive), or "not in config" (tokens stored for a
carrier or environment the config does not use; token delete removes them).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			store, err := c.tokenStore(cfg, zap.NewNop())
			if err != nil {
				return err
			}
			rows, err := listTokens(cmd.Context(), cfg, store, time.Now())
			if err != nil {
				return err
			}
			if asJSON {
				if rows == nil {
					rows = []tokenRow{}
				}
				return writeJSON(c.out, rows)
			}
			return writeRows(c.out, rows)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// listTokens builds the rows of token list: the stored records, and the
// active configured carriers that have none.
func listTokens(ctx context.Context, cfg *config.Config, store *vaultstore.Store, now time.Time) ([]tokenRow, error) {
	keys, err := store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the tokens in Vault: %w", err)
	}
	seen := map[vaultstore.Key]bool{}
	var rows []tokenRow
	for _, k := range keys {
		rec, err := store.Get(ctx, k.Carrier, k.Environment)
		if errors.Is(err, vaultstore.ErrNotFound) {
			continue // only a deleted version left (vault kv delete)
		}
		if err != nil {
			return nil, fmt.Errorf("reading the tokens of %s from Vault: %w", k, err)
		}
		seen[k] = true
		rows = append(rows, recordRow(cfg, k, &rec, now))
	}
	for i := range cfg.Carriers {
		car := &cfg.Carriers[i]
		k := vaultstore.Key{Carrier: car.Name, Environment: car.Environment}
		if car.Inactive || seen[k] {
			continue
		}
		rows = append(rows, recordRow(cfg, k, nil, now))
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Carrier != rows[j].Carrier {
			return rows[i].Carrier < rows[j].Carrier
		}
		return rows[i].Environment < rows[j].Environment
	})
	return rows, nil
}

// recordRow describes one carrier/environment; rec is nil when nothing is
// stored.
func recordRow(cfg *config.Config, k vaultstore.Key, rec *vaultstore.Record, now time.Time) tokenRow {
	sub := tokens.Subject{Carrier: k.Carrier, Environment: k.Environment}
	car, inConfig := cfg.Carrier(k.Carrier)
	if inConfig {
		sub.Grant, sub.Inactive = car.Grant, car.Inactive
	}
	if rec != nil && rec.Grant != "" {
		sub.Grant = rec.Grant // what the stored tokens are
	}
	h := tokens.Assess(sub, rec, now, cfg.Reminders.WarnBefore)
	row := tokenRow{Carrier: k.Carrier, Environment: k.Environment, Grant: h.Grant, Status: string(h.State),
		AccessExpires: h.AccessExpires, RefreshExpires: h.RefreshExpires, DaysLeft: h.DaysLeft}
	login := h.LoginCommand
	switch {
	case !inConfig:
		row.Warning = "not in config"
	case car.Environment != k.Environment:
		row.Warning = fmt.Sprintf("not in config: carrier %s uses %s", car.Name, car.Environment)
	case car.Inactive:
		row.InConfig = true
		row.Warning = "inactive"
	default:
		row.InConfig, row.Active = true, true
		switch h.State {
		case tokens.StateExpiring:
			row.Warning = fmt.Sprintf("expires in %s: run %s", expiresIn(row.RefreshExpires, now), login)
		case tokens.StateExpired:
			row.Warning = "EXPIRED: run " + login
		case tokens.StateRejected:
			row.Warning = "REJECTED: run " + login
		case tokens.StateNotLoggedIn:
			row.Warning = "run " + login
		}
	}
	return row
}

func writeRows(w io.Writer, rows []tokenRow) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CARRIER\tENV\tGRANT\tSTATUS\tACCESS_EXPIRES\tREFRESH_EXPIRES\tDAYS_LEFT\tWARNING")
	for _, r := range rows {
		days := "-"
		if r.DaysLeft != nil {
			days = fmt.Sprint(*r.DaysLeft)
		}
		warning := r.Warning
		if warning == "" {
			warning = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Carrier, r.Environment, r.Grant, r.Status,
			fmtTime(r.AccessExpires), fmtTime(r.RefreshExpires), days, warning)
	}
	return tw.Flush()
}

// checkProblem is one line of token check.
type checkProblem struct {
	Severity       string          `json:"severity"` // WARNING or CRITICAL
	Carrier        string          `json:"carrier"`
	Environment    ups.Environment `json:"environment"`
	Problem        string          `json:"problem"` // expiring, expired, rejected, not logged in
	RefreshExpires time.Time       `json:"refresh_token_expires,omitzero"`
	DaysLeft       *int            `json:"days_left,omitempty"`
	Command        string          `json:"command"`
	Message        string          `json:"message"`
}

// checkReport is the whole answer of token check.
type checkReport struct {
	Status   string         `json:"status"` // OK, WARNING, CRITICAL or UNKNOWN
	ExitCode int            `json:"exit_code"`
	Carriers int            `json:"carriers_checked"`
	Problems []checkProblem `json:"problems"`
	Error    string         `json:"error,omitempty"` // why the status is UNKNOWN
}

func (c *cli) tokenCheckCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check [--json]",
		Short: "Monitoring check of every active carrier's refresh token (Nagios exit codes)",
		Long: `Checks the stored tokens of every active carrier, as a monitoring plugin
(Nagios, Icinga, Sensu...) would, and prints one line per problem on stdout:

  exit 0  OK        every active carrier is fine ("OK: N carriers")
  exit 1  WARNING   a refresh token expires within reminders.warn_before
  exit 2  CRITICAL  a refresh token has expired, was rejected by UPS, or the
                    carrier was never logged in
  exit 3  UNKNOWN   cannot tell: Vault is unreachable or the config is invalid

client_credentials carriers need no login and are always fine. With --json the
same report is printed as JSON, and the exit code is the same.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep := c.checkTokens(cmd.Context(), time.Now())
			if asJSON {
				if err := writeJSON(c.out, rep); err != nil {
					return err
				}
			} else {
				writeCheck(c.out, rep)
			}
			if rep.ExitCode == exitOK {
				return nil
			}
			return &exitCodeError{code: rep.ExitCode}
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// checkTokens judges every active configured carrier in its environment.
func (c *cli) checkTokens(ctx context.Context, now time.Time) checkReport {
	rep := checkReport{Status: "OK", Problems: []checkProblem{}}
	unknown := func(err error) checkReport {
		return checkReport{Status: "UNKNOWN", ExitCode: exitUnknown, Problems: []checkProblem{}, Error: oneLine(err.Error())}
	}
	cfg, err := c.loadConfig()
	if err != nil {
		return unknown(err)
	}
	store, err := c.tokenStore(cfg, zap.NewNop())
	if err != nil {
		return unknown(err)
	}
	for i := range cfg.Carriers {
		car := &cfg.Carriers[i]
		if car.Inactive {
			continue
		}
		rep.Carriers++
		if car.Grant == ups.GrantClientCredentials {
			continue
		}
		var recp *vaultstore.Record
		rec, err := store.Get(ctx, car.Name, car.Environment)
		switch {
		case errors.Is(err, vaultstore.ErrNotFound):
		case err != nil:
			return unknown(fmt.Errorf("cannot read the tokens of carrier %s (%s) from Vault: %w", car.Name, car.Environment, err))
		default:
			recp = &rec
		}
		if p, ok := problemOf(car, recp, now, cfg.Reminders.WarnBefore); ok {
			rep.Problems = append(rep.Problems, p)
		}
	}
	// The first line is what monitoring shows: the worst problem first.
	sort.SliceStable(rep.Problems, func(i, j int) bool {
		return rep.Problems[i].Severity == "CRITICAL" && rep.Problems[j].Severity != "CRITICAL"
	})
	for _, p := range rep.Problems {
		switch {
		case p.Severity == "CRITICAL":
			rep.Status, rep.ExitCode = "CRITICAL", exitCritical
		case rep.ExitCode == exitOK:
			rep.Status, rep.ExitCode = "WARNING", exitWarning
		}
	}
	return rep
}

// problemOf is what check reports about one carrier, if anything.
func problemOf(car *config.Carrier, rec *vaultstore.Record, now time.Time, warnBefore time.Duration) (checkProblem, bool) {
	env := car.Environment
	h := tokens.Assess(tokens.Subject{Carrier: car.Name, Environment: env, Grant: car.Grant, Inactive: car.Inactive}, rec, now, warnBefore)
	p := checkProblem{Severity: "CRITICAL", Carrier: car.Name, Environment: env, Command: tokens.LoginCommand(car.Name, env),
		Problem: string(h.State), RefreshExpires: h.RefreshExpires, DaysLeft: h.DaysLeft}
	what := ""
	switch h.State {
	case tokens.StateNotLoggedIn:
		what = "not logged in"
	case tokens.StateRejected:
		what = "refresh token rejected by UPS at " + fmtTime(h.RejectedAt)
	case tokens.StateExpired:
		what = "refresh token expired at " + fmtTime(p.RefreshExpires)
	case tokens.StateExpiring:
		p.Severity = "WARNING"
		what = fmt.Sprintf("refresh token expires in %s (%s)", expiresIn(p.RefreshExpires, now), fmtTime(p.RefreshExpires))
	default:
		return checkProblem{}, false
	}
	p.Message = fmt.Sprintf("%s: carrier %s (%s): %s: run %s", p.Severity, car.Name, env, what, p.Command)
	return p, true
}

func writeCheck(w io.Writer, rep checkReport) {
	switch {
	case rep.Status == "UNKNOWN":
		fmt.Fprintf(w, "UNKNOWN: %s\n", rep.Error)
	case len(rep.Problems) == 0:
		noun := "carriers"
		if rep.Carriers == 1 {
			noun = "carrier"
		}
		fmt.Fprintf(w, "OK: %d %s\n", rep.Carriers, noun)
	default:
		for _, p := range rep.Problems {
			fmt.Fprintln(w, p.Message)
		}
	}
}

// oneLine keeps a monitoring line on one line whatever an error says.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func (c *cli) tokenRefreshCmd() *cobra.Command {
	var carrier, env string
	cmd := &cobra.Command{
		Use:   "refresh --carrier NAME [--env E]",
		Short: "Refresh a carrier's tokens now, coordinated with running proxies",
		Long: `Spends the stored refresh token now and stores the new pair, exactly as the
proxy does: it claims the refresh lease in Vault first, so a proxy replica
refreshing at the same moment waits instead of spending the same single-use
refresh token. Prints the old and new expiries, never token values.

A running proxy picks the new pair up when it next renews; its current access
token stays valid until it expires.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.tokenRefresh(cmd.Context(), carrier, env)
		},
	}
	cmd.Flags().StringVar(&carrier, "carrier", "", "carrier name")
	cmd.Flags().StringVar(&env, "env", "", "test or production (default: the carrier's)")
	return cmd
}

func (c *cli) tokenRefresh(ctx context.Context, carrierName, envName string) error {
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	car, env, err := carrierEnv(cfg, carrierName, envName)
	if err != nil {
		return err
	}
	log, _, err := newLogger(cfg.Log, c.errOut)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	store, err := c.tokenStore(cfg, log)
	if err != nil {
		return err
	}
	now := time.Now()
	old, err := store.Get(ctx, car.Name, env)
	switch {
	case errors.Is(err, vaultstore.ErrNotFound) && car.Grant == ups.GrantClientCredentials:
		// Nothing minted yet: the refresh mints the first token.
	case errors.Is(err, vaultstore.ErrNotFound):
		return fmt.Errorf("no tokens stored for carrier %q (%s): run %s", car.Name, env, tokens.LoginCommand(car.Name, env))
	case err != nil:
		return fmt.Errorf("reading the tokens from Vault: %w", err)
	}
	if car.Grant != ups.GrantClientCredentials {
		// Nothing UPS would honour: say so without asking it.
		switch h := tokens.Assess(tokens.Subject{Carrier: car.Name, Environment: env, Grant: car.Grant}, &old, now, 0); h.State {
		case tokens.StateRejected:
			return fmt.Errorf("UPS rejected the refresh token of carrier %q (%s) at %s: run %s", car.Name, env, fmtTime(h.RejectedAt), h.LoginCommand)
		case tokens.StateExpired:
			return fmt.Errorf("the refresh token of carrier %q (%s) expired at %s: run %s", car.Name, env, fmtTime(h.RefreshExpires), h.LoginCommand)
		case tokens.StateNotLoggedIn:
			return fmt.Errorf("no tokens stored for carrier %q (%s): run %s", car.Name, env, h.LoginCommand)
		}
	}
	oc, err := standaloneOAuth(ctx, cfg, car, env, store)
	if err != nil {
		return err
	}

	// Once UPS may have spent the refresh token, the new pair must reach
	// Vault: Ctrl-C is held off until then (the work is bounded).
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	work, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()

	broker, err := tokens.New(tokens.Options{
		Store:    store,
		Carriers: []tokens.Carrier{{Name: car.Name, Environment: env, Grant: car.Grant, OAuth: oc}},
		Logger:   log.Named("tokens"),
		Holder:   holderName("token-refresh"),
	})
	if err != nil {
		return err
	}
	defer broker.Close()

	// The same path a proxy replica takes: lease, one refresh,
	// check-and-set, retried until Vault has the new pair.
	if _, err := broker.ForceRefresh(work, car.Name, env); err != nil {
		if errors.Is(err, tokens.ErrNotStored) {
			return fmt.Errorf("the new tokens of carrier %q (%s) could not be written to Vault, and UPS has spent the old refresh token: %w", car.Name, env, err)
		}
		return refreshError(car.Name, env, err)
	}
	cur, err := store.Get(work, car.Name, env)
	if err != nil {
		return fmt.Errorf("the tokens were refreshed and stored, but reading them back from Vault failed: %w", err)
	}
	t := cur.Token
	fmt.Fprintf(c.out, "Refreshed: carrier %q (%s), refresh count %d.\n", car.Name, env, t.RefreshCount)
	fmt.Fprintf(c.out, "  access token expires   %s (was %s)\n", fmtTime(t.ExpiresAt), fmtTime(old.Token.ExpiresAt))
	if car.Grant != ups.GrantClientCredentials {
		fmt.Fprintf(c.out, "  refresh token expires  %s, in %s (was %s)\n", fmtTime(t.RefreshExpiresAt), expiresIn(t.RefreshExpiresAt, time.Now()), fmtTime(old.Token.RefreshExpiresAt))
	}
	if ctx.Err() != nil {
		fmt.Fprintln(c.errOut, "Interrupted, but the refresh had already started: it was completed and stored.")
	}
	return nil
}

// refreshError turns a broker error into one line saying what to do.
func refreshError(carrier string, env ups.Environment, err error) error {
	var rerr *tokens.RefreshExpiredError
	switch {
	case errors.As(err, &rerr):
		return rerr // names the login command
	case errors.Is(err, tokens.ErrNotLoggedIn):
		return fmt.Errorf("no tokens stored for carrier %q (%s): run %s", carrier, env, tokens.LoginCommand(carrier, env))
	case errors.Is(err, tokens.ErrStoreUnavailable):
		return fmt.Errorf("nothing was refreshed: cannot use Vault: %w", err)
	case errors.Is(err, tokens.ErrRefreshFailed):
		return fmt.Errorf("refreshing carrier %q (%s) at UPS failed: %w", carrier, env, err)
	}
	return fmt.Errorf("refreshing carrier %q (%s): %w", carrier, env, err)
}

func (c *cli) tokenDeleteCmd() *cobra.Command {
	var carrier, env string
	cmd := &cobra.Command{
		Use:   "delete --carrier NAME [--env E]",
		Short: "Remove a carrier's stored tokens from Vault (asks nothing)",
		Long: `Removes the stored tokens of a carrier and environment from Vault, all
versions, without asking. The carrier need not be in the config any more
(then --env is required). Exit 1 when nothing is stored there.

A running proxy keeps the access token it holds in memory until it next
renews; then it answers UPSPROXY_NOT_LOGGED_IN until someone logs in again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.tokenDelete(cmd.Context(), carrier, env)
		},
	}
	cmd.Flags().StringVar(&carrier, "carrier", "", "carrier name")
	cmd.Flags().StringVar(&env, "env", "", "test or production (default: the carrier's; required for a carrier not in the config)")
	return cmd
}

func (c *cli) tokenDelete(ctx context.Context, carrier, envName string) error {
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	if carrier == "" {
		return errors.New("--carrier is required")
	}
	env := ups.Environment(envName)
	if envName != "" && !env.Valid() {
		return fmt.Errorf("--env must be test or production, not %q", envName)
	}
	if envName == "" {
		car, ok := cfg.Carrier(carrier)
		if !ok {
			return fmt.Errorf("carrier %q is not in the configuration: name the environment with --env", carrier)
		}
		env = car.Environment
	}
	store, err := c.tokenStore(cfg, zap.NewNop())
	if err != nil {
		return err
	}
	svc, err := login.New(login.Options{Store: store})
	if err != nil {
		return err
	}
	old, err := svc.Delete(ctx, carrier, env)
	if errors.Is(err, login.ErrNothingStored) {
		return &exitCodeError{code: exitError, msg: fmt.Sprintf("no tokens stored for carrier %q (%s): nothing deleted", carrier, env)}
	}
	if err != nil {
		return err
	}
	what := ""
	if old != nil {
		what = fmt.Sprintf(" (%s; refresh token expiry %s, refresh count %d)", old.Grant, fmtTime(old.Token.RefreshExpiresAt), old.Token.RefreshCount)
	}
	fmt.Fprintf(c.out, "Deleted the stored tokens of carrier %q (%s)%s.\n", carrier, env, what)
	return nil
}
