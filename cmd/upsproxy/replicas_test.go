package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/ups"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// upsproxyBinary is the real binary, for tests that run several processes
// and kill them: $UPSPROXY_BIN (make test sets it) or a fresh build.
func upsproxyBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv("UPSPROXY_BIN"); p != "" {
			binPath = p
			return
		}
		dir, err := os.MkdirTemp("", "upsproxy-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "upsproxy")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// replica is one `upsproxy serve` process.
type replica struct {
	name  string
	cmd   *exec.Cmd
	addr  string
	admin string
	alive atomic.Bool
	logs  *syncBuffer
	exit  chan error
}

func (e *env) startReplica(t *testing.T, name string) *replica {
	t.Helper()
	r := &replica{name: name, logs: newBuf(), exit: make(chan error, 1)}
	r.cmd = exec.Command(upsproxyBinary(t), "serve", "--config", e.cfgPath)
	r.cmd.Env = append(os.Environ(), "UPSPROXY_CONFIG=")
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	adminc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = r.logs.Write(append(append([]byte{}, line...), '\n'))
			var m map[string]any
			if json.Unmarshal(line, &m) == nil {
				switch m["msg"] {
				case "proxy listening":
					select {
					case addrc <- fmt.Sprint(m["addr"]):
					default:
					}
				case "admin listening":
					select {
					case adminc <- fmt.Sprint(m["addr"]):
					default:
					}
				}
			}
		}
		r.exit <- r.cmd.Wait()
	}()
	select {
	case r.addr = <-addrc:
		r.admin = <-adminc
	case err := <-r.exit:
		t.Fatalf("replica %s exited: %v\n%s", name, err, r.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("replica %s did not start:\n%s", name, r.logs.String())
	}
	r.alive.Store(true)
	t.Cleanup(func() { r.kill(syscall.SIGKILL) })
	return r
}

// kill signals the replica and waits for it to exit.
func (r *replica) kill(sig syscall.Signal) error {
	if !r.alive.Swap(false) {
		return nil
	}
	_ = r.cmd.Process.Signal(sig)
	select {
	case err := <-r.exit:
		return err
	case <-time.After(30 * time.Second):
		_ = r.cmd.Process.Kill()
		return fmt.Errorf("replica %s did not exit", r.name)
	}
}

// load sends Rate requests to the live replicas until ctx ends. A request
// that fails against a replica alive before and after it counts as failed.
type loadResult struct {
	ok, failed, cutOff atomic.Int64
	mu                 sync.Mutex
	samples            []string
}

func runLoad(ctx context.Context, t *testing.T, replicas func() []*replica, workers int, body string) *loadResult {
	res := &loadResult{}
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				var live []*replica
				for _, r := range replicas() {
					if r.alive.Load() {
						live = append(live, r)
					}
				}
				if len(live) == 0 {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				r := live[rand.IntN(len(live))]
				resp, err := client.Post("http://"+r.addr+"/api/rating/v2409/Rate", "application/json", strings.NewReader(body))
				if err != nil {
					if !r.alive.Load() || ctx.Err() != nil {
						res.cutOff.Add(1) // killed under it: the load balancer's problem
						continue
					}
					res.fail(fmt.Sprintf("%s: %v", r.name, err))
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					res.fail(fmt.Sprintf("%s: %d %s %s", r.name, resp.StatusCode, resp.Header.Get("X-Upsproxy-Error"), b))
					continue
				}
				res.ok.Add(1)
			}
		}()
	}
	go func() { <-ctx.Done(); wg.Wait() }()
	t.Cleanup(wg.Wait)
	return res
}

func (l *loadResult) fail(s string) {
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.samples) < 5 {
		l.samples = append(l.samples, s)
	}
	l.mu.Unlock()
}

