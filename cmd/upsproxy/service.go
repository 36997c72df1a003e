package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
)

// The Windows service. What is not a Windows API call lives here, compiled
// and tested on every OS: names, default paths, the service's command line,
// the recovery actions, and the loop that turns service controls into
// serve's stop and reload. service_windows.go talks to the service control
// manager; service_other.go explains the systemd unit instead.

const (
	serviceName        = "upsproxy"
	serviceDisplayName = "upsproxy (UPS OAuth proxy)"
	serviceDescription = "Forward proxy that attaches UPS OAuth tokens kept in Vault to the calls of shipping software."
	// serviceStopWait is how long stop and uninstall wait for the service
	// to stop: the default drain (limits.shutdown_grace, 30 s) plus the
	// token flush (15 s) and some slack.
	serviceStopWait = 60 * time.Second
	// serviceStartWait is the wait hint while starting: the Vault login
	// may take up to 30 s, then the token preload; `service start` waits
	// as long for Running.
	serviceStartWait = 45 * time.Second
)

// servicePaths are the service's files; every default lives in
// %ProgramData%\upsproxy.
type servicePaths struct {
	Dir, Config, LogFile string
}

// defaultServicePaths returns the defaults under programData (the value of
// %ProgramData%, normally C:\ProgramData); an empty programData means the
// variable is unset, which Windows never does, so it is an error.
func defaultServicePaths(programData string) (servicePaths, error) {
	if programData == "" {
		return servicePaths{}, fmt.Errorf("%%ProgramData%% is not set: pass --config and --log-file")
	}
	dir := winJoin(programData, "upsproxy")
	return servicePaths{Dir: dir, Config: winJoin(dir, "upsproxy.hcl"), LogFile: winJoin(dir, "logs", "upsproxy.log")}, nil
}

// winJoin joins Windows path elements whatever OS the code runs on (tests
// run on Linux, where filepath uses '/').
func winJoin(elem ...string) string {
	for i := range elem {
		if i > 0 {
			elem[i] = strings.Trim(elem[i], `\/`)
		} else {
			elem[i] = strings.TrimRight(elem[i], `\/`)
		}
	}
	return strings.Join(elem, `\`)
}

// serviceArgs is the command line the service control manager starts the
// executable with: the hidden `service run`, which calls serve.
func serviceArgs(p servicePaths) []string {
	return []string{"service", "run", "--config", p.Config, "--log-file", p.LogFile}
}

// recoveryAction is one of the service's failure actions: restart after
// Delay.
type recoveryAction struct {
	Delay time.Duration
}

// serviceRecovery is what the service control manager does when the service
// fails (exits with an error, or crashes): restart after 5 s, 30 s, then
// every 60 s; the failure count resets after a day without failures.
func serviceRecovery() (actions []recoveryAction, resetPeriod time.Duration) {
	return []recoveryAction{{5 * time.Second}, {30 * time.Second}, {60 * time.Second}}, 24 * time.Hour
}

// Service control and state values, as Windows defines them
// (SERVICE_CONTROL_*, SERVICE_*; golang.org/x/sys/windows/svc uses the
// same numbers), repeated so the loop compiles and is tested everywhere.
type (
	serviceCmd   uint32
	serviceState uint32
)

const (
	svcCmdStop        serviceCmd = 1
	svcCmdPause       serviceCmd = 2
	svcCmdContinue    serviceCmd = 3
	svcCmdInterrogate serviceCmd = 4
	svcCmdShutdown    serviceCmd = 5
	svcCmdParamChange serviceCmd = 6

	svcStopped         serviceState = 1
	svcStartPending    serviceState = 2
	svcStopPending     serviceState = 3
	svcRunning         serviceState = 4
	svcContinuePending serviceState = 5
	svcPausePending    serviceState = 6
	svcPaused          serviceState = 7

	// Accepted controls (SERVICE_ACCEPT_*).
	svcAcceptStop        = 1
	svcAcceptShutdown    = 4
	svcAcceptParamChange = 8
)

// serviceStatus is what the service reports to the service control manager.
type serviceStatus struct {
	State    serviceState
	Accepts  uint32
	WaitHint time.Duration
}

// String names a state as `sc query` does.
func (s serviceState) String() string {
	switch s {
	case svcStopped:
		return "STOPPED"
	case svcStartPending:
		return "START_PENDING"
	case svcStopPending:
		return "STOP_PENDING"
	case svcRunning:
		return "RUNNING"
	case svcContinuePending:
		return "CONTINUE_PENDING"
	case svcPausePending:
		return "PAUSE_PENDING"
	case svcPaused:
		return "PAUSED"
	}
	return fmt.Sprintf("state %d", uint32(s))
}

// serviceControlAction maps a service control to what serve does: Stop
// and Shutdown stop it (drain, token flush), ParamChange reloads the
// configuration (the service stand-in for SIGHUP; `sc.exe control upsproxy
// paramchange`). Pause and Continue are not accepted, so the manager does
// not send them; anything else does nothing.
func serviceControlAction(cmd serviceCmd) control {
	switch cmd {
	case svcCmdStop, svcCmdShutdown:
		return controlStop
	case svcCmdParamChange:
		return controlReload
	}
	return controlNone
}

// runServiceLoop runs serve for the service control manager: it reports
// StartPending until serve calls ready (its listeners bound, its start-up
// work that can fail done), then Running; it turns each control into a stop
// or reload on the channel serve reads, answers Interrogate, and returns
// serve's error once serve returns. A serve that returns before it is ready
// is a failed start: the service never shows Running and exits with an
// error. startWait and stopWait are the wait hints reported while starting
// and stopping.
func runServiceLoop(cmds <-chan serviceCmd, report func(serviceStatus), startWait, stopWait time.Duration,
	serve func(controls <-chan control, ready func()) error) error {
	cur := serviceStatus{State: svcStartPending, WaitHint: startWait}
	report(cur)
	controls := make(chan control)
	readyc := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() { done <- serve(controls, func() { once.Do(func() { close(readyc) }) }) }()
	for {
		select {
		case <-readyc:
			readyc = nil // reported once
			cur = serviceStatus{State: svcRunning, Accepts: svcAcceptStop | svcAcceptShutdown | svcAcceptParamChange}
			report(cur)
		case err := <-done:
			if err == nil && cur.State == svcStartPending {
				err = errors.New("serve stopped before it was ready")
			}
			return err
		case cmd := <-cmds:
			if cmd == svcCmdInterrogate {
				report(cur)
				continue
			}
			ctl := serviceControlAction(cmd)
			// While starting the service accepts no control, and serve
			// reads none until it is ready.
			if ctl == controlNone || cur.State == svcStartPending {
				continue
			}
			if ctl == controlStop {
				cur = serviceStatus{State: svcStopPending, WaitHint: stopWait}
				report(cur)
			}
			// serve may have returned already (a listener failed): then
			// nobody reads controls.
			select {
			case controls <- ctl:
			case err := <-done:
				return err
			}
		}
	}
}

// serviceCmd is `upsproxy service`: the Windows service, or on other
// systems the way to the systemd unit.
func (c *cli) serviceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Install and control the Windows service (elsewhere: how to use the systemd unit)",
		Long: `On Windows, install upsproxy as a service that runs serve with a config
file, restarts on failure, stops gracefully (drain and token flush, as
SIGTERM) and reloads on "sc.exe control upsproxy paramchange" (as SIGHUP).
Defaults live in %ProgramData%\upsproxy. Run the commands in an elevated
prompt. On other systems use the systemd unit in examples/systemd.`,
	}
	var o serviceOptions
	install := &cobra.Command{
		Use:   "install",
		Short: "Install the service (auto start, restart on failure, Event Log source)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return c.serviceInstall(o) },
	}
	install.Flags().StringVar(&o.logFile, "log-file", "", `log file (default %ProgramData%\upsproxy\logs\upsproxy.log)`)
	run := &cobra.Command{
		Use:    "run",
		Short:  "Run as the service (what the service control manager starts)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE:   func(cmd *cobra.Command, _ []string) error { return c.serviceRun(cmd.Context(), o) },
	}
	run.Flags().StringVar(&o.logFile, "log-file", "", "log file")
	cmd.AddCommand(install, run,
		&cobra.Command{Use: "uninstall", Short: "Stop and remove the service", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error { return c.serviceUninstall() }},
		&cobra.Command{Use: "start", Short: "Start the service and wait until it runs", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error { return c.serviceStart() }},
		&cobra.Command{Use: "stop", Short: "Stop the service (drain, token flush) and wait", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error { return c.serviceStop() }},
		&cobra.Command{Use: "status", Short: "Show the service state, process and command line", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error { return c.serviceStatus() }},
	)
	return cmd
}

