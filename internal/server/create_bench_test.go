package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/sqlitestore"
	"github.com/zof-ai/zof-ci/internal/server"
	"github.com/zof-ai/zof-ci/internal/server/config"
	"github.com/zof-ai/zof-ci/internal/step"
)

// passSteps passes every step at once: runs finish as fast as the tenant's two
// slots allow, and the queue behind them moves all the time.
type passSteps struct{}

func (passSteps) Run(context.Context, api.Step, step.Input) step.Output {
	return step.Output{Status: api.StepPassed}
}

// holdSteps keeps every step running until the benchmark ends: the tenant's two
// slots stay busy and every other run queues, so what is measured is creation
// (and queueing), not execution.
type holdSteps struct{}

func (holdSteps) Run(ctx context.Context, _ api.Step, _ step.Input) step.Output {
	<-ctx.Done()
	return step.Output{Status: api.StepCancelled}
}

// sqliteServer is zof serve as cli/serve.go wires it: SQLite store, engine, HTTP API on loopback.
func sqliteServer(b *testing.B, steps engine.StepRunner) (url string) {
	b.Helper()
	cfg, err := config.Parse([]byte(testConfig), "server.yaml", lookup)
	if err != nil {
		b.Fatal(err)
	}
	store, err := sqlitestore.Open(context.Background(), filepath.Join(b.TempDir(), sqlitestore.FileName), sqlitestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	eng, err := engine.New(engine.Config{Store: store, Steps: steps, TenantLimit: cfg.TenantLimit, RunURL: cfg.RunURL, LeaveQueuedOnStop: true})
	if err != nil {
		b.Fatal(err)
	}
	engCtx, stopEngine := context.WithCancel(context.Background())
	engDone := make(chan struct{})
	go func() { defer close(engDone); _ = eng.Run(engCtx) }()
	srv, err := server.New(server.Options{Config: cfg, Engine: eng, Ready: store.Ping, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Audit: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	b.Cleanup(func() {
		stop()
		<-served
		stopEngine()
		<-engDone
		store.Close()
	})
	return "http://" + ln.Addr().String()
}

// BenchmarkCreateHTTP measures idempotent creates through POST /v1/runs on the
// SQLite store (api.md: at least 1,000 runs/s), each with its own key, from 16
// concurrent clients; then 200 identical concurrent creates must make one run.
// "queued": the tenant's slots stay busy, every run queues (creation alone);
// "finishing": runs pass at once, so the queue moves under the creates.
func BenchmarkCreateHTTP(b *testing.B) {
	b.Run("queued", func(b *testing.B) { benchCreateHTTP(b, holdSteps{}) })
	b.Run("finishing", func(b *testing.B) { benchCreateHTTP(b, passSteps{}) })
}

func benchCreateHTTP(b *testing.B, steps engine.StepRunner) {
	url := sqliteServer(b, steps)
	body, err := json.Marshal(runReq("bench", "local", []api.Step{httpStep("ok")}))
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	post := func(key string) (int, string, error) {
		req, _ := http.NewRequest(http.MethodPost, url+"/v1/runs", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tokAlphaRunner)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(api.HeaderIdempotencyKey, `"`+key+`"`)
		res, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer res.Body.Close()
		var run api.Run
		_ = json.NewDecoder(res.Body).Decode(&run)
		return res.StatusCode, run.ID, nil
	}
	const clients = 16
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				if code, _, err := post(fmt.Sprintf("bench-%d", n)); err != nil || code != http.StatusCreated {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if failed.Load() > 0 {
		b.Fatalf("%d creates failed", failed.Load())
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "runs/s")

	// The race: 200 identical creates at once, exactly one run.
	ids := make(chan string, 200)
	var race sync.WaitGroup
	for range 200 {
		race.Add(1)
		go func() {
			defer race.Done()
			if code, id, err := post("the-same-key"); err == nil && (code == http.StatusCreated || code == http.StatusOK) {
				ids <- id
			}
		}()
	}
	race.Wait()
	close(ids)
	distinct := map[string]bool{}
	n := 0
	for id := range ids {
		distinct[id] = true
		n++
	}
	if n != 200 || len(distinct) != 1 {
		b.Fatalf("200 identical creates: %d answered, %d distinct runs (want 200 and 1)", n, len(distinct))
	}
}