// replicaRun is the common shape of the multi-replica tests.
func replicaRun(t *testing.T, accessTTL, duration time.Duration, errorsExpected bool, during func(ctx context.Context, e *env, rs *[]*replica, mu *sync.Mutex)) {
	if testing.Short() {
		t.Skip("multi-replica soak: runs for a minute; skipped with -short")
	}
	e := newEnv(t, envOptions{accessTTL: accessTTL, extra: `reminders {
  warn_before = "168h"
  interval    = "1h"
}`})
	// Log at info: debug access lines for a minute of load are noise.
	cfg, _ := os.ReadFile(e.cfgPath)
	writeFile(t, e.cfgPath, strings.Replace(string(cfg), `level  = "debug"`, `level  = "info"`, 1))
	e.login("main")

	var mu sync.Mutex
	rs := []*replica{e.startReplica(t, "r1"), e.startReplica(t, "r2"), e.startReplica(t, "r3")}
	snapshot := func() []*replica { mu.Lock(); defer mu.Unlock(); return append([]*replica(nil), rs...) }

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	res := runLoad(ctx, t, snapshot, 8, rateBody(t))
	if during != nil {
		during(ctx, e, &rs, &mu)
	}
	<-ctx.Done()
	time.Sleep(200 * time.Millisecond)

	for _, r := range snapshot() {
		if r.alive.Load() {
			if err := r.kill(syscall.SIGTERM); err != nil {
				t.Errorf("replica %s did not stop cleanly on SIGTERM: %v", r.name, err)
			}
		}
		for _, line := range strings.Split(r.logs.String(), "\n") {
			if !errorsExpected && strings.Contains(line, `"level":"error"`) {
				t.Errorf("replica %s logged an error: %s", r.name, line)
			}
		}
	}
	rec, err := e.store.Get(context.Background(), "main", ups.Test)
	if err != nil {
		t.Fatal(err)
	}
	e.rememberStoredTokens("main", ups.Test)
	st := e.sim.Stats()
	t.Logf("%s: %d requests ok, %d failed, %d cut off by kills; %d rotations in Vault, %d refreshes and %d rejected refreshes at UPS",
		duration, res.ok.Load(), res.failed.Load(), res.cutOff.Load(), rec.Token.RefreshCount, st.Refreshes, st.RefreshRejected)
	if n := res.failed.Load(); n > 0 {
		t.Errorf("%d client requests failed, e.g. %v", n, res.samples)
	}
	if rec.Rejected {
		t.Error("the refresh token was lost: Vault marks it rejected")
	}
	if st.RefreshRejected != 0 {
		t.Errorf("UPS rejected %d refreshes: a single-use refresh token was spent twice", st.RefreshRejected)
	}
	if st.Refreshes != rec.Token.RefreshCount {
		t.Errorf("UPS counted %d refreshes but Vault's pair has been rotated %d times", st.Refreshes, rec.Token.RefreshCount)
	}
	if min := int(duration / accessTTL); rec.Token.RefreshCount < min {
		t.Errorf("only %d rotations in %s with a %s token: proactive refresh is not working", rec.Token.RefreshCount, duration, accessTTL)
	}
}

func TestReplicas_ThreeProxiesUnderLoadRotateEachRefreshTokenExactlyOnce(t *testing.T) {
	replicaRun(t, 5*time.Second, 60*time.Second, false, nil)
}

func TestReplicas_SurvivorsCarryOnWhenReplicasAreKilledAtRandomAndNoRefreshTokenIsLost(t *testing.T) {
	replicaRun(t, 5*time.Second, 60*time.Second, false, func(ctx context.Context, e *env, rs *[]*replica, mu *sync.Mutex) {
		go func() {
			n := 0
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Duration(3000+rand.IntN(5000)) * time.Millisecond):
				}
				mu.Lock()
				victim := (*rs)[rand.IntN(len(*rs))]
				mu.Unlock()
				_ = victim.kill(syscall.SIGKILL)
				if ctx.Err() != nil {
					return
				}
				n++
				r := e.startReplica(t, fmt.Sprintf("%s+%d", victim.name, n))
				mu.Lock()
				for i := range *rs {
					if (*rs)[i] == victim {
						(*rs)[i] = r
					}
				}
				mu.Unlock()
			}
		}()
	})
}

func TestReplicas_VaultSealedForAWhileDuringLoadThenBack(t *testing.T) {
	replicaRun(t, 20*time.Second, 45*time.Second, true, func(ctx context.Context, e *env, rs *[]*replica, mu *sync.Mutex) {
		go func() {
			time.Sleep(10 * time.Second)
			e.vault.Seal(t)
			time.Sleep(6 * time.Second)
			e.vault.Unseal(t)
		}()
	})
}
