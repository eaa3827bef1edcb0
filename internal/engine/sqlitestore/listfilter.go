package sqlitestore

import "github.com/zof-ai/zof-ci/internal/engine"

// source adds the console's filters: branch, pull request and trigger are
// generated columns of the run's head with an index each (migration 7), and
// flaky-only is a semi-join on the partial index of flaky members, so each
// costs an index range however many runs the tenant has.
func (q *listQuery) source(f engine.ListFilter) {
	q.eq("branch", f.Branch)
	if f.PR != 0 {
		q.sql += ` AND pr = ?`
		q.args = append(q.args, f.PR)
	}
	q.eq("trigger_kind", f.Trigger)
	if f.Flaky {
		// The WHERE term is the partial index's own, so SQLite uses it.
		q.sql += ` AND runs.id IN (SELECT run_id FROM members WHERE json_extract(body, '$.flaky') = 1)`
	}
}
