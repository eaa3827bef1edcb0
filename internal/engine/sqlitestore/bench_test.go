package sqlitestore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/sqlitestore"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
)

// BenchmarkCreateIdempotent measures runs created per second on a SQLite file,
// each create with its own Idempotency-Key (the target: >= 1,000
// runs/s): the store alone, and through engine.Create (validation, request
// copy, fingerprint, store), one caller at a time and from parallel callers.
// "replay" is the same key over and over: the 200-duplicates path.
func BenchmarkCreateIdempotent(b *testing.B) {
	ctx := context.Background()
	var n atomic.Int64
	storeCreate := func(b *testing.B, s *sqlitestore.Store, key string) {
		id := fmt.Sprintf("run-%d", n.Add(1))
		rec, first := storetest.NewRun("t", id, storetest.Request("shop", "staging"))
		h, err := s.CreateRun(ctx, rec, first, &engine.IdempotencyRecord{Tenant: "t", Key: key, Fingerprint: "fp", RunID: id,
			CreatedAt: storetest.T0, ExpiresAt: storetest.T0.Add(engine.IdempotencyTTL)})
		if err != nil {
			b.Fatal(err)
		}
		_ = h
	}
	engineCreate := func(b *testing.B, e *engine.Engine, key string) {
		if _, _, err := e.Create(ctx, "t", storetest.Request("shop", "staging"), engine.CreateOptions{IdempotencyKey: key}); err != nil {
			b.Fatal(err)
		}
	}
	newEngine := func(b *testing.B) *engine.Engine {
		e, err := engine.New(engine.Config{Store: open(b), Steps: noSteps{}})
		if err != nil {
			b.Fatal(err)
		}
		return e
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "runs/s")
	}
	distinct := func() string { return fmt.Sprintf("key-%d", n.Add(1)) }

	b.Run("store/sequential", func(b *testing.B) {
		s := open(b)
		for b.Loop() {
			storeCreate(b, s, distinct())
		}
		report(b)
	})
	b.Run("store/parallel", func(b *testing.B) {
		s := open(b)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				storeCreate(b, s, distinct())
			}
		})
		report(b)
	})
	b.Run("engine/sequential", func(b *testing.B) {
		e := newEngine(b)
		for b.Loop() {
			engineCreate(b, e, distinct())
		}
		report(b)
	})
	b.Run("engine/parallel", func(b *testing.B) {
		e := newEngine(b)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				engineCreate(b, e, distinct())
			}
		})
		report(b)
	})
	b.Run("engine/replay-parallel", func(b *testing.B) {
		e := newEngine(b)
		engineCreate(b, e, "same")
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				engineCreate(b, e, "same")
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "replays/s")
	})
}

// BenchmarkAppend: one step status event appended per op (the write behind
// every step status change), to runs of 20 and 2,000 members of 5 steps
// each. The store writes the head and the one member the event changes, so
// appends/s must not fall with the run's size.
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{20, 2000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			s := open(b)
			var cases []api.Case
			for i := range n {
				c := api.Case{ID: fmt.Sprintf("c%d", i)}
				for j := range 5 {
					c.Steps = append(c.Steps, api.Step{Name: fmt.Sprintf("step %d", j), Run: &api.Command{Command: "true"}})
				}
				cases = append(cases, c)
			}
			req := storetest.Request("shop", "staging")
			req.Cases = cases
			rec, first := storetest.NewRun("t", "r1", req)
			if _, err := s.CreateRun(context.Background(), rec, first, nil); err != nil {
				b.Fatal(err)
			}
			head := *rec.Run
			head.Members = nil
			i := 0
			for b.Loop() {
				i++
				// What the engine sends: the event, the head and the one member.
				m := rec.Run.Members[i%n]
				m.Steps = append([]api.StepResult(nil), m.Steps...)
				m.Steps[i%5].Status = api.StepRunning
				head.LastSeq++
				ev := api.Event{Seq: head.LastSeq, Type: api.EventStepStatus, RunID: "r1", Member: m.ID, Step: 1 + i%5, StepStatus: api.StepRunning}
				h := head
				a := engine.Append{RunID: "r1", Run: &h, Events: []api.Event{ev}, Members: []engine.MemberUpdate{{Index: i % n, Member: &m}}}
				if err := s.Append(context.Background(), a); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
		})
	}
}

