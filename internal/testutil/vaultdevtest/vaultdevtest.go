// Package vaultdevtest runs the vaultdev binary (tools/vaultdev: a real,
// in-memory HashiCorp Vault) as a subprocess for tests.
//
// The binary is built by `make vaultdev` into <module root>/bin/vaultdev, or
// named by $UPSPROXY_VAULTDEV. A missing binary is a test failure, never a
// skip: tests against a real Vault must not silently stop running.
package vaultdevtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// EnvBinary names the environment variable that overrides the binary path.
const EnvBinary = "UPSPROXY_VAULTDEV"

const (
	modulePath   = "github.com/upsproxy/upsproxy"
	startTimeout = 60 * time.Second
	stopTimeout  = 10 * time.Second
)

// Server is a running vaultdev subprocess.
type Server struct {
	// Addr is the Vault address, e.g. http://127.0.0.1:PORT.
	Addr string
	// Token is the root token.
	Token string
	// UnsealKey is the single unseal key (base64), for Unseal.
	UnsealKey string

	cmd      *exec.Cmd
	stdin    io.WriteCloser // closing it makes vaultdev exit (--exit-on-stdin-close)
	stdoutW  *io.PipeWriter
	stderr   *syncBuffer
	done     chan struct{} // closed once the process has exited
	waitErr  error         // valid after done is closed
	stopOnce sync.Once
}

// Start launches the vaultdev binary and waits (at most 60s) for its
// VAULT_ADDR/VAULT_TOKEN/VAULT_UNSEAL_KEY lines. It registers t.Cleanup to
// stop it (SIGTERM, then SIGKILL after 10s). It calls t.Fatal, never t.Skip,
// if the binary is missing or fails to start; vaultdev's stderr is part of the
// failure message.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}

	// --exit-on-stdin-close: if this test process dies without running its
	// cleanups (timeout panic, SIGKILL), the pipe closes and vaultdev exits
	// instead of being left behind.
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--exit-on-stdin-close")
	stdoutR, stdoutW := io.Pipe()
	s := &Server{
		cmd:     cmd,
		stdoutW: stdoutW,
		stderr:  &syncBuffer{},
		done:    make(chan struct{}),
	}
	cmd.Stdout = stdoutW
	cmd.Stderr = s.stderr
	// Should vaultdev ever leave a child holding its stdout/stderr open,
	// do not let Wait hang on the copiers.
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("vaultdevtest: stdin pipe: %v", err)
	}
	s.stdin = stdin
	if err := cmd.Start(); err != nil {
		t.Fatalf("vaultdevtest: cannot start %s: %v", bin, err)
	}
	go func() {
		s.waitErr = cmd.Wait()
		// Wait has copied all of stdout; let the reader see EOF.
		_ = stdoutW.Close()
		close(s.done)
	}()

	type ready struct {
		vars map[string]string
		err  error
	}
	readyCh := make(chan ready, 1)
	go func() {
		vars := map[string]string{}
		sc := bufio.NewScanner(stdoutR)
		for sc.Scan() {
			line := sc.Text()
			if k, v, ok := strings.Cut(line, "="); ok {
				vars[k] = v
			}
			if vars["VAULT_ADDR"] != "" && vars["VAULT_TOKEN"] != "" && vars["VAULT_UNSEAL_KEY"] != "" {
				readyCh <- ready{vars: vars}
				// vaultdev prints nothing more; keep draining so that it
				// can never block on a full pipe.
				_, _ = io.Copy(io.Discard, stdoutR)
				return
			}
		}
		err := sc.Err()
		if err == nil {
			err = errors.New("stdout closed before the VAULT_ADDR/VAULT_TOKEN/VAULT_UNSEAL_KEY lines")
		}
		readyCh <- ready{err: err}
		_, _ = io.Copy(io.Discard, stdoutR)
	}()

	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	var r ready
	select {
	case r = <-readyCh:
	case <-timer.C:
		r.err = fmt.Errorf("not ready after %s", startTimeout)
	}
	if r.err != nil {
		s.Stop()
		t.Fatalf("vaultdevtest: %s failed to start: %v (%s)\nvaultdev stderr:\n%s",
			bin, r.err, s.exitStatus(), s.stderr.String())
	}
	s.Addr = r.vars["VAULT_ADDR"]
	s.Token = r.vars["VAULT_TOKEN"]
	s.UnsealKey = r.vars["VAULT_UNSEAL_KEY"]

	t.Cleanup(func() {
		s.Stop()
		if t.Failed() || !s.exitedCleanly() {
			t.Logf("vaultdev at %s stopped (%s); its stderr:\n%s", s.Addr, s.exitStatus(), s.stderr.String())
		}
	})
	return s
}

