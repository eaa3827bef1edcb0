package sqlitestore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

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
			snap := rec.Run
			i := 0
			for b.Loop() {
				i++
				ev := api.Event{Seq: snap.LastSeq + 1, Type: api.EventStepStatus, RunID: "r1",
					Member: fmt.Sprintf("c%d", i%n), Step: 1 + i%5, StepStatus: api.StepRunning}
				if err := snap.Apply(ev); err != nil {
					b.Fatal(err)
				}
				if err := s.Append(context.Background(), storetest.AppendOf("r1", snap, []api.Event{ev})); err != nil {
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
