package runner

import (
	"context"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/client"
	"github.com/zof-ai/zof-ci/internal/clienttest"
	"github.com/zof-ai/zof-ci/internal/reporters/console"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
)

// tapSource tells the benchmark when the follower has seen the run running.
type tapSource struct {
	source
	running chan struct{}
	closed  bool
}

func (t *tapSource) watch(ctx context.Context, after int64, ch chan<- change) error {
	mid := make(chan change)
	done := make(chan error, 1)
	go func() { done <- t.source.watch(ctx, after, mid); close(mid) }()
	for c := range mid {
		if !t.closed && ((c.event != nil && c.event.Type == api.EventStepStatus && c.event.StepStatus == api.StepRunning) ||
			(c.snap != nil && c.snap.Status == api.StatusRunning)) {
			t.closed = true
			close(t.running)
		}
		select {
		case ch <- c:
		case <-ctx.Done():
		}
	}
	return <-done
}

// BenchmarkTimeToVerdict measures, against the real server on loopback, the time from the
// run's terminal event on the server (its event's timestamp) to the follower returning the
// verdict: over the stream, and by polling at the default --poll-interval (the fallback).
func BenchmarkTimeToVerdict(b *testing.B) {
	srv := clienttest.Start(b, clienttest.Options{})
	c, err := client.New(srv.URL, clienttest.Token, client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	con, err := console.NewConsole(report.Options{Out: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []struct {
		name     string
		noStream bool
	}{{"stream", false}, {fmt.Sprintf("poll-%s", DefaultPollInterval), true}} {
		b.Run(mode.name, func(b *testing.B) {
			var lat []time.Duration
			for i := 0; b.Loop(); i++ {
				key := fmt.Sprintf("%s-%d", mode.name, i)
				run, _, err := c.Create(context.Background(), &api.RunRequest{Project: "bench", Environment: api.Environment{Name: "loop"},
					Cases: []api.Case{{ID: "a", Steps: []api.Step{{Name: "wait:" + key, Run: &api.Command{Command: "true"}}}}}}, "")
				if err != nil {
					b.Fatal(err)
				}
				src := &tapSource{source: newRemoteSource(c, run.ID, mode.noStream, DefaultPollInterval), running: make(chan struct{})}
				res := make(chan followed, 1)
				go func() {
					res <- follow(context.Background(), src, con, followOptions{RunID: run.ID, Timeout: time.Minute})
				}()
				<-src.running
				srv.Gates.Open(key)
				out := <-res
				end := time.Now()
				if out.Run.Status != api.StatusPassed || out.Run.FinishedAt.IsZero() {
					b.Fatalf("run %s ended %s", run.ID, out.Run.Status)
				}
				lat = append(lat, end.Sub(out.Run.FinishedAt))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms/verdict-p50")
			b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "ms/verdict-p90")
		})
	}
}
