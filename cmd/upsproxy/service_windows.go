//go:build windows

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"

	"github.com/upsproxy/upsproxy/internal/config"
	"github.com/upsproxy/upsproxy/internal/fileperm"
)

// Event IDs in the Application log (source "upsproxy").
const (
	eventStarted  = 1
	eventStopped  = 2
	eventReload   = 3
	eventFailed   = 100
	eventLogBasic = eventlog.Error | eventlog.Warning | eventlog.Info
)

func (c *cli) serviceInstall(o serviceOptions) error {
	p, err := c.servicePathsFor(o)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locate upsproxy.exe: %w", err)
	}
	if exe, err = filepath.Abs(exe); err != nil {
		return fmt.Errorf("locate upsproxy.exe: %w", err)
	}
	// The data directory holds the CA key and maybe secrets: only SYSTEM
	// and Administrators may read it (C:\ProgramData lets Users read
	// and create files in every new subfolder).
	if def, derr := defaultServicePaths(c.getenv("ProgramData")); derr == nil {
		if err := os.MkdirAll(def.Dir, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", def.Dir, err)
		}
		if err := fileperm.RestrictDir(def.Dir); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(p.LogFile), 0o700); err != nil {
		return fmt.Errorf("create the log directory: %w", err)
	}
	// Refuse now what would make every start fail.
	cfg, files, diags := config.Load(p.Config)
	if len(diags) > 0 {
		_ = files.WriteDiagnostics(c.errOut, diags, false)
	}
	if diags.HasErrors() || cfg == nil {
		return fmt.Errorf("invalid configuration in %s: fix it (upsproxy config validate --config %q), then install", p.Config, p.Config)
	}
	if cfg.MITM != nil {
		if err := fileperm.CheckPrivate(cfg.MITM.CAKey); err != nil {
			return fmt.Errorf("MITM CA key: %w", err)
		}
	}

	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connect to the service control manager (run in an elevated prompt): %w", err)
	}
	defer m.Disconnect()
	if s, err := m.OpenService(serviceName); err == nil {
		s.Close()
		return fmt.Errorf("service %s is already installed: run `upsproxy service uninstall` first", serviceName)
	}
	s, err := m.CreateService(serviceName, exe, mgr.Config{
		DisplayName:      serviceDisplayName,
		Description:      serviceDescription,
		StartType:        mgr.StartAutomatic,
		DelayedAutoStart: true, // after the network is up
		ErrorControl:     mgr.ErrorNormal,
	}, serviceArgs(p)...)
	if err != nil {
		return fmt.Errorf("create service %s: %w", serviceName, err)
	}
	defer s.Close()
	actions, reset := serviceRecovery()
	ra := make([]mgr.RecoveryAction, len(actions))
	for i, a := range actions {
		ra[i] = mgr.RecoveryAction{Type: mgr.ServiceRestart, Delay: a.Delay}
	}
	if err := s.SetRecoveryActions(ra, uint32(reset/time.Second)); err != nil {
		_ = s.Delete()
		return fmt.Errorf("set the restart-on-failure actions: %w", err)
	}
	// An exit with an error (a listener that cannot bind, Vault down at
	// start) counts as a failure too, not only a crash.
	if err := s.SetRecoveryActionsOnNonCrashFailures(true); err != nil {
		_ = s.Delete()
		return fmt.Errorf("set the restart-on-failure actions: %w", err)
	}
	if err := eventlog.InstallAsEventCreate(serviceName, eventLogBasic); err != nil && !strings.Contains(err.Error(), "exists") {
		_ = s.Delete()
		return fmt.Errorf("register the Event Log source: %w", err)
	}
	fmt.Fprintf(c.out, `Installed service %s (automatic start, LocalSystem, restarts on failure):
  %s %s
Log file: %s; start, stop and failures also go to the Application event log (source %s).
Start it:  upsproxy service start
Reload the config:  sc.exe control %s paramchange
`, serviceName, exe, strings.Join(serviceArgs(p), " "), p.LogFile, serviceName, serviceName)
	return nil
}

func (c *cli) serviceUninstall() error {
	m, s, err := openService()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	if st, err := s.Query(); err == nil && st.State != svc.Stopped {
		if err := stopAndWait(s); err != nil {
			return err
		}
	}
	if err := s.Delete(); err != nil {
		return fmt.Errorf("delete service %s: %w", serviceName, err)
	}
	if err := eventlog.Remove(serviceName); err != nil {
		fmt.Fprintf(c.errOut, "upsproxy: warning: removing the Event Log source: %v\n", err)
	}
	fmt.Fprintf(c.out, "Removed service %s. The files in %%ProgramData%%\\upsproxy are kept.\n", serviceName)
	return nil
}

func (c *cli) serviceStart() error {
	m, s, err := openService()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	if err := s.Start(); err != nil {
		return fmt.Errorf("start service %s: %w", serviceName, err)
	}
	st, err := waitService(s, svcRunning, serviceStartWait)
	if err != nil {
		return err
	}
	if st != svcRunning {
		return fmt.Errorf("service %s stopped right after starting: see its log file and the Application event log (source %s)", serviceName, serviceName)
	}
	fmt.Fprintf(c.out, "Service %s is running.\n", serviceName)
	return nil
}

func (c *cli) serviceStop() error {
	m, s, err := openService()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	if err := stopAndWait(s); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "Service %s stopped.\n", serviceName)
	return nil
}

