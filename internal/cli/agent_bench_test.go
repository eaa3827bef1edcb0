package cli

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/client"
)

// Benchmarks of zof agent as real processes: the zof binary built from
// this tree, a real zof serve, real agents (docs/benchmarks.md, Endpoint agents).

const (
	benchUserToken  = "bench-runner-token-000000001"
	benchAgentToken = "bench-agent-token-0000000001"
)

// benchBinary builds zof into a temporary directory the way releases are
// built (scripts/build.sh: static, -trimpath, stripped), so memory figures
// are those of the binary users run.
func benchBinary(b *testing.B) string {
	b.Helper()
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Dir(filepath.Dir(filepath.Dir(file)))
	bin := filepath.Join(b.TempDir(), "zof")
	cmd := exec.Command("sh", "scripts/build.sh", bin)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "VERSION=bench")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePort(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// benchServe starts zof serve with one tenant and a pool whose targets are
// loopback, and returns its URL.
func benchServe(b *testing.B, bin string) string {
	b.Helper()
	dir := b.TempDir()
	cfg := `tenants:
  bench:
    local_executor: false
    tokens:
      - {name: ci, role: runner, env: BENCH_USER}
    pools:
      p:
        targets: ["http://127.0.0.1:*"]
        allow_commands: true
        tokens:
          - {name: agents, env: BENCH_AGENT}
`
	if err := os.WriteFile(filepath.Join(dir, "server.yaml"), []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	port := freePort(b)
	cmd := exec.Command(bin, "serve", "--data", filepath.Join(dir, "data"), "--config", filepath.Join(dir, "server.yaml"),
		"--listen", "127.0.0.1:"+port, "--metrics-listen", "off")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "BENCH_USER=" + benchUserToken, "BENCH_AGENT=" + benchAgentToken}
	startBench(b, cmd)
	u := "http://127.0.0.1:" + port
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(u + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return u
			}
		}
		if time.Now().After(end) {
			b.Fatal("zof serve did not become ready within 30s")
		}
	}
}

// startBench starts cmd and kills it when the benchmark ends.
func startBench(b *testing.B, cmd *exec.Cmd) {
	b.Helper()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
}

// agentCmd is a zof agent of the bench pool.
func agentCmd(bin, server, name, dir string, concurrency int) *exec.Cmd {
	cmd := exec.Command(bin, "agent", "--server", server, "--name", name, "--dir", dir, "--concurrency", strconv.Itoa(concurrency))
	cmd.Env = []string{"PATH=/usr/bin:/bin", "ZOF_AGENT_TOKEN=" + benchAgentToken}
	return cmd
}

// procStatus reads a field of /proc/PID/status in kB.
func procStatus(b *testing.B, pid int, field string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// BenchmarkAgentIdle: one connected, idle zof agent for 65 s (two poll
// windows of the server's 30 s poll_wait) behind a counting proxy: its
// requests per 30 s and its memory.
//
//	go test ./internal/cli -run '^$' -bench AgentIdle -benchtime 1x
func BenchmarkAgentIdle(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads /proc")
	}
	bin := benchBinary(b)
	server := benchServe(b, bin)
	target, _ := url.Parse(server)
	var requests atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.FlushInterval = -1
	counting := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		proxy.ServeHTTP(w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = counting.Serve(ln) }()
	defer counting.Close()
	const idle = 65 * time.Second
	for b.Loop() {
		cmd := agentCmd(bin, "http://"+ln.Addr().String(), "idle", b.TempDir(), 1)
		startBench(b, cmd)
		// Connected: the hello and the first poll.
		for end := time.Now().Add(30 * time.Second); requests.Load() < 2; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(end) {
				b.Fatal("the agent did not connect within 30s")
			}
		}
		base := requests.Load()
		time.Sleep(idle)
		n := requests.Load() - base
		b.ReportMetric(float64(n)/(idle.Seconds()/30), "requests/30s")
		b.ReportMetric(procStatus(b, cmd.Process.Pid, "VmRSS")/1024, "RSS-MB")
		b.ReportMetric(procStatus(b, cmd.Process.Pid, "VmHWM")/1024, "peak-RSS-MB")
		// RSS is the agent's own memory (anonymous) plus the pages of the
		// zof binary it touched (file-backed: shared with every zof process
		// on the machine and reclaimable).
		b.ReportMetric(procStatus(b, cmd.Process.Pid, "RssAnon")/1024, "anon-MB")
		b.ReportMetric(procStatus(b, cmd.Process.Pid, "RssFile")/1024, "file-MB")
	}
}

