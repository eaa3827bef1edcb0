package fleet_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/sqlitestore"
	"github.com/zof-ai/zof-ci/internal/fleet"
	"github.com/zof-ai/zof-ci/internal/server/config"
	"github.com/zof-ai/zof-ci/internal/step"
)

// Benchmarks of the dispatcher (docs/benchmarks.md, Endpoint agents). The
// agents are in-process fakes calling the fleet's methods directly: what is
// measured is the dispatcher (queue, leases, epochs, wake-ups) and, for the
// member overhead, the engine and SQLite store around it, not HTTP.

func benchFleet(b *testing.B, epochs fleet.EpochStore) *fleet.Fleet {
	b.Helper()
	cfg, err := config.Parse(fmt.Appendf(nil, yamlConfig, ""), "server.yaml", nil)
	if err != nil {
		b.Fatal(err)
	}
	f, err := fleet.New(fleet.Options{Config: cfg, Epochs: epochs, PollWait: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	return f
}

func connect(b *testing.B, f *fleet.Fleet, name string, concurrency int) string {
	s, err := f.Connect(eu, api.AgentHello{Name: name, Protocol: api.AgentProtocol, Concurrency: concurrency})
	if err != nil {
		b.Fatal(err)
	}
	return s.AgentID
}

func benchAttempt(run, member string) engine.RemoteAttempt {
	return engine.RemoteAttempt{Tenant: "pay", Pool: "eu", RunID: run, Member: member, Attempt: 1,
		Case: &api.Case{ID: member, Steps: []api.Step{{Name: "a"}}}}
}

// fakeAgent polls with free = concurrency and passes every lease at once,
// until ctx ends; it counts the leases it got.
func fakeAgent(ctx context.Context, f *fleet.Fleet, id string, free int, got *atomic.Int64) {
	for ctx.Err() == nil {
		w, err := f.Poll(ctx, eu, api.AgentPoll{AgentID: id, Free: free})
		if err != nil {
			return
		}
		for _, l := range w.Leases {
			got.Add(1)
			_ = f.Result(eu, l.ID, api.LeaseResult{Epoch: l.Epoch, Status: api.StatusPassed,
				Events: []api.Event{{Type: api.EventStepStatus, Step: 1, StepStatus: api.StepPassed}}})
		}
	}
}

// BenchmarkLeaseGrants: attempts queued, leased by 10 agents, and ended by
// their results; epochs are reserved in the data directory's file, as zof
// serve does. grants/s is what one pool sustains.
func BenchmarkLeaseGrants(b *testing.B) {
	f := benchFleet(b, fleet.NewFileEpochs(filepath.Join(b.TempDir(), "lease-epoch")))
	ctx, cancel := context.WithCancel(context.Background())
	var got atomic.Int64
	var wg sync.WaitGroup
	for i := range 10 {
		id := connect(b, f, fmt.Sprintf("a%d", i), 4)
		wg.Go(func() { fakeAgent(ctx, f, id, 4, &got) })
	}
	const batch = 1000
	for b.Loop() {
		var runs sync.WaitGroup
		for i := range batch {
			runs.Go(func() {
				out := f.RunAttempt(ctx, benchAttempt("run_1", fmt.Sprint(i)), func([]api.Event) {})
				if out.Status != api.StatusPassed {
					b.Errorf("outcome %+v", out)
				}
			})
		}
		runs.Wait()
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "grants/s")
	b.ReportMetric(0, "ns/op")
	cancel()
	wg.Wait()
}

// BenchmarkDispatchWakeup: ten idle agents hold polls; one attempt becomes
// eligible; the time until an agent holds its lease. p50 and p99 in µs.
func BenchmarkDispatchWakeup(b *testing.B) {
	f := benchFleet(b, &fleet.MemEpochs{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	received := make(chan time.Time, 16)
	var wg sync.WaitGroup
	for i := range 10 {
		id := connect(b, f, fmt.Sprintf("a%d", i), 1)
		wg.Go(func() {
			for ctx.Err() == nil {
				w, err := f.Poll(ctx, eu, api.AgentPoll{AgentID: id, Free: 1})
				if err != nil {
					return
				}
				for _, l := range w.Leases {
					received <- time.Now()
					_ = f.Result(eu, l.ID, api.LeaseResult{Epoch: l.Epoch, Status: api.StatusPassed})
				}
			}
		})
	}
	var lat []time.Duration
	for b.Loop() {
		// Every agent is back in a held poll before the attempt is queued.
		for f.Waiting("pay", "eu") < 10 {
			runtime.Gosched()
		}
		start := time.Now()
		go f.RunAttempt(ctx, benchAttempt("run_1", "c"), func([]api.Event) {})
		lat = append(lat, (<-received).Sub(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	cancel()
	wg.Wait()
}

// BenchmarkIdleAgents: 1,000 agents each hold a poll; then 1,000 attempts
// arrive at once. Every attempt is leased exactly once (0 conflicts), no
// poll returns empty-handed while work waits (only as many agents woken as
// there are attempts), and the heap held per idle agent is reported.
func BenchmarkIdleAgents(b *testing.B) {
	const n = 1000
	for b.Loop() {
		f := benchFleet(b, &fleet.MemEpochs{})
		ctx, cancel := context.WithCancel(context.Background())
		ids := make([]string, n)
		for i := range ids {
			ids[i] = connect(b, f, fmt.Sprintf("a%d", i), 1)
		}
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		var mu sync.Mutex
		owner := map[string]string{}
		var empty, conflicts atomic.Int64
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Go(func() {
				w, err := f.Poll(ctx, eu, api.AgentPoll{AgentID: id, Free: 1})
				if err != nil || ctx.Err() != nil {
					return
				}
				if len(w.Leases) == 0 {
					empty.Add(1)
				}
				for _, l := range w.Leases {
					mu.Lock()
					if _, dup := owner[l.Member]; dup {
						conflicts.Add(1)
					}
					owner[l.Member] = id
					mu.Unlock()
					_ = f.Result(eu, l.ID, api.LeaseResult{Epoch: l.Epoch, Status: api.StatusPassed})
				}
			})
		}
		for f.Waiting("pay", "eu") < n {
			runtime.Gosched()
		}
		var held runtime.MemStats
		runtime.ReadMemStats(&held)
		var runs sync.WaitGroup
		for i := range n {
			runs.Go(func() { f.RunAttempt(ctx, benchAttempt("run_1", fmt.Sprint(i)), func([]api.Event) {}) })
		}
		runs.Wait()
		wg.Wait()
		cancel()
		if conflicts.Load() != 0 || empty.Load() != 0 || len(owner) != n {
			b.Fatalf("%d conflicts, %d polls woken for nothing, %d of %d leased", conflicts.Load(), empty.Load(), len(owner), n)
		}
		b.ReportMetric(float64(conflicts.Load()), "conflicts")
		b.ReportMetric(float64(int64(held.HeapInuse)-int64(before.HeapInuse))/n, "heap-B/idle-agent")
		b.ReportMetric(float64(int64(held.StackInuse)-int64(before.StackInuse))/n, "stack-B/idle-agent")
	}
}

type noopSteps struct{}

func (noopSteps) Run(context.Context, api.Step, step.Input) step.Output {
	return step.Output{Status: api.StepPassed}
}

// BenchmarkMembersThroughFleet: one run of 2,000 one-step members on an
// engine over SQLite, executed locally (steps that do nothing) or through
// the fleet by 10 in-process agents that pass every lease at once. The
// difference of ns/member is the fleet's overhead per member.
func BenchmarkMembersThroughFleet(b *testing.B) {
	const n = 2000
	for _, via := range []string{"local", "fleet"} {
		b.Run("via="+via, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			store, err := sqlitestore.Open(ctx, filepath.Join(b.TempDir(), "zof.db"), sqlitestore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			f := benchFleet(b, fleet.NewFileEpochs(filepath.Join(b.TempDir(), "lease-epoch")))
			e, err := engine.New(engine.Config{Store: store, Steps: noopSteps{}, Remote: f})
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan error)
			go func() { done <- e.Run(ctx) }()
			var got atomic.Int64
			var wg sync.WaitGroup
			for i := range 10 {
				id := connect(b, f, fmt.Sprintf("a%d", i), 4)
				wg.Go(func() { fakeAgent(ctx, f, id, 4, &got) })
			}
			url := "http://127.0.0.1:9"
			if via == "fleet" {
				url = "https://api.eu.internal"
			}
			req := &api.RunRequest{Project: "shop", Environment: api.Environment{Name: "e", URL: url}, MaxParallel: 40,
				Selection: api.Selection{Scope: "all", Effective: "all"}}
			for i := range n {
				req.Cases = append(req.Cases, api.Case{ID: fmt.Sprintf("c%05d", i), Steps: []api.Step{{Name: "get", HTTP: &api.HTTPRequest{Method: "GET", Path: "/"}}}})
			}
			for b.Loop() {
				r, _, err := e.Create(ctx, "pay", req, engine.CreateOptions{})
				if err != nil {
					b.Fatal(err)
				}
				final, err := e.Wait(ctx, "pay", r.ID)
				if err != nil || final.Status != api.StatusPassed {
					b.Fatalf("run %v %v", final.Status, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/member")
			if via == "fleet" && got.Load() != int64(b.N*n) {
				b.Fatalf("%d leases for %d members", got.Load(), b.N*n)
			}
			cancel()
			<-done
			wg.Wait()
		})
	}
}
