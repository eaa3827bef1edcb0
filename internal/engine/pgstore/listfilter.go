package pgstore

import "github.com/zof-ai/zof-ci/internal/engine"

// source adds the console's filters: branch, pull request and trigger are
// stored generated columns of the run's head with an index each (migration
// 3), and flaky-only is a semi-join on the partial index of flaky members.
func (q *listQuery) source(f engine.ListFilter) {
	q.eq("branch", f.Branch)
	if f.PR != 0 {
		q.sql += ` AND pr = ` + q.arg(int64(f.PR))
	}
	q.eq("trigger_kind", f.Trigger)
	if f.Flaky {
		// The WHERE term is the partial index's own, so the planner can use it.
		q.sql += ` AND runs.id IN (SELECT run_id FROM members WHERE strpos(body, '"flaky":true') > 0)`
	}
}