// BenchmarkAgentLost: 20 members held by 4 zof agents (concurrency 5) are
// orphaned by SIGKILL of all four; a standby agent takes them over once
// their leases expire (the server's defaults: heartbeat 5 s, TTL 15 s).
// Reported: SIGKILL → each member's step starting again, p50 and p99 (the
// maximum of 20).
//
//	go test ./internal/cli -run '^$' -bench AgentLost -benchtime 1x
func BenchmarkAgentLost(b *testing.B) {
	const agents, per = 4, 5
	const members = agents * per
	bin := benchBinary(b)
	server := benchServe(b, bin)
	c, err := client.New(server, benchUserToken, client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		out := b.TempDir()
		req := &api.RunRequest{Project: "bench", Environment: api.Environment{Name: "private", URL: "http://127.0.0.1:1"}, MaxParallel: members}
		for i := range members {
			cmd := fmt.Sprintf("if [ -e %[1]s/%[2]d.first ]; then date +%%s%%N > %[1]s/%[2]d.again; else date +%%s%%N > %[1]s/%[2]d.first; sleep 120; fi", out, i)
			req.Cases = append(req.Cases, api.Case{ID: fmt.Sprintf("m%02d", i), Steps: []api.Step{{Run: &api.Command{Command: cmd}}}})
		}
		var busy []*exec.Cmd
		for i := range agents {
			cmd := agentCmd(bin, server, fmt.Sprintf("busy-%d", i), b.TempDir(), per)
			startBench(b, cmd)
			busy = append(busy, cmd)
		}
		run, _, err := c.Create(context.Background(), req, "")
		if err != nil {
			b.Fatal(err)
		}
		for end := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			firsts, _ := filepath.Glob(filepath.Join(out, "*.first"))
			if len(firsts) == members {
				break
			}
			if time.Now().After(end) {
				b.Fatalf("only %d of %d members started within 60s", len(firsts), members)
			}
		}
		startBench(b, agentCmd(bin, server, "standby", b.TempDir(), members))
		killed := time.Now()
		for _, cmd := range busy {
			_ = cmd.Process.Kill()
		}
		var took []time.Duration
		for end := time.Now().Add(120 * time.Second); len(took) < members; time.Sleep(50 * time.Millisecond) {
			took = took[:0]
			for i := range members {
				bs, err := os.ReadFile(filepath.Join(out, fmt.Sprintf("%d.again", i)))
				if err != nil {
					continue
				}
				ns, err := strconv.ParseInt(strings.TrimSpace(string(bs)), 10, 64)
				if err == nil {
					took = append(took, time.Unix(0, ns).Sub(killed))
				}
			}
			if time.Now().After(end) {
				b.Fatalf("only %d of %d members ran again within 120s of the SIGKILL", len(took), members)
			}
		}
		slices.Sort(took)
		got, err := c.Get(context.Background(), run.ID)
		if err != nil {
			b.Fatal(err)
		}
		for end := time.Now().Add(60 * time.Second); !got.Status.Terminal(); time.Sleep(100 * time.Millisecond) {
			if got, err = c.Get(context.Background(), run.ID); err != nil || time.Now().After(end) {
				b.Fatalf("the run did not end: %v", err)
			}
		}
		if got.Status != api.StatusPassed {
			b.Fatalf("the run ended %s, want passed (no member failed for its agent's death)", got.Status)
		}
		b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "redispatch-p50-ms")
		b.ReportMetric(float64(took[len(took)-1].Milliseconds()), "redispatch-p99-ms")
	}
}
