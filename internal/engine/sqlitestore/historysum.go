package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/historysql"
)

// summarize adds recs (one finished run's history, just inserted) to the
// health summaries inside the append's transaction: it reads the latest
// outcomes of the run's environment, folds recs onto them
// (engine.FoldHistory) and upserts the day rows and latest outcomes.
func (s *Store) summarize(ctx context.Context, tx *sql.Tx, recs []engine.HistoryRecord) error {
	if len(recs) == 0 {
		return nil
	}
	r0 := recs[0]
	last := map[engine.CaseKey]*engine.LastOutcome{}
	rows, err := tx.QueryContext(ctx, historysql.SelectLast(historysql.SQLite), r0.Tenant, r0.Project, r0.Environment)
	if err != nil {
		return fmt.Errorf("summarising the history of run %s in %s: %w", r0.RunID, s.path, err)
	}
	for rows.Next() {
		var q int64
		k, l, err := historysql.ScanLast(rows, &q)
		if err != nil {
			rows.Close()
			return fmt.Errorf("summarising the history of run %s: %w", r0.RunID, err)
		}
		last[k] = &l
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("summarising the history of run %s in %s: %w", r0.RunID, s.path, err)
	}
	snaps := engine.FoldHistory(last, recs)
	type dayRow struct {
		k engine.DayKey
		c *engine.DayCounts
	}
	dr := make([]dayRow, 0, len(snaps))
	for k, c := range snaps {
		dr = append(dr, dayRow{k, c})
	}
	// Bound parameters per statement: under SQLite's 32766 (insertChunk's note).
	chunk := 32766 / historysql.TotalsColumns
	for i := 0; i < len(dr); i += chunk {
		n := min(chunk, len(dr)-i)
		args := make([]any, 0, n*historysql.TotalsColumns)
		for _, d := range dr[i : i+n] {
			args = historysql.TotalsArgs(args, d.k, d.c)
		}
		if _, err := tx.ExecContext(ctx, historysql.UpsertTotals(historysql.SQLite, n), args...); err != nil {
			return fmt.Errorf("summarising the history of run %s in %s: %w", r0.RunID, s.path, err)
		}
	}
	touched := make([]engine.CaseKey, 0, len(recs))
	seen := make(map[engine.CaseKey]bool, len(recs))
	for _, r := range recs {
		k := engine.CaseKey{Tenant: r.Tenant, Project: r.Project, Environment: r.Environment, Case: r.Case, Variant: r.Variant}
		if !seen[k] {
			seen[k] = true
			touched = append(touched, k)
		}
	}
	chunk = 32766 / historysql.LastColumns
	for i := 0; i < len(touched); i += chunk {
		n := min(chunk, len(touched)-i)
		args := make([]any, 0, n*historysql.LastColumns)
		for _, k := range touched[i : i+n] {
			args = historysql.LastArgs(historysql.SQLite, args, k, last[k])
		}
		if _, err := tx.ExecContext(ctx, historysql.UpsertLast(historysql.SQLite, n), args...); err != nil {
			return fmt.Errorf("summarising the history of run %s in %s: %w", r0.RunID, s.path, err)
		}
	}
	return nil
}

// HealthSummary implements engine.HistoryStore: five primary-key seeks per
// case (historysql.Summary), whatever the window.
func (s *Store) HealthSummary(ctx context.Context, tenant string, f engine.SummaryFilter) ([]engine.CaseSummary, error) {
	q, args := historysql.Summary(historysql.SQLite, tenant, f)
	rows, err := s.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading the health of project %s in %s: %w", f.Project, s.path, err)
	}
	defer rows.Close()
	var parts []engine.CaseSummary
	for rows.Next() {
		var qu int64
		_, c, err := historysql.ScanSummary(rows, &qu)
		if err != nil {
			return nil, fmt.Errorf("reading the health of project %s: %w", f.Project, err)
		}
		parts = append(parts, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the health of project %s in %s: %w", f.Project, s.path, err)
	}
	return historysql.MergeSummaries(parts), nil
}

// pruneSummaries deletes the summaries older than before, in tx
// (historysql.Prune).
func pruneSummaries(ctx context.Context, tx *sql.Tx, before time.Time) error {
	st := historysql.Prune(historysql.SQLite)
	for _, q := range st[:len(st)-1] {
		if _, err := tx.ExecContext(ctx, q, engine.DayOf(before)); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, st[len(st)-1], before.UnixNano()); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, historysql.PruneOrphans)
	return err
}