// Binary locates the vaultdev binary: $UPSPROXY_VAULTDEV if set, else
// <module root>/bin/vaultdev, the module root being the nearest directory at
// or above the working directory whose go.mod declares
// `module github.com/upsproxy/upsproxy`.
func Binary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		return checkBinary(p)
	}
	root, err := moduleRoot()
	if err != nil {
		return "", fmt.Errorf("vaultdev binary not found: %v: run `make vaultdev` (or set $%s)", err, EnvBinary)
	}
	return checkBinary(filepath.Join(root, "bin", "vaultdev"))
}

func checkBinary(p string) (string, error) {
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	fi, err := os.Stat(p)
	if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("vaultdev binary not found at %s: run `make vaultdev`", p)
	}
	return p, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isModuleRoot(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod declaring module %s at or above the working directory", modulePath)
		}
		dir = parent
	}
}

// isModuleRoot reports whether the go.mod at path declares exactly this
// module (not, e.g., the nested tools/vaultdev module).
func isModuleRoot(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "//") {
			continue
		}
		f := strings.Fields(line)
		return len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == modulePath
	}
	return false
}

// Client returns a Vault API client for the server, with the root token.
// It does not retry (MaxRetries 0), so a sealed Vault's 503 comes back at
// once, and it ignores VAULT_* variables of the environment.
func (s *Server) Client(t testing.TB) *vaultapi.Client {
	t.Helper()
	cfg := vaultapi.DefaultConfig()
	if cfg.Error != nil {
		t.Fatalf("vaultdevtest: vault api config: %v", cfg.Error)
	}
	cfg.Address = s.Addr
	cfg.MaxRetries = 0
	cfg.Timeout = 30 * time.Second
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		t.Fatalf("vaultdevtest: vault api client: %v", err)
	}
	c.SetToken(s.Token)
	c.ClearNamespace()
	return c
}

// Seal seals the Vault via sys/seal with the root token.
func (s *Server) Seal(t testing.TB) {
	t.Helper()
	if err := s.Client(t).Sys().Seal(); err != nil {
		t.Fatalf("vaultdevtest: seal: %v", err)
	}
	st, err := s.Client(t).Sys().SealStatus()
	if err != nil {
		t.Fatalf("vaultdevtest: seal status: %v", err)
	}
	if !st.Sealed {
		t.Fatal("vaultdevtest: still unsealed after sys/seal")
	}
}

// Unseal unseals the Vault via sys/unseal with the unseal key, and waits
// until the KV v2 mount at secret/ answers again.
func (s *Server) Unseal(t testing.TB) {
	t.Helper()
	c := s.Client(t)
	st, err := c.Sys().Unseal(s.UnsealKey)
	if err != nil {
		t.Fatalf("vaultdevtest: unseal: %v", err)
	}
	if st.Sealed {
		t.Fatalf("vaultdevtest: still sealed after sys/unseal (progress %d/%d)", st.Progress, st.T)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		_, err := c.Logical().ReadWithContext(ctx, "secret/config")
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("vaultdevtest: secret/ not ready after unseal: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop terminates the server: SIGTERM, then SIGKILL if it has not exited
// within 10s. It waits for the process and is idempotent.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		select {
		case <-s.done:
			return
		default:
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		timer := time.NewTimer(stopTimeout)
		defer timer.Stop()
		select {
		case <-s.done:
		case <-timer.C:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		_ = s.stdin.Close()
	})
	<-s.done
}

func (s *Server) exitedCleanly() bool {
	select {
	case <-s.done:
		return s.waitErr == nil
	default:
		return false
	}
}

func (s *Server) exitStatus() string {
	select {
	case <-s.done:
		if s.waitErr == nil {
			return "exit status 0"
		}
		return s.waitErr.Error()
	default:
		return "still running"
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of exec's
// stderr copier and reads by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
