package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/upssim"
)

func TestService_DefaultPathsLiveUnderProgramData(t *testing.T) {
	p, err := defaultServicePaths(`C:\ProgramData\`)
	if err != nil {
		t.Fatal(err)
	}
	want := servicePaths{
		Dir:     `C:\ProgramData\upsproxy`,
		Config:  `C:\ProgramData\upsproxy\upsproxy.hcl`,
		LogFile: `C:\ProgramData\upsproxy\logs\upsproxy.log`,
	}
	if p != want {
		t.Fatalf("got %+v, want %+v", p, want)
	}
	if _, err := defaultServicePaths(""); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("unset %%ProgramData%%: %v", err)
	}
	got := strings.Join(serviceArgs(want), " ")
	if got != `service run --config C:\ProgramData\upsproxy\upsproxy.hcl --log-file C:\ProgramData\upsproxy\logs\upsproxy.log` {
		t.Fatalf("service command line: %s", got)
	}
}

func TestService_FlagsOverrideTheDefaultsAndBecomeAbsolute(t *testing.T) {
	env := map[string]string{"ProgramData": `C:\ProgramData`}
	c := &cli{getenv: func(k string) string { return env[k] }}
	p, err := c.servicePathsFor(serviceOptions{})
	if err != nil || p.Config != `C:\ProgramData\upsproxy\upsproxy.hcl` {
		t.Fatalf("defaults: %+v %v", p, err)
	}
	c.configPath = "site.hcl"
	p, err = c.servicePathsFor(serviceOptions{logFile: "logs/x.log"})
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if p.Config != filepath.Join(wd, "site.hcl") || p.LogFile != filepath.Join(wd, "logs", "x.log") {
		t.Fatalf("the service starts elsewhere, so paths must be absolute: %+v", p)
	}
	// Without %ProgramData%, both flags are needed.
	delete(env, "ProgramData")
	if _, err := c.servicePathsFor(serviceOptions{}); err == nil {
		t.Fatal("no %ProgramData% and no --log-file: want an error")
	}
	if _, err := c.servicePathsFor(serviceOptions{logFile: "x.log"}); err != nil {
		t.Fatalf("both flags given: %v", err)
	}
}

func TestService_RecoveryRestartsWithGrowingDelays(t *testing.T) {
	actions, reset := serviceRecovery()
	if len(actions) < 3 {
		t.Fatalf("want a restart for the first, second and later failures, got %v", actions)
	}
	for i, a := range actions {
		if a.Delay <= 0 || i > 0 && a.Delay < actions[i-1].Delay {
			t.Fatalf("delays must be positive and not shrink: %v", actions)
		}
	}
	if reset != 24*time.Hour {
		t.Fatalf("failure count reset after %v, want a day", reset)
	}
}

func TestService_ControlsMapToServeActions(t *testing.T) {
	for cmd, want := range map[serviceCmd]control{
		svcCmdStop: controlStop, svcCmdShutdown: controlStop, svcCmdParamChange: controlReload,
		svcCmdPause: controlNone, svcCmdContinue: controlNone, svcCmdInterrogate: controlNone, 99: controlNone,
	} {
		if got := serviceControlAction(cmd); got != want {
			t.Errorf("control %d: got %v, want %v", cmd, got, want)
		}
	}
	for st, want := range map[serviceState]string{svcRunning: "RUNNING", svcStopped: "STOPPED", svcStopPending: "STOP_PENDING", 42: "state 42"} {
		if st.String() != want {
			t.Errorf("%d: %s", st, st)
		}
	}
	if signalControl(os.Interrupt) != controlStop {
		t.Error("SIGINT must stop")
	}
}

// statusLog records what the loop reports to the service manager.
type statusLog struct {
	mu  sync.Mutex
	all []serviceStatus
}

func (l *statusLog) report(s serviceStatus) { l.mu.Lock(); l.all = append(l.all, s); l.mu.Unlock() }
func (l *statusLog) states() []serviceState {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []serviceState
	for _, s := range l.all {
		out = append(out, s.State)
	}
	return out
}
func (l *statusLog) last() serviceStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all[len(l.all)-1]
}

func TestService_LoopTurnsControlsIntoServeActions(t *testing.T) {
	cmds := make(chan serviceCmd)
	var st statusLog
	got := make(chan control)
	done := make(chan error, 1)
	go func() {
		done <- runServiceLoop(cmds, st.report, 47*time.Second, func(ctl <-chan control) error {
			for c := range ctl {
				got <- c
				if c == controlStop {
					return nil
				}
			}
			return errors.New("controls closed")
		})
	}()
	cmds <- svcCmdInterrogate
	cmds <- svcCmdPause // not accepted: nothing happens
	cmds <- svcCmdParamChange
	if c := <-got; c != controlReload {
		t.Fatalf("ParamChange gave %v", c)
	}
	waitFor(t, func() bool { return len(st.states()) >= 3 }, "the Interrogate answer")
	if s := st.states(); s[0] != svcStartPending || s[1] != svcRunning || s[2] != svcRunning {
		t.Fatalf("states %v", s)
	}
	if a := st.last().Accepts; a != svcAcceptStop|svcAcceptShutdown|svcAcceptParamChange {
		t.Fatalf("accepts %b", a)
	}
	cmds <- svcCmdShutdown
	if c := <-got; c != controlStop {
		t.Fatalf("Shutdown gave %v", c)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if l := st.last(); l.State != svcStopPending || l.WaitHint != 47*time.Second {
		t.Fatalf("last status %+v, want STOP_PENDING with the wait hint", l)
	}
}

func TestService_LoopReturnsServesErrorEvenWhileAControlIsPending(t *testing.T) {
	cmds := make(chan serviceCmd, 1)
	var st statusLog
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- runServiceLoop(cmds, st.report, time.Second, func(<-chan control) error {
			<-release // never reads controls: a listener failed
			return errors.New("proxy listener: address in use")
		})
	}()
	cmds <- svcCmdParamChange
	waitFor(t, func() bool { return len(cmds) == 0 }, "the loop to take the control")
	close(release)
	if err := <-done; err == nil || !strings.Contains(err.Error(), "address in use") {
		t.Fatalf("got %v, want serve's error (the service then exits 1 and is restarted)", err)
	}
}

// TestService_ControlsDriveTheRealServe runs `serve` as the service does:
// ParamChange reloads the config as SIGHUP does; Stop lets an in-flight
// request to UPS complete, then serve exits cleanly as on SIGTERM.
func TestService_ControlsDriveTheRealServe(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.login("main")
	logs := newBuf()
	c := &cli{stdin: strings.NewReader(""), out: newBuf(), errOut: logs, configPath: e.cfgPath, getenv: os.Getenv}
	cmds := make(chan serviceCmd)
	var st statusLog
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- runServiceLoop(cmds, st.report, time.Minute, c.serveWithControls(ctx)) }()
	s := &server{logs: logs}
	waitFor(t, func() bool {
		for _, l := range s.lines() {
			if l["msg"] == "proxy listening" {
				s.addr, _ = l["addr"].(string)
			}
		}
		return s.addr != ""
	}, "serve to listen")

	e.pxRewriteConfig(t, `level  = "debug"`, `level  = "info"`)
	cmds <- svcCmdParamChange
	s.waitLog(t, "info", "configuration reloaded")

	e.sim.SetFault(upssim.Fault{Endpoint: upssim.EndpointAPI, Delay: 2 * time.Second})
	req := sendInBackground(directClient(), legacyRequest(t, http.MethodPost, "http://"+s.addr+"/api/rating/v2409/Rate", rateBody(t)))
	waitFor(t, func() bool { return e.sim.Stats().APICalls == 1 }, "the request to reach UPS")
	cmds <- svcCmdStop
	if req.finished() {
		t.Fatal("the request finished before the stop was handled; the test proves nothing")
	}
	if err := <-done; err != nil {
		t.Fatalf("serve under the service loop: %v\n%s", err, logs.String())
	}
	if status, reqErr := req.wait(); reqErr != nil || status != 200 {
		t.Fatalf("the in-flight request did not complete: %v status %d", reqErr, status)
	}
	s.waitLog(t, "info", "draining in-flight requests")
	s.waitLog(t, "info", "stopped")
	if l := st.last(); l.State != svcStopPending {
		t.Fatalf("last status %+v", l)
	}
}

func TestService_OutsideWindowsExplainsSystemd(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the service commands act on Windows")
	}
	for _, sub := range []string{"install", "uninstall", "start", "stop", "status", "run"} {
		out, errb := newBuf(), newBuf()
		code := run(context.Background(), []string{"service", sub}, strings.NewReader(""), out, errb)
		if code != exitError || !strings.Contains(errb.String(), "examples/systemd") || !strings.Contains(errb.String(), "systemctl reload upsproxy") {
			t.Fatalf("service %s: exit %d, stderr %q", sub, code, errb.String())
		}
	}
}
