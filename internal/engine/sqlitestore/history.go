package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/historysql"
)

var (
	_ engine.HistoryStore = (*Store)(nil)
	_ engine.ShadowStore  = (*Store)(nil)
)

const historyColumns = `tenant, project, environment, case_id, variant, status, attempts, flaky, quarantined, duration_ns, run_id, commit_sha, branch, finished_at`

// recordHistory writes the outcomes of run (its head, just terminal) inside
// the append's transaction, reading its members from their rows. It runs
// once per run, so the cost of an event stays the event's.
func (s *Store) recordHistory(ctx context.Context, tx *sql.Tx, head *api.Run) error {
	run := *head
	if err := tx.QueryRowContext(ctx, `SELECT tenant FROM runs WHERE id = ?`, run.ID).Scan(&run.Tenant); err != nil {
		return fmt.Errorf("recording the history of run %s: %w", run.ID, err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT body FROM members WHERE run_id = ? ORDER BY idx`, run.ID)
	if err != nil {
		return fmt.Errorf("recording the history of run %s: %w", run.ID, err)
	}
	var members []api.Member
	for rows.Next() {
		var body []byte
		var m api.Member
		if err := rows.Scan(&body); err != nil {
			rows.Close()
			return fmt.Errorf("recording the history of run %s: %w", run.ID, err)
		}
		if err := json.Unmarshal(body, &m); err != nil {
			rows.Close()
			return fmt.Errorf("recording the history of run %s: decoding a member: %w", run.ID, err)
		}
		members = append(members, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("recording the history of run %s: %w", run.ID, err)
	}
	recs := engine.HistoryOf(&run, members)
	if err := s.recordShadow(ctx, tx, &run, members); err != nil {
		return err
	}
	const cols = 14
	var inserted int64
	for i := 0; i < len(recs); i += insertChunk {
		n := min(insertChunk, len(recs)-i)
		args := make([]any, 0, cols*n)
		for _, r := range recs[i : i+n] {
			args = append(args, r.Tenant, r.Project, r.Environment, r.Case, r.Variant, string(r.Status), r.Attempts,
				boolInt(r.Flaky), boolInt(r.Quarantined), int64(r.Duration), r.RunID, r.Commit, r.Branch, r.FinishedAt.UnixNano())
		}
		q := `INSERT INTO history (` + historyColumns + `) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?), ", n), ", ") +
			` ON CONFLICT DO NOTHING`
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("recording the history of run %s in %s: %w", run.ID, s.path, err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("recording the history of run %s in %s: %w", run.ID, s.path, err)
		}
		inserted += k
	}
	if inserted == 0 {
		return nil // recorded before: the summaries have it
	}
	return s.summarize(ctx, tx, recs)
}

// History implements engine.HistoryStore.
func (s *Store) History(ctx context.Context, tenant string, f engine.HistoryFilter) ([]engine.HistoryRecord, error) {
	q := `SELECT ` + historyColumns + ` FROM history WHERE tenant = ? AND project = ? AND finished_at >= ?`
	args := []any{tenant, f.Project, f.Since.UnixNano()}
	if f.Since.IsZero() {
		args[2] = int64(-1 << 63)
	}
	if f.Environment != "" {
		q += ` AND environment = ?`
		args = append(args, f.Environment)
	}
	q += ` ORDER BY finished_at`
	rows, err := s.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading the history of project %s in %s: %w", f.Project, s.path, err)
	}
	defer rows.Close()
	var out []engine.HistoryRecord
	for rows.Next() {
		var r engine.HistoryRecord
		var status string
		var flaky, quarantined int
		var dur, at int64
		if err := rows.Scan(&r.Tenant, &r.Project, &r.Environment, &r.Case, &r.Variant, &status, &r.Attempts,
			&flaky, &quarantined, &dur, &r.RunID, &r.Commit, &r.Branch, &at); err != nil {
			return nil, fmt.Errorf("reading the history of project %s: %w", f.Project, err)
		}
		r.Status, r.Flaky, r.Quarantined = api.Status(status), flaky != 0, quarantined != 0
		r.Duration, r.FinishedAt = time.Duration(dur), time.Unix(0, at).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the history of project %s: %w", f.Project, err)
	}
	return out, nil
}

// PruneHistory implements engine.HistoryStore: history rows and, in the
// same transaction, the summaries of the days before before's day.
func (s *Store) PruneHistory(ctx context.Context, before time.Time) (int64, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("pruning history before %s in %s: %w", before.Format(time.RFC3339), s.path, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	res, err := tx.ExecContext(ctx, `DELETE FROM history WHERE finished_at < ?`, before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("pruning history before %s in %s: %w", before.Format(time.RFC3339), s.path, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("pruning history before %s in %s: %w", before.Format(time.RFC3339), s.path, err)
	}
	if _, err := tx.ExecContext(ctx, historysql.PruneShadow(historysql.SQLite), before.UnixNano()); err != nil {
		return 0, fmt.Errorf("pruning shadow runs before %s in %s: %w", before.Format(time.RFC3339), s.path, err)
	}
	if err := pruneSummaries(ctx, tx, before); err != nil {
		return 0, fmt.Errorf("pruning health summaries before %s in %s: %w", before.Format(time.RFC3339), s.path, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("pruning history before %s in %s: %w", before.Format(time.RFC3339), s.path, err)
	}
	return n, nil
}

// recordShadow records run (terminal, with its members) when it is a
// shadow run, inside the append's transaction (historysql.RecordShadow).
func (s *Store) recordShadow(ctx context.Context, tx *sql.Tx, head *api.Run, members []api.Member) error {
	return historysql.RecordShadow(ctx, sqlDB{tx}, historysql.SQLite, s.path, head, members)
}

// ShadowHistory implements engine.ShadowStore.
func (s *Store) ShadowHistory(ctx context.Context, tenant string, f engine.HistoryFilter) ([]engine.ShadowRecord, error) {
	return historysql.ShadowHistory(ctx, sqlDB{s.reader}, historysql.SQLite, s.path, tenant, f)
}
