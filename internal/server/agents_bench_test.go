package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/fleet"
	"github.com/zof-ai/zof-ci/internal/server"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

// BenchmarkIdleAgentsHTTP: 1,000 agents connected over loopback HTTP, each
// holding a poll (poll_wait 1 s here, so every agent polls again every
// second: 30 times the default rate). Reported: memory held per idle
// agent (heap and stacks of the whole process, clients included: an upper
// bound for the server) and CPU per poll; at the default poll_wait of 30 s,
// 1,000 idle agents cost 1000/30 polls a second.
func BenchmarkIdleAgentsHTTP(b *testing.B) {
	const n = 1000
	yaml := withEUPool(agentConfig)
	cfg, err := config.Parse([]byte(yaml), "server.yaml", lookup)
	if err != nil {
		b.Fatal(err)
	}
	fl, err := fleet.New(fleet.Options{Config: cfg, PollWait: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	h := newHarness(b, harnessOpts{config: yaml,
		engineConfig: func(c *engine.Config) { c.Remote = fl },
		configure:    func(o *server.Options) { o.Fleet = fl },
	})
	tr := &http.Transport{MaxIdleConnsPerHost: n + 10}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	post := func(ctx context.Context, path string, in, out any) error {
		body, _ := json.Marshal(in)
		req, _ := http.NewRequestWithContext(ctx, "POST", h.url+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tokAgentEU)
		req.Header.Set(api.AgentProtocolHeader, "1")
		req.Header.Set("Content-Type", "application/json")
		res, err := cl.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("%s: %d", path, res.StatusCode)
		}
		return json.NewDecoder(res.Body).Decode(out)
	}
	ids := make([]string, n)
	for i := range ids {
		var s api.AgentSession
		if err := post(context.Background(), "/v1/agent/sessions", api.AgentHello{Name: fmt.Sprint("a", i), Protocol: 1, Concurrency: 1}, &s); err != nil {
			b.Fatal(err)
		}
		ids[i] = s.AgentID
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	ctx, cancel := context.WithCancel(context.Background())
	var polls sync.WaitGroup
	var mu sync.Mutex
	count := 0
	for _, id := range ids {
		polls.Go(func() {
			for ctx.Err() == nil {
				var w api.AgentWork
				if err := post(ctx, "/v1/agent/poll", api.AgentPoll{AgentID: id, Free: 1}, &w); err != nil {
					return
				}
				mu.Lock()
				count++
				mu.Unlock()
			}
		})
	}
	for fl.Stats()[0].Agents[api.AgentIdle] < n || waiting(fl) < n {
		time.Sleep(10 * time.Millisecond)
	}
	runtime.GC()
	var held runtime.MemStats
	runtime.ReadMemStats(&held)
	mu.Lock()
	start := count
	mu.Unlock()
	cpu0 := cpu(b)
	for b.Loop() {
		time.Sleep(5 * time.Second)
	}
	cpuUsed := cpu(b) - cpu0
	mu.Lock()
	repolls := count - start
	mu.Unlock()
	cancel()
	polls.Wait()
	b.ReportMetric(float64(int64(held.HeapInuse+held.StackInuse)-int64(before.HeapInuse+before.StackInuse))/n, "B/idle-agent")
	b.ReportMetric(float64(cpuUsed.Microseconds())/float64(max(repolls, 1)), "cpu-µs/poll")
	b.ReportMetric(float64(repolls)/b.Elapsed().Seconds(), "polls/s")
}

func waiting(f *fleet.Fleet) int {
	n := 0
	for _, a := range f.List("alpha", "eu") {
		if a.State == api.AgentIdle {
			n++
		}
	}
	return n
}

func cpu(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
