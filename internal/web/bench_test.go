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
	"time"

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
// history reached by cursor; and the source filters: one run in ten is on
// branch release, PR 7, triggered by a schedule; one in a hundred has a
// flaky member. Figures: docs/benchmarks.md.
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
				rq := *req
				rq.Source = api.Source{Provider: "github", Repo: "o/r", Ref: "main", Trigger: "ci"}
				if i%10 == 3 {
					rq.Source.Ref, rq.Source.PR, rq.Source.Trigger = "release", 7, "schedule"
				}
				rec, first := storetest.NewRun("payments", fmt.Sprintf("run_%06d", i), &rq)
				rec.Run.Status = api.StatusPassed
				if i%10 == 0 {
					rec.Run.Status = api.StatusFailed
				}
				if i%100 == 5 {
					rec.Run.Members[0].Flaky = true
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
		{"branch", "?branch=release"},
		{"trigger", "?trigger=schedule"},
		{"pr", "?pr=7"},
		{"flaky", "?flaky=1"},
		{"failed_on_branch", "?status=failed&status=blocked&branch=main"},
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

// BenchmarkRunPage2000 measures the server time of the run page of a
// 2,000-member run (each member two steps, a failed one with a 20-line log
// every 50th member): the whole page (a page of MembersPageSize members and
// their logs), a filtered page, and the live part the page's script fetches
// while the run is live. Figures: docs/benchmarks.md.
func BenchmarkRunPage2000(b *testing.B) {
	const members = 2000
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	run := &api.Run{ID: "run_big", Tenant: "payments", Project: "checkout", Environment: "staging", Status: api.StatusRunning,
		CreatedAt: t0, StartedAt: t0}
	log := strings.Repeat("GET /api/orders -> 200 OK in 12ms\n", 20)
	for i := range members {
		m := api.Member{ID: fmt.Sprintf("case-%04d", i), Case: fmt.Sprintf("case-%04d", i), Status: api.StatusPassed, Attempt: 1,
			StartedAt: t0.Add(time.Duration(i) * time.Second), FinishedAt: t0.Add(time.Duration(i)*time.Second + 800*time.Millisecond),
			Steps: []api.StepResult{{Name: "login", Kind: "http", Status: api.StepPassed, Duration: api.Duration(300 * time.Millisecond)},
				{Name: "order", Kind: "http", Status: api.StepPassed, Duration: api.Duration(500 * time.Millisecond)}}}
		if i%50 == 7 {
			m.Status = api.StatusFailed
			m.Steps[1].Status = api.StepFailed
			m.Steps[1].Failure = &api.Failure{Message: "status 500", Expected: "200", Actual: "500"}
			m.Steps[1].Output = log
		}
		if i >= members-10 {
			m.Status, m.FinishedAt, m.Steps = api.StatusRunning, time.Time{}, nil
		}
		run.Members = append(run.Members, m)
	}
	runs := &fakeRuns{runs: map[string]*api.Run{run.ID: run}}
	auth := fakeAuth{"tok": {Tenant: "payments", Name: "ci", Role: config.RoleRunner}}
	c, err := New(Options{Runs: runs, Actions: runs, Auth: auth, Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, query, must string }{
		{"page", "", `data-member="case-0199"`},
		{"failed_only", "?members=failed", `data-member="case-1957"`},
		{"live_part", "?part=live", `id="timeline"`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/runs/run_big"+bc.query, nil)
			r.Header.Set("Authorization", "Bearer tok")
			size := 0
			for b.Loop() {
				w := httptest.NewRecorder()
				c.ServeHTTP(w, r)
				if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), bc.must) {
					b.Fatalf("GET /runs/run_big%s: %d, lacks %s", bc.query, w.Code, bc.must)
				}
				size = w.Body.Len()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/page")
			b.ReportMetric(float64(size)/1024, "KiB/page")
		})
	}
}
