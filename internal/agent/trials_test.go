package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/client"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/memstore"
	"github.com/zof-ai/zof-ci/internal/fleet"
	"github.com/zof-ai/zof-ci/internal/server"
	"github.com/zof-ai/zof-ci/internal/server/config"
	"github.com/zof-ai/zof-ci/internal/step"
)

// Fault-injection trials against the real server (server.New over an
// engine and a fleet, on loopback) with in-process agents whose transport
// injects the fault. Timings are scaled down (heartbeat 20 ms, TTL 100 ms)
// so a trial takes a fraction of a second; the protocol is the same.
const (
	trialHeartbeat = 20 * time.Millisecond
	trialTTL       = 100 * time.Millisecond
	trialPollWait  = time.Second
	trialFault     = 4 * trialTTL // how long a pause or a partition lasts
)

// faultKind is what happens to the victim agent once it holds the lease.
type faultKind int

const (
	// faultKill: nothing the agent sends gets out any more (SIGKILL: its
	// connections die with it; in-process, its steps are then killed by the
	// agent's own lease-TTL watchdog).
	faultKill faultKind = iota
	// faultPause: the agent's result is held, already sent, then delivered
	// late, after the lease was re-granted (SIGSTOP … SIGCONT with the
	// request in the socket buffer).
	faultPause
	// faultPartition: every request is refused for a while (a proxy that
	// partitions the agent), then the network heals and the agent retries.
	faultPartition
)

func (k faultKind) String() string {
	return [...]string{"kill", "pause", "partition"}[k]
}

// faultyTransport is the victim's network.
type faultyTransport struct {
	base    http.RoundTripper
	kind    faultKind
	tripped chan struct{} // closed when the fault begins
	healed  chan struct{} // closed when a pause or partition ends
	once    sync.Once
	state   atomic.Int32 // 0 healthy, 1 faulted, 2 healed
	after   atomic.Int64 // requests attempted while faulted or after
}

func newFaultyTransport(base http.RoundTripper, kind faultKind) *faultyTransport {
	return &faultyTransport{base: base, kind: kind, tripped: make(chan struct{}), healed: make(chan struct{})}
}

func (t *faultyTransport) trip() {
	t.once.Do(func() {
		t.state.Store(1)
		close(t.tripped)
	})
}

func (t *faultyTransport) heal() {
	if t.state.CompareAndSwap(1, 2) {
		close(t.healed)
	}
}

