package home

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/pgstore"
	"github.com/zof-ai/zof-ci/internal/engine/pgstore/pgtest"
	"github.com/zof-ai/zof-ci/internal/fleet"
)

// Benchmarks of the fleet across replicas (docs/benchmarks.md, "Endpoint
// agents across replicas"). The agent is in-process, calling the home's
// fleet directly: what differs between the cases is the path of the
// attempt (the home's own fleet, or a delegation over loopback HTTP).

// agentLoop polls f for one lease at a time and ends each with one step
// event and a pass, until ctx ends.
func agentLoop(ctx context.Context, tb testing.TB, f *fleet.Fleet) {
	s, err := f.Connect(eu, api.AgentHello{Name: "bench", Version: "test", Protocol: api.AgentProtocol, Concurrency: 1})
	if err != nil {
		tb.Error(err)
		return
	}
	for ctx.Err() == nil {
		w, err := f.Poll(ctx, eu, api.AgentPoll{AgentID: s.AgentID, Free: 1})
		if err != nil {
			return
		}
		for _, l := range w.Leases {
			_ = f.Report(eu, l.ID, api.LeaseReport{Epoch: l.Epoch, Events: []api.Event{{Type: api.EventStepStatus, Step: 1, StepStatus: api.StepRunning}}})
			_ = f.Result(eu, l.ID, api.LeaseResult{Epoch: l.Epoch, Status: api.StatusPassed,
				Events: []api.Event{{Type: api.EventStepStatus, Step: 1, StepStatus: api.StepPassed, Output: "ok"}}})
		}
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	slices.Sort(d)
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

// BenchmarkMemberRoundTrip: one member's attempt from RunAttempt to its
// outcome (queued, leased, one event reported, passed), on the home and
// through a replica that is not the home. The difference is the per-member
// overhead of delegation.
func BenchmarkMemberRoundTrip(b *testing.B) {
	for _, via := range []string{"on the home", "through another replica"} {
		b.Run(strings.ReplaceAll(via, " ", "_"), func(b *testing.B) {
			c := &cluster{t: b, store: &memStore{secret: "bench-secret"}}
			a := c.replica("a", nil)
			r := a
			if via != "on the home" {
				r = c.replica("b", nil)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go agentLoop(ctx, b, a.fleet)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				out := r.home.RunAttempt(ctx, engine.RemoteAttempt{Tenant: "pay", Pool: "eu", RunID: "run_bench", Member: fmt.Sprint("m", i), Attempt: 1,
					Case: &api.Case{ID: "c", Steps: []api.Step{{Name: "a"}}}}, func([]api.Event) {})
				if out.Status != api.StatusPassed {
					b.Fatalf("outcome %+v", out)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			b.ReportMetric(float64(percentile(lat, 0.5).Microseconds()), "p50-µs")
			b.ReportMetric(float64(percentile(lat, 0.99).Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkForwardAgent: an agent API request (a 200-byte body) answered
// by the home directly and through a replica that forwards it.
func BenchmarkForwardAgent(b *testing.B) {
	c := &cluster{t: b, store: &memStore{secret: "bench-secret"}}
	a := c.replica("a", nil)
	bb := c.replica("b", nil)
	// A's own answer (its agent API, here the test server's) vs B's proxy.
	for _, r := range []*replica{a, bb} {
		b.Run("via_"+r.name, func(b *testing.B) {
			body := strings.Repeat("x", 200)
			client := &http.Client{}
			for range b.N {
				resp, err := client.Post(r.srv.URL+"/v1/agent/heartbeat", "application/json", strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusTeapot {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}

// BenchmarkHomeFailover: the home replica dies (its listener closes and it
// stops renewing, as after SIGKILL) while an agent of the home runs a
// member delegated by replica B; B's attempt is lost at once, runs again,
// and the benchmark measures the time from the death to the next lease
// granted to an agent (on B, the new home). On PostgreSQL, with the
// default home lease (10 s) and renewal (1 s).
func BenchmarkHomeFailover(b *testing.B) {
	url := pgtest.URL(b)
	var total []time.Duration
	for range b.N {
		total = append(total, failoverOnce(b, url))
	}
	b.ReportMetric(float64(percentile(total, 0.5).Milliseconds()), "p50-ms")
	b.ReportMetric(float64(percentile(total, 1).Milliseconds()), "max-ms")
}

func failoverOnce(b *testing.B, url string) time.Duration {
	ctx := context.Background()
	open := func() *pgstore.Store {
		s, err := pgstore.Open(ctx, url, pgstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		return s
	}
	sa, sb := open(), open()
	// Whoever was the home in an earlier iteration is gone: wait it out.
	for {
		home, _, err := sa.TakeFleetHome(ctx, "probe", "http://probe", time.Millisecond)
		if err != nil {
			b.Fatal(err)
		}
		if home == "probe" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The default alive timings: a stream is lost when it breaks.
	a := replicaOn(b, "a", sa, func(o *Options) { o.AliveEvery, o.AliveTimeout = 0, 0 })
	bb := replicaOn(b, "b", sb, func(o *Options) { o.AliveEvery, o.AliveTimeout = 0, 0 })
	if !a.home.IsHome() {
		b.Fatal("a is not the home")
	}
	// A renews as zof serve would until it dies; B runs its real loop.
	aCtx, killA := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(DefaultRenewEvery)
		defer t.Stop()
		for {
			select {
			case <-aCtx.Done():
				return
			case <-t.C:
				a.home.renew(aCtx)
			}
		}
	}()
	bCtx, stopB := context.WithCancel(ctx)
	defer stopB()
	go bb.home.Run(bCtx)

	// An agent on A holds B's member.
	agentA, err := a.fleet.Connect(eu, api.AgentHello{Name: "ag", Protocol: api.AgentProtocol, Concurrency: 1})
	if err != nil {
		b.Fatal(err)
	}
	outs := make(chan engine.RemoteOutcome, 1)
	att := engine.RemoteAttempt{Tenant: "pay", Pool: "eu", RunID: "run_f", Member: "m", Attempt: 1, Case: &api.Case{ID: "m", Steps: []api.Step{{Name: "a"}}}}
	go func() { outs <- bb.home.RunAttempt(bCtx, att, func([]api.Event) {}) }()
	if w, err := a.fleet.Poll(ctx, eu, api.AgentPoll{AgentID: agentA.AgentID, Free: 1}); err != nil || len(w.Leases) != 1 {
		b.Fatalf("A's agent: %+v %v", w, err)
	}

	// A dies.
	died := time.Now()
	killA()
	a.srv.CloseClientConnections()
	a.srv.Close()
	if out := <-outs; out.Lost == "" {
		b.Fatalf("B's attempt: %+v, want lost", out)
	}
	// B's engine runs the member again; the agent connects to the new home.
	att.Attempt = 2
	go func() { outs <- bb.home.RunAttempt(bCtx, att, func([]api.Event) {}) }()
	for !bb.home.IsHome() {
		time.Sleep(10 * time.Millisecond)
	}
	agentB, err := bb.fleet.Connect(eu, api.AgentHello{Name: "ag", Protocol: api.AgentProtocol, Concurrency: 1})
	if err != nil {
		b.Fatal(err)
	}
	w, err := bb.fleet.Poll(ctx, eu, api.AgentPoll{AgentID: agentB.AgentID, Free: 1})
	if err != nil || len(w.Leases) != 1 {
		b.Fatalf("B's agent: %+v %v", w, err)
	}
	took := time.Since(died)
	l := w.Leases[0]
	_ = bb.fleet.Result(eu, l.ID, api.LeaseResult{Epoch: l.Epoch, Status: api.StatusPassed})
	<-outs
	stopB()
	return took
}
