package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/sqlitestore"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

// benchRuns is the history of issue 13's target: the runs list renders a
// page in ≤ 50 ms server time with 100,000 runs in the store.
const benchRuns = 100_000

// BenchmarkRunsPage measures the server time of GET /runs (one page of
// PageSize rows: the store's query and the template) over a SQLite store
// holding benchRuns runs of one tenant, one in ten failed: the first page,
// a status filter that matches one run in ten, and a page deep in the
// history reached by cursor. Figures: docs/benchmarks.md.
func BenchmarkRunsPage(b *testing.B) {
	ctx := context.Background()
	store, err := sqlitestore.Open(ctx, filepath.Join(b.TempDir(), "zof.db"), sqlitestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	req := storetest.Request("checkout", "staging")
	// Filled from parallel callers, as the store's create benchmark does:
	// SQLite's writer batches them.
	const callers = 16
	errs := make(chan error, callers)
	var wg sync.WaitGroup
	for w := range callers {
		wg.Go(func() {
			for i := w; i < benchRuns; i += callers {
				rec, first := storetest.NewRun("payments", fmt.Sprintf("run_%06d", i), req)
				rec.Run.Status = api.StatusPassed
				if i%10 == 0 {
					rec.Run.Status = api.StatusFailed
				}
				if _, err := store.CreateRun(ctx, rec, first, nil); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	eng, err := engine.New(engine.Config{Store: store, Steps: noSteps{}})
	if err != nil {
		b.Fatal(err)
	}
	// A cursor half way into the history.
	cursor := ""
	for range benchRuns / 2 / PageSize {
		_, next, err := eng.List(ctx, "payments", engine.ListFilter{Limit: PageSize, Cursor: cursor})
		if err != nil || next == "" {
			b.Fatalf("paging: %v (next %q)", err, next)
		}
		cursor = next
	}
	auth := fakeAuth{"tok": {Tenant: "payments", Name: "ci", Role: config.RoleRunner}}
	c, err := New(Options{Runs: eng, Actions: &fakeRuns{}, Auth: auth})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, query string }{
		{"first", ""},
		{"failed", "?status=failed"},
		{"deep", "?cursor=" + cursor},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/runs"+bc.query, nil)
			r.Header.Set("Authorization", "Bearer tok")
			for b.Loop() {
				w := httptest.NewRecorder()
				c.ServeHTTP(w, r)
				if w.Code != http.StatusOK || strings.Count(w.Body.String(), "<tr data-run=") != PageSize {
					b.Fatalf("GET /runs%s: %d, %d rows", bc.query, w.Code, strings.Count(w.Body.String(), "<tr data-run="))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/page")
		})
	}
}

// noSteps: the benchmark's engine never runs a run.
type noSteps struct{}

func (noSteps) Run(context.Context, api.Step, engine.StepInput) engine.StepOutput {
	return engine.StepOutput{}
}
