package pgstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/pgstore"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
)

// BenchmarkCreateIdempotent: idempotent creates through one store (one
// replica's pool), distinct keys, and replays of one key.
func BenchmarkCreateIdempotent(b *testing.B) {
	ctx := context.Background()
	var n atomic.Int64
	create := func(b *testing.B, s *pgstore.Store, key string) {
		id := fmt.Sprintf("run-%d", n.Add(1))
		rec, first := storetest.NewRun("t", id, storetest.Request("shop", "staging"))
		if _, err := s.CreateRun(ctx, rec, first, &engine.IdempotencyRecord{Tenant: "t", Key: key, Fingerprint: "fp", RunID: id,
			CreatedAt: storetest.T0, ExpiresAt: storetest.T0.Add(engine.IdempotencyTTL)}); err != nil {
			b.Fatal(err)
		}
	}
	report := func(b *testing.B) { b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "runs/s") }
	distinct := func() string { return fmt.Sprintf("key-%d", n.Add(1)) }
	b.Run("sequential", func(b *testing.B) {
		s := open(b)
		for b.Loop() {
			create(b, s, distinct())
		}
		report(b)
	})
	b.Run("parallel", func(b *testing.B) {
		s := open(b)
		b.SetParallelism(8) // 16 clients on 2 cores, as the HTTP benchmark
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				create(b, s, distinct())
			}
		})
		report(b)
	})
	b.Run("replay", func(b *testing.B) {
		s := open(b)
		create(b, s, "same")
		b.SetParallelism(8)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				create(b, s, "same")
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "replays/s")
	})
}

// BenchmarkAppend: one step status change (the event, the head and the one
// member it changed) to a run of 100 and of 10,000 members. The cost must not
// grow with the run.
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{100, 10000} {
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
