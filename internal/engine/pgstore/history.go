package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/historysql"
)

var (
	_ engine.HistoryStore = (*Store)(nil)
	_ engine.ShadowStore  = (*Store)(nil)
)

const historyColumns = `tenant, project, environment, case_id, variant, status, attempts, flaky, quarantined, duration_ns, run_id, commit_sha, branch, finished_at`

// sqlInsertHistory writes any number of records in one statement: the
// arrays are unnested in step. The primary key (run_id, case_id, variant)
// makes it idempotent.
const sqlInsertHistory = `INSERT INTO history (` + historyColumns + `)
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[],
		$8::boolean[], $9::boolean[], $10::bigint[], $11::text[], $12::text[], $13::text[], $14::bigint[])
	ON CONFLICT DO NOTHING`

// recordHistory writes the outcomes of heads (runs that this transaction
// makes terminal) inside it, reading their tenants and members from their
// rows after the batch wrote them. It runs once per finished run, so the
// cost of an event stays the event's.
func (s *Store) recordHistory(ctx context.Context, tx pgx.Tx, heads []*api.Run) error {
	if len(heads) == 0 {
		return nil
	}
	runs := make([]*api.Run, len(heads))
	byID := make(map[string]*api.Run, len(heads))
	ids := make([]string, len(heads))
	for i, h := range heads {
		r := *h
		runs[i], byID[r.ID], ids[i] = &r, &r, r.ID
	}
	rows, err := tx.Query(ctx, `SELECT id, tenant FROM runs WHERE id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("recording the history of run %s in %s: %w", ids[0], s.where, err)
	}
	for rows.Next() {
		var id, tenant string
		if err := rows.Scan(&id, &tenant); err != nil {
			rows.Close()
			return fmt.Errorf("recording the history of run %s: %w", ids[0], err)
		}
		byID[id].Tenant = tenant
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("recording the history of run %s in %s: %w", ids[0], s.where, err)
	}
	if err := s.loadMembers(ctx, tx, runs); err != nil {
		return fmt.Errorf("recording the history of run %s: %w", ids[0], err)
	}
	var c historyColumnsOf
	perRun := make([][]engine.HistoryRecord, 0, len(runs))
	for _, r := range runs {
		members := r.Members
		r.Members = nil
		recs := engine.HistoryOf(r, members)
		if err := s.recordShadow(ctx, tx, r, members); err != nil {
			return err
		}
		for _, rec := range recs {
			c.add(rec)
		}
		perRun = append(perRun, recs)
	}
	if len(c.runID) == 0 {
		return nil
	}
	tag, err := tx.Exec(ctx, sqlInsertHistory, c.tenant, c.project, c.environment, c.caseID, c.variant, c.status,
		c.attempts, c.flaky, c.quarantined, c.duration, c.runID, c.commit, c.branch, c.finishedAt)
	if err != nil {
		return fmt.Errorf("recording the history of run %s in %s: %w", ids[0], s.where, err)
	}
	if tag.RowsAffected() == 0 {
		return nil // recorded before: the summaries have it
	}
	for _, recs := range perRun {
		if err := s.summarize(ctx, tx, recs); err != nil {
			return err
		}
	}
	return nil
}

// historyColumnsOf holds records column by column, the arrays
// sqlInsertHistory unnests.
type historyColumnsOf struct {
	tenant, project, environment, caseID, variant, status []string
	attempts                                              []int64
	flaky, quarantined                                    []bool
	duration                                              []int64
	runID, commit, branch                                 []string
	finishedAt                                            []int64
}

func (c *historyColumnsOf) add(r engine.HistoryRecord) {
	c.tenant = append(c.tenant, r.Tenant)
	c.project = append(c.project, r.Project)
	c.environment = append(c.environment, r.Environment)
	c.caseID = append(c.caseID, r.Case)
	c.variant = append(c.variant, r.Variant)
	c.status = append(c.status, string(r.Status))
	c.attempts = append(c.attempts, int64(r.Attempts))
	c.flaky = append(c.flaky, r.Flaky)
	c.quarantined = append(c.quarantined, r.Quarantined)
	c.duration = append(c.duration, int64(r.Duration))
	c.runID = append(c.runID, r.RunID)
	c.commit = append(c.commit, r.Commit)
	c.branch = append(c.branch, r.Branch)
	c.finishedAt = append(c.finishedAt, r.FinishedAt.UnixNano())
}

// History implements engine.HistoryStore.
func (s *Store) History(ctx context.Context, tenant string, f engine.HistoryFilter) ([]engine.HistoryRecord, error) {
	since := int64(-1 << 63)
	if !f.Since.IsZero() {
		since = f.Since.UnixNano()
	}
	q := `SELECT ` + historyColumns + ` FROM history WHERE tenant = $1 AND project = $2 AND finished_at >= $3`
	args := []any{tenant, f.Project, since}
	if f.Environment != "" {
		q += ` AND environment = $4`
		args = append(args, f.Environment)
	}
	// Ties on the finish time in a stable order: run, case, variant.
	q += ` ORDER BY finished_at, run_id, case_id, variant`
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading the history of project %s from %s: %w", f.Project, s.where, err)
	}
	defer rows.Close()
	var out []engine.HistoryRecord
	for rows.Next() {
		var r engine.HistoryRecord
		var status string
		var attempts, dur, at int64
		if err := rows.Scan(&r.Tenant, &r.Project, &r.Environment, &r.Case, &r.Variant, &status, &attempts,
			&r.Flaky, &r.Quarantined, &dur, &r.RunID, &r.Commit, &r.Branch, &at); err != nil {
			return nil, fmt.Errorf("reading the history of project %s: %w", f.Project, err)
		}
		r.Status, r.Attempts = api.Status(status), int(attempts)
		r.Duration, r.FinishedAt = time.Duration(dur), fromNanos(at)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the history of project %s from %s: %w", f.Project, s.where, err)
	}
	return out, nil
}

// PruneHistory implements engine.HistoryStore: history rows and, in the
// same transaction, the summaries of the days before before's day.
func (s *Store) PruneHistory(ctx context.Context, before time.Time) (int64, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("pruning history before %s in %s: %w", before.Format(time.RFC3339), s.where, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	tag, err := tx.Exec(ctx, `DELETE FROM history WHERE finished_at < $1`, before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("pruning history before %s in %s: %w", before.Format(time.RFC3339), s.where, err)
	}
	if _, err := tx.Exec(ctx, historysql.PruneShadow(historysql.Postgres), before.UnixNano()); err != nil {
		return 0, fmt.Errorf("pruning shadow runs before %s in %s: %w", before.Format(time.RFC3339), s.where, err)
	}
	if err := pruneSummaries(ctx, tx, before); err != nil {
		return 0, fmt.Errorf("pruning health summaries before %s in %s: %w", before.Format(time.RFC3339), s.where, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("pruning history before %s in %s: %w", before.Format(time.RFC3339), s.where, err)
	}
	return tag.RowsAffected(), nil
}

// recordShadow records run (terminal, with its members) when it is a
// shadow run, inside the append's transaction (historysql.RecordShadow).
func (s *Store) recordShadow(ctx context.Context, tx pgx.Tx, head *api.Run, members []api.Member) error {
	return historysql.RecordShadow(ctx, pgDB{tx}, historysql.Postgres, s.where, head, members)
}

// ShadowHistory implements engine.ShadowStore.
func (s *Store) ShadowHistory(ctx context.Context, tenant string, f engine.HistoryFilter) ([]engine.ShadowRecord, error) {
	return historysql.ShadowHistory(ctx, pgDB{s.pool}, historysql.Postgres, s.where, tenant, f)
}