func (c *cli) serviceStatus() error {
	m, s, err := openService()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	st, err := s.Query()
	if err != nil {
		return fmt.Errorf("query service %s: %w", serviceName, err)
	}
	fmt.Fprintf(c.out, "%s: %s", serviceName, serviceState(st.State))
	if st.ProcessId != 0 {
		fmt.Fprintf(c.out, " (pid %d)", st.ProcessId)
	}
	if st.State == svc.Stopped && st.Win32ExitCode != 0 {
		fmt.Fprintf(c.out, " (last exit code %d: see the log file)", st.Win32ExitCode)
	}
	fmt.Fprintln(c.out)
	if cfg, err := s.Config(); err == nil {
		fmt.Fprintf(c.out, "command line: %s\n", cfg.BinaryPathName)
	}
	if st.State != svc.Running {
		return &exitCodeError{code: exitError}
	}
	return nil
}

func openService() (*mgr.Mgr, *mgr.Service, error) {
	m, err := mgr.Connect()
	if err != nil {
		return nil, nil, fmt.Errorf("connect to the service control manager (run in an elevated prompt): %w", err)
	}
	s, err := m.OpenService(serviceName)
	if err != nil {
		m.Disconnect()
		if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
			return nil, nil, fmt.Errorf("service %s is not installed: run `upsproxy service install`", serviceName)
		}
		return nil, nil, fmt.Errorf("open service %s: %w", serviceName, err)
	}
	return m, s, nil
}

func stopAndWait(s *mgr.Service) error {
	if _, err := s.Control(svc.Stop); err != nil && !errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
		return fmt.Errorf("stop service %s: %w", serviceName, err)
	}
	if _, err := waitService(s, svcStopped, serviceStopWait); err != nil {
		return fmt.Errorf("stop service %s: %w", serviceName, err)
	}
	return nil
}

func waitService(s *mgr.Service, want serviceState, timeout time.Duration) (serviceState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return waitServiceState(ctx, func() (serviceState, error) {
		st, err := s.Query()
		return serviceState(st.State), err
	}, want, 300*time.Millisecond)
}

// serviceRun is what the service control manager starts: serve, its logs
// in the log file, its lifecycle in the Event Log.
func (c *cli) serviceRun(ctx context.Context, o serviceOptions) error {
	isSvc, err := svc.IsWindowsService()
	if err != nil {
		return fmt.Errorf("detect the service control manager: %w", err)
	}
	if !isSvc {
		return fmt.Errorf("`upsproxy service run` is started by the service control manager; run `upsproxy serve` in a console instead")
	}
	p, err := c.servicePathsFor(o)
	if err != nil {
		return err
	}
	c.configPath = p.Config
	elog, err := eventlog.Open(serviceName)
	if err != nil {
		return fmt.Errorf("open the Event Log: %w", err)
	}
	defer elog.Close()
	if err := os.MkdirAll(filepath.Dir(p.LogFile), 0o700); err != nil {
		_ = elog.Error(eventFailed, fmt.Sprintf("cannot create the log directory: %v", err))
		return err
	}
	f, err := openServiceLog(p.LogFile, serviceLogMaxMB, serviceLogBackups)
	if err != nil {
		_ = elog.Error(eventFailed, fmt.Sprintf("cannot open the log file: %v", err))
		return err
	}
	defer f.Close()
	c.errOut = f
	c.out = f
	h := &serviceHandler{c: c, ctx: ctx, elog: elog, paths: p}
	if err := svc.Run(serviceName, h); err != nil {
		_ = elog.Error(eventFailed, fmt.Sprintf("service run: %v", err))
		return err
	}
	return h.err
}

type serviceHandler struct {
	c     *cli
	ctx   context.Context
	elog  *eventlog.Log
	paths servicePaths
	err   error
}

// Execute adapts svc's channels to runServiceLoop.
func (h *serviceHandler) Execute(_ []string, r <-chan svc.ChangeRequest, s chan<- svc.Status) (bool, uint32) {
	cmds := make(chan serviceCmd)
	quit := make(chan struct{})
	defer close(quit)
	go func() {
		for {
			select {
			case req := <-r:
				if serviceControlAction(serviceCmd(req.Cmd)) == controlReload {
					_ = h.elog.Info(eventReload, "reloading "+h.paths.Config)
				}
				select {
				case cmds <- serviceCmd(req.Cmd):
				case <-quit:
					return
				}
			case <-quit:
				return
			}
		}
	}()
	report := func(st serviceStatus) {
		s <- svc.Status{State: svc.State(st.State), Accepts: svc.Accepted(st.Accepts), WaitHint: uint32(st.WaitHint / time.Millisecond)}
	}
	_ = h.elog.Info(eventStarted, fmt.Sprintf("starting: config %s, log file %s", h.paths.Config, h.paths.LogFile))
	h.err = runServiceLoop(cmds, report, serviceStartWait, serviceStopWait, h.c.serveWithControls(h.ctx))
	if h.err != nil {
		_ = h.elog.Error(eventFailed, fmt.Sprintf("stopped with an error (the service manager restarts it): %v; details in %s", h.err, h.paths.LogFile))
		fmt.Fprintf(h.c.errOut, "upsproxy: %v\n", h.err)
		return false, 1
	}
	_ = h.elog.Info(eventStopped, "stopped")
	return false, 0
}
