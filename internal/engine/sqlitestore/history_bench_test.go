package sqlitestore_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/sqlitestore"
	"github.com/zof-ai/zof-ci/internal/health"
)

// Sizes of the health benchmark: a year of a busy team (issue 14).
const (
	benchRuns    = 10_000
	benchMembers = 500
	benchYear    = 365 * 24 * time.Hour
)

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

// BenchmarkHealthQuery is GET /v1/health's work on SQLite over a year of a
// busy team (10,000 runs x 500 members, and 1,000 x 500 of another
// tenant): read the project's history from the window on (History) and
// judge it (health.Compute). The bar: <= 100 ms. Sub-benchmarks vary
// the window, since the cost grows with the rows it covers.
func BenchmarkHealthQuery(b *testing.B) {
	ctx := context.Background()
	end := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	path := filepath.Join(b.TempDir(), "zof.db")
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	fillHistory(b, path, benchRuns, benchMembers, end)
	for _, days := range []int{7, 30, 90} {
		b.Run(fmt.Sprintf("since=%dd", days), func(b *testing.B) {
			q := health.Query{Project: "shop", Since: end.Add(-time.Duration(days) * health.Day), Now: end}
			var rows int
			for b.Loop() {
				recs, err := s.History(ctx, "t", engine.HistoryFilter{Project: "shop", Since: health.Fetch(q)})
				if err != nil {
					b.Fatal(err)
				}
				h := health.Compute(q, recs)
				if len(h.Cases) != benchMembers {
					b.Fatalf("%d cases, want %d", len(h.Cases), benchMembers)
				}
				rows = len(recs)
			}
			b.ReportMetric(float64(rows), "rows")
		})
	}
}
