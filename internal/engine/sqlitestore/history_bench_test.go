package sqlitestore_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/internal/engine/historysql"
	"github.com/zof-ai/zof-ci/internal/engine/sqlitestore"
	"github.com/zof-ai/zof-ci/internal/health"
)

// Sizes of the health benchmark: a year of a busy team (issue 14).
const (
	benchRuns    = 10_000
	benchMembers = 500
	benchYear    = 365 * 24 * time.Hour
)

// benchSizes are the runs the health benchmark is measured at: a tenth of
// the year's runs and all of them (-short: only the tenth).
var benchSizes = []int{benchRuns / 10, benchRuns}

// fillHistory writes runs x members history rows of tenant t, project shop,
// the runs spread evenly over the year before end, 2 % of outcomes failed,
// 1 % flaky; plus a tenth of that for another tenant, so the query must use
// its index to skip it.
func fillHistory(tb testing.TB, path string, runs, members int, end time.Time) {
	tb.Helper()
	db, err := sql.Open(sqlitestore.DriverName, path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	step := int64(benchYear) / int64(runs)
	start := end.Add(-benchYear).UnixNano()
	for _, tenant := range []string{"t", "other"} {
		runs := runs
		if tenant != "t" {
			runs /= 10
		}
		q := fmt.Sprintf(`WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM r WHERE i < %d),
			m(j) AS (SELECT 0 UNION ALL SELECT j+1 FROM m WHERE j < %d)
			INSERT INTO history (tenant, project, environment, case_id, variant, status, attempts, flaky, quarantined, duration_ns, run_id, commit_sha, branch, finished_at)
			SELECT ?, 'shop', 'staging', 'case-' || j, '', CASE WHEN (i*7 + j) %% 50 = 0 THEN 'failed' ELSE 'passed' END,
				CASE WHEN (i*3 + j) %% 100 = 1 THEN 2 ELSE 1 END, CASE WHEN (i*3 + j) %% 100 = 1 THEN 1 ELSE 0 END, 0,
				(100 + (i*13 + j*7) %% 900) * 1000000, ? || '-run-' || i, printf('%%040x', i / 3), 'main', ? + i * ?
			FROM r, m`, runs-1, members-1)
		if _, err := db.Exec(q, tenant, tenant, start, step); err != nil {
			tb.Fatal(err)
		}
	}
}

// backfill rebuilds the health summaries from the history rows fillHistory
// wrote behind the store's back: the migration's back-fill.
func backfill(tb testing.TB, path string) time.Duration {
	tb.Helper()
	db, err := sql.Open(sqlitestore.DriverName, path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	for _, q := range append([]string{`DELETE FROM history_totals`, `DELETE FROM history_last`}, historysql.Backfill(historysql.SQLite)...) {
		if _, err := db.Exec(q); err != nil {
			tb.Fatal(err)
		}
	}
	return time.Since(start)
}

// BenchmarkHealthQuery is GET /v1/health's work on SQLite over a year of a
// busy team (10,000 runs x 500 members, and a tenth of that of another
// tenant), and over a tenth of that year's runs: read the project's
// summaries (HealthSummary: the database sums the day rows of the window
// per case) and judge them (health.FromSummaries). The bar:
// <= 100 ms. Sub-benchmarks vary the window and the runs, since the cost
// grows with the day rows the window covers (cases x days), not the runs.
func BenchmarkHealthQuery(b *testing.B) {
	ctx := context.Background()
	end := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	sizes := benchSizes
	if testing.Short() {
		sizes = sizes[:1]
	}
	for _, runs := range sizes {
		path := filepath.Join(b.TempDir(), "zof.db")
		s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		fillHistory(b, path, runs, benchMembers, end)
		took := backfill(b, path)
		b.Logf("runs=%d: back-filling the summaries of %d history rows took %v", runs, runs*benchMembers*11/10, took)
		for _, days := range []int{7, 30, 90, 365} {
			b.Run(fmt.Sprintf("runs=%d/since=%dd", runs, days), func(b *testing.B) {
				q := health.Query{Project: "shop", Since: end.Add(-time.Duration(days) * health.Day), Now: end}
				var rows int
				cpu0 := cpuTime(b)
				for b.Loop() {
					sums, err := s.HealthSummary(ctx, "t", health.Filter(q))
					if err != nil {
						b.Fatal(err)
					}
					h := health.FromSummaries(q, sums)
					if len(h.Cases) != benchMembers {
						b.Fatalf("%d cases, want %d", len(h.Cases), benchMembers)
					}
					rows = 0
					for _, c := range h.Cases {
						rows += c.Runs
					}
				}
				// CPU time per query: what the query costs, whatever else
				// the machine runs (wall time on a shared, loaded machine
				// mostly measures the wait for a core).
				b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
				b.ReportMetric(float64(rows), "outcomes")
			})
		}
		_ = s.Close()
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