// BenchmarkRunToVerdict: create a run of 10 one-step members and wait for its
// verdict through the engine on SQLite with a step runner that does nothing
// (compare engine.BenchmarkCreateAndComplete on memstore).
func BenchmarkRunToVerdict(b *testing.B) {
	e, err := engine.New(engine.Config{Store: open(b), Steps: noSteps{}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	req := storetest.Request("shop", "staging")
	req.Cases = nil
	for i := range 10 {
		req.Cases = append(req.Cases, api.Case{ID: fmt.Sprintf("c%d", i), Steps: []api.Step{{Name: "s", Run: &api.Command{Command: "true"}}}})
	}
	for b.Loop() {
		r, _, err := e.Create(ctx, "t", req, engine.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		got, err := e.Wait(ctx, "t", r.ID)
		if err != nil || got.Status != api.StatusPassed {
			b.Fatalf("run %s: %v %v", r.ID, got.Status, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "runs/s")
}

// gateSteps blocks every step until open is closed.
type gateSteps struct{ open chan struct{} }

func (g gateSteps) Run(ctx context.Context, _ api.Step, _ engine.StepInput) engine.StepOutput {
	select {
	case <-g.open:
		return engine.StepOutput{Status: api.StepPassed}
	case <-ctx.Done():
		return engine.StepOutput{Status: api.StepCancelled}
	}
}

// drainWindow is how many finished runs one point of the drain curve covers.
const drainWindow = 500

// BenchmarkQueueDrain: n one-step runs of one tenant with a limit of 2 queue
// up on SQLite behind held steps, on an engine configured as zof serve
// configures it; then the steps pass and the queue drains. It reports the
// drain rate (runs/s) overall and, for each window of drainWindow finished
// runs as the depth falls, wN-runs/s (w1 is the deepest queue): the rate
// must not fall with n, nor rise as the queue empties. Each run that ends
// moves the queue positions behind it; positions/run counts those written.
func BenchmarkQueueDrain(b *testing.B) {
	for _, n := range []int{300, 1300, 3000} {
		b.Run(fmt.Sprintf("runs=%d", n), func(b *testing.B) {
			var drain time.Duration
			var positions int64
			windows := make([]time.Duration, n/drainWindow)
			for b.Loop() {
				ends, p := queueDrain(b, n)
				drain += ends[n-1]
				positions += p
				for w := range windows {
					from := time.Duration(0)
					if w > 0 {
						from = ends[w*drainWindow-1]
					}
					windows[w] += ends[(w+1)*drainWindow-1] - from
				}
			}
			b.ReportMetric(float64(b.N*n)/drain.Seconds(), "runs/s")
			b.ReportMetric(float64(positions)/float64(b.N*n), "positions/run")
			for w, d := range windows {
				b.ReportMetric(float64(b.N*drainWindow)/d.Seconds(), fmt.Sprintf("w%d-runs/s", w+1))
			}
		})
	}
}

// queueDrain returns when each run ended, counted from the start of the
// drain (in the order they ended), and how many queue positions were written
// during it.
func queueDrain(b *testing.B, n int) ([]time.Duration, int64) {
	b.StopTimer()
	defer b.StartTimer()
	steps := gateSteps{open: make(chan struct{})}
	// As internal/cli/serve.go configures it (no fleet: every member runs here).
	e, err := engine.New(engine.Config{Store: open(b), Steps: steps, TenantLimit: func(string) int { return 2 },
		LeaveQueuedOnStop: true, SubscriberBuffer: 256})
	if err != nil {
		b.Fatal(err)
	}
	var waiting, positions atomic.Int64
	var draining atomic.Bool
	var start time.Time
	var mu sync.Mutex // guards ends
	ends := make([]time.Duration, 0, n)
	all, queued := make(chan struct{}), make(chan struct{})
	e.Observe(func(_ string, _ *api.Run, evs []api.Event) {
		for _, ev := range evs {
			switch {
			case ev.Type == api.EventRunSubstate && ev.Substate == api.SubstateQueuePosition && draining.Load():
				positions.Add(1)
			case ev.Type != api.EventRunStatus:
			case ev.Status == api.StatusQueued && waiting.Add(1) == int64(n-2):
				close(queued)
			case ev.Status.Terminal():
				mu.Lock()
				if ends = append(ends, time.Since(start)); len(ends) == n {
					close(all)
				}
				mu.Unlock()
			}
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	req := storetest.Request("shop", "staging")
	req.Cases = []api.Case{{ID: "c", Steps: []api.Step{{Name: "s", Run: &api.Command{Command: "true"}}}}}
	for range n {
		if _, _, err = e.Create(ctx, "t", req, engine.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	// Every run but the two holding the slots is queued before the drain starts.
	select {
	case <-queued:
	case <-time.After(10 * time.Minute):
		b.Fatalf("%d of %d runs queued within 10 minutes", waiting.Load(), n-2)
	}
	start = time.Now()
	draining.Store(true)
	close(steps.open)
	select {
	case <-all:
	case <-time.After(10 * time.Minute):
		mu.Lock()
		defer mu.Unlock()
		b.Fatalf("%d of %d runs ended within 10 minutes", len(ends), n)
	}
	mu.Lock()
	defer mu.Unlock()
	return ends, positions.Load()
}

// BenchmarkRunMembers: one run of n one-step members (steps that do nothing)
// to its verdict through the engine on SQLite: what `zof serve` writes per
// member. ns/member must not grow with n.
func BenchmarkRunMembers(b *testing.B) {
	for _, n := range []int{100, 2000, 8000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			e, err := engine.New(engine.Config{Store: open(b), Steps: noSteps{}})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- e.Run(ctx) }()
			defer func() { cancel(); <-done }()
			req := storetest.Request("shop", "staging")
			req.Cases = nil
			for i := range n {
				req.Cases = append(req.Cases, api.Case{ID: fmt.Sprintf("c%05d", i), Steps: []api.Step{{Name: "s", Run: &api.Command{Command: "true"}}}})
			}
			for b.Loop() {
				r, _, err := e.Create(ctx, "t", req, engine.CreateOptions{})
				if err != nil {
					b.Fatal(err)
				}
				got, err := e.Wait(ctx, "t", r.ID)
				if err != nil || got.Status != api.StatusPassed {
					b.Fatalf("run %s: %v %v", r.ID, got.Status, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/member")
		})
	}
}