// serviceOptions are the flags of service install and run.
type serviceOptions struct {
	logFile string
}

// servicePathsFor resolves the service's paths: --config and --log-file
// when given (made absolute: the service does not start in the directory
// install ran in), else the defaults under %ProgramData%.
func (c *cli) servicePathsFor(o serviceOptions) (servicePaths, error) {
	p, err := defaultServicePaths(c.getenv("ProgramData"))
	if err != nil && (c.configPath == "" || o.logFile == "") {
		return servicePaths{}, err
	}
	if c.configPath != "" {
		if p.Config, err = filepath.Abs(c.configPath); err != nil {
			return servicePaths{}, fmt.Errorf("config path: %w", err)
		}
	}
	if o.logFile != "" {
		if p.LogFile, err = filepath.Abs(o.logFile); err != nil {
			return servicePaths{}, fmt.Errorf("log file path: %w", err)
		}
	}
	return p, nil
}

// noServiceHere is what every service subcommand says outside Windows.
const noServiceHere = `upsproxy service manages a Windows service. On Linux, run upsproxy under
systemd with the sandboxed unit in examples/systemd (see its README.md):

  sudo install -m 0755 bin/upsproxy /usr/local/bin/upsproxy
  sudo install -m 0644 examples/systemd/upsproxy.service /etc/systemd/system/
  sudo systemctl daemon-reload
  sudo systemctl enable --now upsproxy
  sudo systemctl reload upsproxy      # SIGHUP: re-read the config
  sudo systemctl stop upsproxy        # SIGTERM: drain, flush tokens, exit

systemd restarts it on failure (Restart=on-failure) and journald keeps its
logs (journalctl -u upsproxy). Elsewhere, run "upsproxy serve" under your
service manager: SIGTERM stops it gracefully, SIGHUP reloads.`

// waitServiceState polls query until the service is in state want, has
// left the pending states (Stopped while starting), or ctx ends.
func waitServiceState(ctx context.Context, query func() (serviceState, error), want serviceState, poll time.Duration) (serviceState, error) {
	for {
		st, err := query()
		if err != nil || st == want || want == svcRunning && st == svcStopped {
			return st, err
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("the service is still %s", st)
		case <-time.After(poll):
		}
	}
}

// serveWithControls is the serve the service loop runs: the same serve as
// the command, its stop and reload driven by controls instead of signals,
// calling ready once it listens.
func (c *cli) serveWithControls(ctx context.Context) func(controls <-chan control, ready func()) error {
	return func(controls <-chan control, ready func()) error {
		c.controls = controls
		c.ready = ready
		return c.serve(ctx)
	}
}
