package pgstore_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/pgstore/pgtest"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
)

// idle builds n engines on one database that create but do not execute
// (Run is not called): creates alone.
func idle(b *testing.B, url string, n int) []*engine.Engine {
	var out []*engine.Engine
	for i := range n {
		eng, err := engine.New(engine.Config{Store: openAt(b, url), Steps: newSteps(0), Replica: fmt.Sprintf("r%d", i)})
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, eng)
	}
	return out
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// BenchmarkReplicaCreates: idempotent creates (distinct keys) through
// engine.Create, 16 callers spread over 1 or 3 engines, each with its own
// pool, on one database.
func BenchmarkReplicaCreates(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			engs := idle(b, pgtest.URL(b), n)
			var k atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := k.Add(1)
					if _, _, err := engs[int(i)%n].Create(context.Background(), "t", oneCase("true"),
						engine.CreateOptions{IdempotencyKey: fmt.Sprintf("key-%d", i)}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "runs/s")
		})
	}
}

// BenchmarkDuplicateRace: 30 creates with one key, at once, spread over 3
// engines: exactly one run; the figure is how long the race takes.
func BenchmarkDuplicateRace(b *testing.B) {
	engs := idle(b, pgtest.URL(b), 3)
	const racers = 30
	var took []time.Duration
	for i := 0; b.Loop(); i++ {
		key := fmt.Sprintf("race-%d", i)
		ids := make([]string, racers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for j := range racers {
			wg.Go(func() {
				<-start
				run, _, err := engs[j%3].Create(context.Background(), "t", oneCase("true"), engine.CreateOptions{IdempotencyKey: key})
				if err != nil {
					b.Error(err)
					return
				}
				ids[j] = run.ID
			})
		}
		began := time.Now()
		close(start)
		wg.Wait()
		took = append(took, time.Since(began))
		if distinct := slices.Compact(slices.Sorted(slices.Values(ids))); len(distinct) != 1 {
			b.Fatalf("race %d made runs %v, want one", i, distinct)
		}
	}
	b.ReportMetric(float64(quantile(took, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(quantile(took, 0.99).Microseconds())/1000, "p99-ms")
}

// BenchmarkClaim: lease grants. b.N waiting runs of 10 tenants (limit 0)
// are claimed by 4 claimers on 2 pools; each claim is one transaction (the
// tenant lock, the count, the pick, the lease, reading the run).
func BenchmarkClaim(b *testing.B) {
	url := pgtest.URL(b)
	stores := []engine.Store{openAt(b, url), openAt(b, url)}
	for i := range b.N {
		storetest.Create(b, stores[0], fmt.Sprintf("t%d", i%10), fmt.Sprintf("r%07d", i))
	}
	var mu sync.Mutex
	var lat []time.Duration
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Go(func() {
			cl := stores[c%2].(engine.Cluster)
			var mine []time.Duration
			for next.Add(1) <= int64(b.N) {
				for {
					began := time.Now()
					got, err := cl.Claim(context.Background(), fmt.Sprintf("c%d#%d", c, len(mine)), time.Minute, storetest.Limit(0))
					if err != nil {
						b.Errorf("claim: %v", err)
						return
					}
					if got != nil {
						mine = append(mine, time.Since(began))
						break
					}
					// Every tenant with waiting runs was being claimed for by
					// the other claimers: try again.
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "claims/s")
	b.ReportMetric(float64(quantile(lat, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(quantile(lat, 0.99).Microseconds())/1000, "p99-ms")
}

// BenchmarkFanOut: runs executed by replica A (its only replica), followed
// from the start through replica B: the time from A stamping the terminal
// event to B delivering it.
func BenchmarkFanOut(b *testing.B) {
	url := pgtest.URL(b)
	a := runReplica(b, url, "A", 0)
	ctx := context.Background()
	// A holds one run for the whole benchmark; B's limit is 1, so B never
	// claims: it only follows (its listener running, as in zof serve).
	if _, _, err := a.Create(ctx, "t", oneCase("hold"), engine.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	bb := runReplica(b, url, "B", 1)
	if r, err := bb.Get(ctx, "t", mustHeld(b, url)); err != nil || r.Status != api.StatusRunning {
		b.Fatalf("the held run: %v %v", r, err)
	}
	var lat []time.Duration
	for b.Loop() {
		run, _, err := a.Create(ctx, "t", oneCase("true"), engine.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		sub, err := bb.Subscribe(ctx, "t", run.ID, 0)
		if err != nil {
			b.Fatal(err)
		}
		var last api.Event
		var at time.Time
		for ev := range sub.C {
			last, at = ev, time.Now()
		}
		if sub.Err() != nil || !last.Status.Terminal() {
			b.Fatalf("followed to %+v: %v", last, sub.Err())
		}
		lat = append(lat, at.Sub(last.At))
	}
	b.ReportMetric(float64(quantile(lat, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(quantile(lat, 0.99).Microseconds())/1000, "p99-ms")
}

// mustHeld waits until a run is running and returns its id.
func mustHeld(b *testing.B, url string) string {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `LISTEN `+pgx.Identifier{"zof_" + schemaOf(b, conn)}.Sanitize())
	if err != nil {
		b.Fatal(err)
	}
	for {
		var id string
		err := conn.QueryRow(ctx, `SELECT id FROM runs WHERE status = 'running'`).Scan(&id)
		if err == nil {
			return id
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = conn.WaitForNotification(wctx)
		cancel()
		if err != nil {
			b.Fatalf("no run started: %v", err)
		}
	}
}

func schemaOf(b *testing.B, conn *pgx.Conn) string {
	var s string
	if err := conn.QueryRow(context.Background(), `SELECT current_schema()`).Scan(&s); err != nil {
		b.Fatal(err)
	}
	return s
}

// runReplica starts an executing engine for a benchmark (limit: the
// tenant limit it claims under, 0 none).
func runReplica(b *testing.B, url, name string, limit int) *engine.Engine {
	eng, err := engine.New(engine.Config{Store: openAt(b, url), Steps: newSteps(0), Replica: name, LeaveQueuedOnStop: true,
		TenantLimit: func(string) int { return limit }})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = eng.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	return eng
}

// BenchmarkQueueDrain: 3,000 runs queued for one tenant (limit 20), then
// three replicas drain the queue; runs/s is measured per 500 finished, so
// a rate falling with depth shows.
func BenchmarkQueueDrain(b *testing.B) {
	const runs, limit, window = 3000, 20, 500
	for b.Loop() {
		url := pgtest.URL(b)
		creator := idle(b, url, 1)[0]
		ctx := context.Background()
		for range runs {
			if _, _, err := creator.Create(ctx, "t", oneCase("true"), engine.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			b.Fatal(err)
		}
		began := time.Now()
		for i := range 3 {
			eng, err := engine.New(engine.Config{Store: openAt(b, url), Steps: newSteps(0), Replica: fmt.Sprintf("r%d", i),
				TenantLimit: func(string) int { return limit }, LeaveQueuedOnStop: true})
			if err != nil {
				b.Fatal(err)
			}
			rctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); _ = eng.Run(rctx) }()
			b.Cleanup(func() { cancel(); <-done })
		}
		var marks []time.Duration // when each window of finished runs was reached
		deadline := time.Now().Add(10 * time.Minute)
		for len(marks) < runs/window && time.Now().Before(deadline) {
			var finished int
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM runs WHERE status = 'passed'`).Scan(&finished); err != nil {
				b.Fatal(err)
			}
			for len(marks) < finished/window {
				marks = append(marks, time.Since(began))
			}
			time.Sleep(20 * time.Millisecond) // sampling the table, not synchronising
		}
		_ = conn.Close(ctx)
		if len(marks) < runs/window {
			b.Fatalf("drained %d windows of %d in 10 minutes", len(marks), window)
		}
		prev := time.Duration(0)
		for i, m := range marks {
			b.ReportMetric(float64(window)/(m-prev).Seconds(), fmt.Sprintf("runs/s-%d-%d", i*window, (i+1)*window))
			prev = m
		}
		b.ReportMetric(float64(runs)/marks[len(marks)-1].Seconds(), "runs/s")
	}
}
