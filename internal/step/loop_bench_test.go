package step

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// loopParallel is the engine's default parallelism (engine.DefaultMaxParallel;
// the engine imports this package, so it is repeated here).
const loopParallel = 4

// loopRequests is how many requests one iteration of the loop benchmarks makes.
const loopRequests = 2000

// inParallel calls do loopRequests times, loopParallel at once.
func inParallel(do func()) {
	var wg sync.WaitGroup
	next := make(chan struct{})
	for range loopParallel {
		wg.Go(func() {
			for range next {
				do()
			}
		})
	}
	for range loopRequests {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
}

// cpuNow is this process's CPU time, user and system.
func cpuNow(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportPerRequest(b *testing.B, cpu time.Duration) {
	per := float64(b.N * loopRequests)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/per, "ns/request")
	b.ReportMetric(float64(cpu.Nanoseconds())/per, "cpu-ns/request")
}

func loopServer(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// BenchmarkExecutorLoop is 2,000 one-request http steps (GET, expect 200, a
// run with one secret) through Executor.Run, 4 at a time: the executor's
// share of engine.BenchmarkMembers, to compare with BenchmarkClientLoop.
func BenchmarkExecutorLoop(b *testing.B) {
	srv := loopServer(b)
	ex := NewExecutor(ExecutorOptions{})
	defer ex.Close()
	st := api.Step{Name: "get", HTTP: &api.HTTPRequest{Method: "GET", Path: "/"}, Expect: &api.Expect{Status: []string{"200"}}}
	in := Input{BaseURL: srv.URL, Mask: secret.NewMasker([]string{"s3cret-token"})}
	b.ReportAllocs()
	cpu := cpuNow(b)
	for b.Loop() {
		inParallel(func() {
			if out := ex.Run(context.Background(), st, in); out.Status != api.StepPassed {
				b.Error(out.Failure)
			}
		})
	}
	reportPerRequest(b, cpuNow(b)-cpu)
}

// BenchmarkClientLoop is BenchmarkExecutorLoop's floor: the same requests
// through a bare http.Client, status checked, body read.
func BenchmarkClientLoop(b *testing.B) {
	srv := loopServer(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: loopParallel}}
	defer client.CloseIdleConnections()
	b.ReportAllocs()
	cpu := cpuNow(b)
	for b.Loop() {
		inParallel(func() {
			resp, err := client.Get(srv.URL + "/")
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
			}
		})
	}
	reportPerRequest(b, cpuNow(b)-cpu)
}
