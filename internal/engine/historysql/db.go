package historysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

// Rows is a query result of either driver: pgx.Rows as it is, *sql.Rows
// through the SQLite store's adapter.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// DB runs statements on a transaction or a pool of either driver (each store
// adapts its own); the summaries' logic below is written once for both.
type DB interface {
	Query(ctx context.Context, sql string, args ...any) (Rows, error)
	Exec(ctx context.Context, sql string, args ...any) error
}

// Summarize adds recs (one finished run's history, just inserted) to the
// health summaries inside the append's transaction tx: it reads the latest
// outcomes of the run's environment, folds recs onto them
// (engine.FoldHistory) and upserts the day rows and latest outcomes. where
// names the database in errors.
func Summarize(ctx context.Context, tx DB, d Dialect, where string, recs []engine.HistoryRecord) error {
	if len(recs) == 0 {
		return nil
	}
	r0 := recs[0]
	fail := func(err error) error {
		return fmt.Errorf("summarising the history of run %s in %s: %w", r0.RunID, where, err)
	}
	last := map[engine.CaseKey]*engine.LastOutcome{}
	rows, err := tx.Query(ctx, SelectLast(d), r0.Tenant, r0.Project, r0.Environment)
	if err != nil {
		return fail(err)
	}
	for rows.Next() {
		k, l, err := ScanLast(rows, d.Flag())
		if err != nil {
			rows.Close()
			return fail(err)
		}
		last[k] = &l
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fail(err)
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
	chunk := rowsPerStatement(d, TotalsColumns)
	for i := 0; i < len(dr); i += chunk {
		n := min(chunk, len(dr)-i)
		args := make([]any, 0, n*TotalsColumns)
		for _, r := range dr[i : i+n] {
			args = TotalsArgs(args, r.k, r.c)
		}
		if err := tx.Exec(ctx, UpsertTotals(d, n), args...); err != nil {
			return fail(err)
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
	chunk = rowsPerStatement(d, LastColumns)
	for i := 0; i < len(touched); i += chunk {
		n := min(chunk, len(touched)-i)
		args := make([]any, 0, n*LastColumns)
		for _, k := range touched[i : i+n] {
			args = LastArgs(d, args, k, last[k])
		}
		if err := tx.Exec(ctx, UpsertLast(d, n), args...); err != nil {
			return fail(err)
		}
	}
	return nil
}

// HealthSummary answers engine.HistoryStore's HealthSummary on db: five
// primary-key seeks per case (Summary), whatever the window.
func HealthSummary(ctx context.Context, db DB, d Dialect, where, tenant string, f engine.SummaryFilter) ([]engine.CaseSummary, error) {
	q, args := Summary(d, tenant, f)
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading the health of project %s in %s: %w", f.Project, where, err)
	}
	defer rows.Close()
	var parts []engine.CaseSummary
	for rows.Next() {
		_, c, err := ScanSummary(rows, d.Flag())
		if err != nil {
			return nil, fmt.Errorf("reading the health of project %s: %w", f.Project, err)
		}
		parts = append(parts, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the health of project %s in %s: %w", f.Project, where, err)
	}
	return MergeSummaries(parts), nil
}

// PruneSummaries deletes the summaries older than before, in tx (Prune).
func PruneSummaries(ctx context.Context, tx DB, d Dialect, before time.Time) error {
	st := Prune(d)
	for _, q := range st[:len(st)-1] {
		if err := tx.Exec(ctx, q, engine.DayOf(before)); err != nil {
			return err
		}
	}
	if err := tx.Exec(ctx, st[len(st)-1], before.UnixNano()); err != nil {
		return err
	}
	return tx.Exec(ctx, PruneOrphans)
}

// RecordShadow records run (terminal, with its members) when it is a shadow
// run, inside the append's transaction tx.
func RecordShadow(ctx context.Context, tx DB, d Dialect, where string, head *api.Run, members []api.Member) error {
	fail := func(err error) error { return fmt.Errorf("recording shadow run %s in %s: %w", head.ID, where, err) }
	rows, err := tx.Query(ctx, ShadowProbe(d), head.ID)
	if err != nil {
		return fail(err)
	}
	var shadow, unmapped, ignored sql.NullString
	if !rows.Next() {
		rows.Close()
		if err := rows.Err(); err != nil {
			return fail(err)
		}
		return fail(errors.New("the run is not stored"))
	}
	err = rows.Scan(&shadow, &unmapped, &ignored)
	rows.Close()
	if err != nil {
		return fail(err)
	}
	run := *head
	run.Members = members
	rec, body, ok, err := ShadowRun(&run, shadow, unmapped, ignored)
	if err != nil || !ok {
		return err
	}
	if err := tx.Exec(ctx, InsertShadow(d), rec.RunID, rec.Tenant, rec.Project, rec.Environment,
		rec.FinishedAt.UnixNano(), body); err != nil {
		return fail(err)
	}
	return nil
}

// ShadowHistory answers engine.ShadowStore's ShadowHistory on db.
func ShadowHistory(ctx context.Context, db DB, d Dialect, where, tenant string, f engine.HistoryFilter) ([]engine.ShadowRecord, error) {
	q, args := SelectShadow(d, tenant, f)
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading the shadow runs of project %s in %s: %w", f.Project, where, err)
	}
	defer rows.Close()
	var out []engine.ShadowRecord
	for rows.Next() {
		r, err := ScanShadow(rows, tenant, f.Project)
		if err != nil {
			return nil, fmt.Errorf("reading the shadow runs of project %s: %w", f.Project, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the shadow runs of project %s in %s: %w", f.Project, where, err)
	}
	return out, nil
}
