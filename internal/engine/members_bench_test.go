package engine_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/memstore"
	"github.com/zof-ai/zof-ci/internal/step"
)

// memberCounts are the run sizes of BenchmarkMembers: cost per member must
// stay flat across them (docs/benchmarks.md reports the curve).
var memberCounts = []int{100, 500, 1000, 2000, 4000, 8000, 20000, 50000}

// okServer answers every request 200 with a small body, on loopback.
func okServer(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// httpCases are n cases of one GET each, expecting 200.
func httpCases(n int) []api.Case {
	cases := make([]api.Case, n)
	for i := range cases {
		cases[i] = api.Case{ID: fmt.Sprintf("c%05d", i), Steps: []api.Step{{
			Name: "get", HTTP: &api.HTTPRequest{Method: "GET", Path: "/"},
			Expect: &api.Expect{Status: []string{"200"}},
		}}}
	}
	return cases
}

// cpuTime is the CPU time this process has used, user and system: the
// machine is shared, so wall time alone says more about the neighbours.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportPer reports wall and CPU time per unit (member or request).
func reportPer(b *testing.B, unit string, n int, cpu time.Duration) {
	per := float64(b.N * n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/per, "ns/"+unit)
	b.ReportMetric(float64(cpu.Nanoseconds())/per, "cpu-ns/"+unit)
}

// BenchmarkMembers: one run of n one-request cases (a real http step through
// step.Executor against a loopback server, memstore, default parallelism)
// from create to verdict. ns/member and cpu-ns/member must not grow with n.
func BenchmarkMembers(b *testing.B) {
	benchMembers(b, func() engine.StepRunner { return step.NewExecutor(step.ExecutorOptions{}) })
}

// BenchmarkMembersEngineOnly is BenchmarkMembers with steps that do nothing:
// the engine's own cost per member (scheduling, events, store, follower).
func BenchmarkMembersEngineOnly(b *testing.B) {
	benchMembers(b, func() engine.StepRunner { return noopSteps{} })
}

func benchMembers(b *testing.B, steps func() engine.StepRunner) {
	for _, n := range memberCounts {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			srv := okServer(b)
			e, err := engine.New(engine.Config{Store: memstore.New(), Steps: steps()})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- e.Run(ctx) }()
			defer func() { cancel(); <-done }()
			req := runReq(srv.URL, httpCases(n)...)
			cpu := cpuTime(b)
			for b.Loop() {
				r, _, err := e.Create(ctx, tenant, req, engine.CreateOptions{})
				if err != nil {
					b.Fatal(err)
				}
				got, err := e.Wait(ctx, tenant, r.ID)
				if err != nil || got.Status != api.StatusPassed {
					b.Fatalf("run %s: %v %v", r.ID, got.Status, err)
				}
			}
			reportPer(b, "member", n, cpuTime(b)-cpu)
		})
	}
}

// BenchmarkPlainLoop is BenchmarkMembers' floor: the same n requests from a
// plain Go loop with the engine's default parallelism, no engine at all.
func BenchmarkPlainLoop(b *testing.B) {
	for _, n := range []int{2000} {
		b.Run(fmt.Sprintf("requests=%d", n), func(b *testing.B) {
			srv := okServer(b)
			client := plainClient()
			cpu := cpuTime(b)
			for b.Loop() {
				plainLoop(b, client, srv.URL, n)
			}
			reportPer(b, "request", n, cpuTime(b)-cpu)
		})
	}
}

func plainClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: engine.DefaultMaxParallel}}
}

// plainLoop makes n GET requests to url, engine.DefaultMaxParallel at once,
// each body read and its status checked: what BenchmarkMembers' steps do,
// without the engine.
func plainLoop(b *testing.B, client *http.Client, url string, n int) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range engine.DefaultMaxParallel {
		wg.Go(func() {
			for range next {
				resp, err := client.Get(url + "/")
				if err != nil {
					b.Error(err)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("status %d", resp.StatusCode)
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// BenchmarkMembersVsPlainLoop measures BenchmarkMembers' run of 2,000 members
// and BenchmarkPlainLoop's 2,000 requests alternately in each iteration, on
// the same loopback server, and reports the engine's cost as a multiple of
// the loop's (cpu-ratio, wall-ratio; the target is at most 1.5): on a shared
// machine the neighbours weigh on both alike. Each half starts after a
// garbage collection, so neither pays for the other's garbage, and the run
// is deleted after its verdict: the process holds one run, as zof run's does.
func BenchmarkMembersVsPlainLoop(b *testing.B) {
	const n = 2000
	srv := okServer(b)
	e, err := engine.New(engine.Config{Store: memstore.New(), Steps: step.NewExecutor(step.ExecutorOptions{})})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	req := runReq(srv.URL, httpCases(n)...)
	client := plainClient()
	var engCPU, engWall, loopCPU, loopWall time.Duration
	for b.Loop() {
		runtime.GC()
		cpu, start := cpuTime(b), time.Now()
		r, _, err := e.Create(ctx, tenant, req, engine.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if got, err := e.Wait(ctx, tenant, r.ID); err != nil || got.Status != api.StatusPassed {
			b.Fatalf("run %s: %v %v", r.ID, got.Status, err)
		}
		engCPU, engWall = engCPU+cpuTime(b)-cpu, engWall+time.Since(start)
		if err := e.Delete(ctx, tenant, r.ID); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		cpu, start = cpuTime(b), time.Now()
		plainLoop(b, client, srv.URL, n)
		loopCPU, loopWall = loopCPU+cpuTime(b)-cpu, loopWall+time.Since(start)
	}
	per := float64(b.N * n)
	b.ReportMetric(float64(engCPU.Nanoseconds())/per, "engine-cpu-ns/member")
	b.ReportMetric(float64(loopCPU.Nanoseconds())/per, "loop-cpu-ns/request")
	b.ReportMetric(float64(engCPU)/float64(loopCPU), "cpu-ratio")
	b.ReportMetric(float64(engWall)/float64(loopWall), "wall-ratio")
}