func (t *faultyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	isResult := strings.HasSuffix(req.URL.Path, "/result")
	isEvents := strings.HasSuffix(req.URL.Path, "/events")
	// The pause catches the result in flight; the others strike once the
	// step's start is reported.
	if t.kind == faultPause && isResult && t.state.Load() == 0 {
		t.trip()
	}
	if t.state.Load() != 0 {
		t.after.Add(1)
	}
	if t.state.Load() == 1 {
		switch t.kind {
		case faultKill:
			<-req.Context().Done()
			return nil, req.Context().Err()
		case faultPartition:
			return nil, errors.New("dial tcp: connection refused (partitioned)")
		case faultPause:
			<-t.healed // delivered late, whatever became of its sender meanwhile
			late := req.Clone(context.WithoutCancel(req.Context()))
			if req.GetBody != nil {
				late.Body, _ = req.GetBody()
			}
			return t.base.RoundTrip(late)
		}
	}
	resp, err := t.base.RoundTrip(req)
	if err == nil && isEvents && t.kind != faultPause && resp.StatusCode/100 == 2 {
		t.trip()
	}
	if err == nil && t.state.Load() != 0 && strings.HasSuffix(req.URL.Path, "/poll") && resp.StatusCode == http.StatusOK {
		// Once faulted the victim takes no new lease (its stops still reach
		// it): whatever of it the run records after the loss is stale.
		var w api.AgentWork
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil && json.Unmarshal(b, &w) == nil {
			w.Leases = nil
			b, _ = json.Marshal(w)
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Del("Content-Length")
	}
	return resp, err
}

// trialServer is zof serve's handler with lanes of tenants, each with a pool
// whose agents are a victim and a healthy one, so trials run side by side.
type trialServer struct {
	url    string
	tokens map[string]string
}

func startTrialServer(tb testing.TB, lanes int) *trialServer {
	tb.Helper()
	ts := &trialServer{tokens: map[string]string{}}
	var y strings.Builder
	y.WriteString("tenants:\n")
	for i := range lanes {
		fmt.Fprintf(&y, "  t%d:\n    local_executor: false\n    tokens:\n      - {name: ci, role: runner, env: USER_%d}\n", i, i)
		fmt.Fprintf(&y, "    pools:\n      p:\n        targets: [\"http://127.0.0.1:*\"]\n        allow_commands: true\n        tokens:\n")
		fmt.Fprintf(&y, "          - {name: victim, env: VICTIM_%d}\n          - {name: healthy, env: HEALTHY_%d}\n", i, i)
		for _, who := range []string{"USER", "VICTIM", "HEALTHY"} {
			ts.tokens[fmt.Sprintf("%s_%d", who, i)] = fmt.Sprintf("%s-token-%04d-0123456789", strings.ToLower(who), i)
		}
	}
	lookup := func(k string) (string, bool) { v, ok := ts.tokens[k]; return v, ok }
	cfg, err := config.Parse([]byte(y.String()), "server.yaml", lookup)
	if err != nil {
		tb.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	fl, err := fleet.New(fleet.Options{Config: cfg, HeartbeatEvery: trialHeartbeat, LeaseTTL: trialTTL, PollWait: trialPollWait,
		SweepEvery: 10 * time.Millisecond, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	eng, err := engine.New(engine.Config{Store: memstore.New(), Steps: step.NewExecutor(step.ExecutorOptions{}), Remote: fl,
		TenantLimit: cfg.TenantLimit, LeaveQueuedOnStop: true, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := server.New(server.Options{Config: cfg, Engine: eng, Fleet: fl, Logger: quiet, Audit: io.Discard})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ts.url = "http://" + ln.Addr().String()
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { fl.Run(ctx) })
	wg.Go(func() { _ = eng.Run(ctx) })
	wg.Go(func() { _ = srv.Serve(ctx, ln) })
	tb.Cleanup(func() {
		stop()
		wg.Wait()
	})
	return ts
}

// trialResult is what one trial saw.
type trialResult struct {
	staleAccepted  int           // events in the run that came from the victim after the fault
	staleAttempted int64         // requests the victim made after the fault began
	redispatch     time.Duration // fault → the healthy agent's step started
	took           time.Duration
	stale          []string
	err            error
}

// trial runs one member on the victim, faults it mid-attempt, lets the
// healthy agent take the member over and reads the run's log.
func (ts *trialServer) trial(lane int, kind faultKind, dir string) (res trialResult) {
	begin := time.Now()
	defer func() { res.took = time.Since(begin) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fail := func(format string, args ...any) trialResult {
		res.err = fmt.Errorf("lane %d, %s: %s", lane, kind, fmt.Sprintf(format, args...))
		return res
	}
	vdir, hdir := filepath.Join(dir, "victim"), filepath.Join(dir, "healthy")
	for _, d := range []string{vdir, hdir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fail("%v", err)
		}
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	ft := newFaultyTransport(base, kind)
	agents := sync.WaitGroup{}
	runAgent := func(ctx context.Context, who, d string, tr http.RoundTripper) {
		agents.Go(func() {
			_ = Run(ctx, Options{Server: ts.url, Token: ts.tokens[fmt.Sprintf("%s_%d", strings.ToUpper(who), lane)], Name: who,
				Concurrency: 1, Version: "trial", Out: io.Discard, Dir: d, Env: []string{"PATH=/usr/bin:/bin", "ROLE=" + who},
				Transport: tr, DrainGrace: time.Second})
		})
	}
	vctx, vstop := context.WithCancel(ctx)
	hctx, hstop := context.WithCancel(ctx)
	defer func() {
		ft.heal()
		vstop()
		hstop()
		agents.Wait()
	}()
	runAgent(vctx, "victim", vdir, ft)

	c, err := client.New(ts.url, ts.tokens[fmt.Sprintf("USER_%d", lane)], client.Options{})
	if err != nil {
		return fail("%v", err)
	}
	req := &api.RunRequest{Project: "trials", Environment: api.Environment{Name: "private", URL: "http://127.0.0.1:1"},
		Cases: []api.Case{{ID: "m", Steps: []api.Step{{Run: &api.Command{Command: "echo ROLE=$ROLE; date +%s%N >> started; sleep 0.05"}}}}}}
	run, _, err := c.Create(ctx, req, "")
	if err != nil {
		return fail("create: %v", err)
	}
	select {
	case <-ft.tripped:
	case <-ctx.Done():
		return fail("the victim never held the member")
	}
	faultAt := time.Now()
	runAgent(hctx, "healthy", hdir, base)
	if kind != faultKill {
		go func() {
			select {
			case <-time.After(trialFault):
				ft.heal()
			case <-ctx.Done():
			}
		}()
	}
	st, err := c.Events(ctx, run.ID, 0)
	if err != nil {
		return fail("events: %v", err)
	}
	defer st.Close()
	// The victim takes no lease after the fault: any of its step events
	// accepted after the lease was lost is a stale write accepted.
	var events []api.Event
	var final api.Status
	for {
		ev, err := st.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return fail("reading the run's events: %v", err)
			}
			break
		}
		events = append(events, ev)
		if ev.Type == api.EventRunStatus {
			final = ev.Status
		}
	}
	lost := false
	for _, ev := range events {
		if ev.Type == api.EventLog && strings.HasPrefix(ev.Message, "lease lost") {
			lost = true
		}
		if lost && ev.Type == api.EventStepStatus && strings.Contains(ev.Output, "ROLE=victim") {
			res.staleAccepted++
			res.stale = append(res.stale, fmt.Sprintf("%s seq %d: %s", kind, ev.Seq, ev.Output))
		}
		if os.Getenv("ZOF_TRIAL_DEBUG") != "" {
			res.stale = append(res.stale, fmt.Sprintf("%s seq %d: %s %s %s %d %s %q", kind, ev.Seq, ev.Type, ev.StepStatus, ev.Status, ev.Attempt, ev.Message+ev.Reason, ev.Output))
		}
	}
	if !lost {
		return fail("the lease was never lost: the fault did not take")
	}
	if final != api.StatusPassed {
		return fail("the run ended %s, want passed on the healthy agent", final)
	}
	// Re-dispatch: the fault to the next start of the member, on either agent.
	var starts []int64
	for _, d := range []string{vdir, hdir} {
		b, _ := os.ReadFile(filepath.Join(d, "started"))
		for _, f := range strings.Fields(string(b)) {
			var ns int64
			if _, err := fmt.Sscan(f, &ns); err == nil && time.Unix(0, ns).After(faultAt) {
				starts = append(starts, ns)
			}
		}
	}
	if len(starts) > 0 {
		res.redispatch = time.Unix(0, slices.Min(starts)).Sub(faultAt)
	}
	// Let the pause end and the victim say its last before counting.
	ft.heal()
	vstop()
	hstop()
	agents.Wait()
	res.staleAttempted = ft.after.Load()
	return res
}

// runTrials runs n trials over lanes, the fault kinds in turn, and sums them.
func runTrials(tb testing.TB, n, lanes int) (results []trialResult) {
	ts := startTrialServer(tb, lanes)
	dir := tb.TempDir()
	var mu sync.Mutex
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for lane := range lanes {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				r := ts.trial(lane, faultKind(i%3), filepath.Join(dir, fmt.Sprint(i)))
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return results
}

// TestFencingTrials: over trials of every fault kind, no write of a fenced
// agent is accepted, and every member passes on the other agent.
func TestFencingTrials(t *testing.T) {
	if testing.Short() {
		t.Skip("fault-injection trials take a few seconds")
	}
	n, lanes := 12, 4
	if os.Getenv("ZOF_TRIAL_DEBUG") != "" {
		n, lanes = 3, 1
	}
	for _, r := range runTrials(t, n, lanes) {
		if r.err != nil {
			t.Error(r.err)
		}
		if os.Getenv("ZOF_TRIAL_DEBUG") != "" {
			t.Logf("%s", strings.Join(r.stale, "\n"))
		}
		if r.staleAccepted != 0 {
			t.Errorf("%d stale writes of a fenced agent were accepted: %s", r.staleAccepted, strings.Join(r.stale, "\n"))
		}
		t.Logf("trial took %s", r.took)
	}
}

// BenchmarkFencingTrials runs b.N fault-injection trials (SIGKILL-like,
// SIGSTOP/SIGCONT-like, partition, in turn) on 8 lanes:
//
//	go test ./internal/agent -run '^$' -bench FencingTrials -benchtime 1002x
func BenchmarkFencingTrials(b *testing.B) {
	results := runTrials(b, b.N, 8)
	var stale, attempted, failed int
	var redispatch []time.Duration
	for _, r := range results {
		if r.err != nil {
			failed++
			b.Log(r.err)
		}
		stale += r.staleAccepted
		if r.staleAccepted > 0 {
			b.Logf("stale writes accepted: %s", strings.Join(r.stale, "\n"))
		}
		attempted += int(r.staleAttempted)
		if r.redispatch > 0 {
			redispatch = append(redispatch, r.redispatch)
		}
	}
	slices.Sort(redispatch)
	pct := func(p float64) float64 {
		if len(redispatch) == 0 {
			return 0
		}
		return float64(redispatch[min(len(redispatch)-1, int(p*float64(len(redispatch))))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(results)), "trials")
	b.ReportMetric(float64(failed), "failed-trials")
	b.ReportMetric(float64(stale), "stale-accepted")
	b.ReportMetric(float64(attempted), "requests-after-fault")
	b.ReportMetric(pct(0.5), "redispatch-p50-ms")
	b.ReportMetric(pct(0.99), "redispatch-p99-ms")
}
