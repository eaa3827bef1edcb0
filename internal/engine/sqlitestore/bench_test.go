package sqlitestore_test

import (
	"context"
	"fmt"
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

// BenchmarkQueueDrain: n one-step runs of one tenant with a limit of 2 queue
// up on SQLite behind held steps; then the steps pass and the queue drains.
// It reports the drain rate (runs/s), which must not fall with n: each run
// that ends moves every queue position behind it.
func BenchmarkQueueDrain(b *testing.B) {
	for _, n := range []int{300, 1300, 3000} {
		b.Run(fmt.Sprintf("runs=%d", n), func(b *testing.B) {
			var drain time.Duration
			var positions int64
			for b.Loop() {
				d, p := queueDrain(b, n)
				drain += d
				positions += p
			}
			b.ReportMetric(float64(b.N*n)/drain.Seconds(), "runs/s")
			b.ReportMetric(float64(positions)/float64(b.N*n), "positions/run")
		})
	}
}

// queueDrain returns how long the drain took and how many queue positions
// were written during it.
func queueDrain(b *testing.B, n int) (time.Duration, int64) {
	b.StopTimer()
	defer b.StartTimer()
	steps := gateSteps{open: make(chan struct{})}
	e, err := engine.New(engine.Config{Store: open(b), Steps: steps, TenantLimit: func(string) int { return 2 }, LeaveQueuedOnStop: true})
	if err != nil {
		b.Fatal(err)
	}
	var ended, waiting, positions atomic.Int64
	var draining atomic.Bool
	all, queued := make(chan struct{}), make(chan struct{})
	e.Observe(func(_ string, _ *api.Run, evs []api.Event) {
		for _, ev := range evs {
			switch {
			case ev.Type == api.EventRunSubstate && ev.Substate == api.SubstateQueuePosition && draining.Load():
				positions.Add(1)
			case ev.Type != api.EventRunStatus:
			case ev.Status == api.StatusQueued && waiting.Add(1) == int64(n-2):
				close(queued)
			case ev.Status.Terminal() && ended.Add(1) == int64(n):
				close(all)
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
	start := time.Now()
	draining.Store(true)
	close(steps.open)
	select {
	case <-all:
	case <-time.After(10 * time.Minute):
		b.Fatalf("%d of %d runs ended within 10 minutes", ended.Load(), n)
	}
	return time.Since(start), positions.Load()
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
