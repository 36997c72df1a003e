package main

import (
	"context"
	"errors"
	"net"
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
		done <- runServiceLoop(cmds, st.report, 13*time.Second, 47*time.Second, func(ctl <-chan control, ready func()) error {
			ready()
			for c := range ctl {
				got <- c
				if c == controlStop {
					return nil
				}
			}
			return errors.New("controls closed")
		})
	}()
	waitFor(t, func() bool { return len(st.states()) == 2 }, "RUNNING")
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
		done <- runServiceLoop(cmds, st.report, time.Second, time.Second, func(_ <-chan control, ready func()) error {
			ready()
			<-release // never reads controls: a server failed after start
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
	go func() { done <- runServiceLoop(cmds, st.report, time.Minute, time.Minute, c.serveWithControls(ctx)) }()
	s := &server{logs: logs}
	// Running is reported only once serve listens: by then both listening
	// lines are logged and the proxy accepts connections.
	waitFor(t, func() bool { s := st.states(); return len(s) > 0 && s[len(s)-1] == svcRunning }, "the service to report RUNNING")
	admin := false
	for _, l := range s.lines() {
		switch l["msg"] {
		case "proxy listening":
			s.addr, _ = l["addr"].(string)
		case "admin listening":
			admin = true
		}
	}
	if s.addr == "" || !admin {
		t.Fatalf("RUNNING reported before serve listened:\n%s", logs.String())
	}
	if states := st.states(); len(states) != 2 || states[0] != svcStartPending {
		t.Fatalf("states %v, want START_PENDING then RUNNING", states)
	}
	if conn, err := net.Dial("tcp", s.addr); err != nil {
		t.Fatalf("RUNNING but the proxy refuses connections: %v", err)
	} else {
		conn.Close()
	}

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

// TestService_RunningOnlyOnceServeIsReady: until serve calls ready the
// service stays START_PENDING (with its wait hint) and accepts no control;
// an Interrogate meanwhile is answered START_PENDING, and a Stop, which the
// manager should not send yet, does not reach serve.
func TestService_RunningOnlyOnceServeIsReady(t *testing.T) {
	cmds := make(chan serviceCmd)
	var st statusLog
	readyc := make(chan func())
	got := make(chan control, 1)
	done := make(chan error, 1)
	go func() {
		done <- runServiceLoop(cmds, st.report, 13*time.Second, time.Second, func(ctl <-chan control, ready func()) error {
			readyc <- ready // start-up work in progress until the test says
			got <- <-ctl
			return nil
		})
	}()
	ready := <-readyc
	cmds <- svcCmdInterrogate
	cmds <- svcCmdStop
	cmds <- svcCmdInterrogate // the loop has handled the Stop by now
	waitFor(t, func() bool { return len(st.states()) == 3 }, "the Interrogate answers")
	st.mu.Lock()
	before := append([]serviceStatus(nil), st.all...)
	st.mu.Unlock()
	for i, s := range before {
		if s.State != svcStartPending || s.WaitHint != 13*time.Second || s.Accepts != 0 {
			t.Fatalf("status %d before ready: %+v, want START_PENDING, wait hint 13s, no controls accepted", i, s)
		}
	}
	if len(got) != 0 {
		t.Fatal("a control reached serve before it was ready")
	}
	ready()
	ready() // a second call reports nothing more
	waitFor(t, func() bool { return len(st.states()) == 4 }, "RUNNING")
	if l := st.last(); l.State != svcRunning || l.Accepts != svcAcceptStop|svcAcceptShutdown|svcAcceptParamChange {
		t.Fatalf("after ready: %+v", l)
	}
	cmds <- svcCmdStop
	if c := <-got; c != controlStop {
		t.Fatalf("Stop gave %v", c)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := st.states(); len(s) != 5 || s[4] != svcStopPending {
		t.Fatalf("states %v", s)
	}
}

// TestService_FailedStartNeverReportsRunning: serve failing before it is
// ready (Vault down, a port in use) ends the loop with its error, so the
// service exits with an error and is restarted, and RUNNING never shows.
// A serve that returns nil before ready is a failed start too.
func TestService_FailedStartNeverReportsRunning(t *testing.T) {
	for name, serveErr := range map[string]error{"error": errors.New("connecting to Vault: connection refused"), "nil": nil} {
		t.Run(name, func(t *testing.T) {
			var st statusLog
			err := runServiceLoop(make(chan serviceCmd), st.report, time.Second, time.Second, func(<-chan control, func()) error {
				return serveErr
			})
			if err == nil || serveErr != nil && err != serveErr {
				t.Fatalf("got %v, want a start-up failure", err)
			}
			if s := st.states(); len(s) != 1 || s[0] != svcStartPending {
				t.Fatalf("states %v, want START_PENDING only", s)
			}
		})
	}
}

// TestService_RealServeThatCannotListenNeverReportsRunning runs the real
// serve with its admin address taken: it fails after the Vault login and
// the proxy listener, and the service never reports RUNNING.
func TestService_RealServeThatCannotListenNeverReportsRunning(t *testing.T) {
	e := newEnv(t, envOptions{})
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	e.pxRewriteConfig(t, `admin_listen = "127.0.0.1:0"`, `admin_listen = "`+busy.Addr().String()+`"`)
	logs := newBuf()
	c := &cli{stdin: strings.NewReader(""), out: newBuf(), errOut: logs, configPath: e.cfgPath, getenv: os.Getenv}
	var st statusLog
	err = runServiceLoop(make(chan serviceCmd), st.report, time.Minute, time.Minute, c.serveWithControls(context.Background()))
	if err == nil || !strings.Contains(err.Error(), "admin listener") {
		t.Fatalf("got %v, want the admin listener's error\n%s", err, logs.String())
	}
	if s := st.states(); len(s) != 1 || s[0] != svcStartPending {
		t.Fatalf("states %v, want START_PENDING only", s)
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
