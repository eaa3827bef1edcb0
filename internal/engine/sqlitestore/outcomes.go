package sqlitestore

import (
	"context"
	"fmt"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

var _ engine.OutcomeReader = (*Store)(nil)

// RecentOutcomes implements engine.OutcomeReader: one short range of the
// index history_tenant_project_case_finished per case (migration 6), newest
// first, in one read transaction.
func (s *Store) RecentOutcomes(ctx context.Context, tenant string, f engine.OutcomeFilter) ([]engine.HistoryRecord, error) {
	q := `SELECT environment, case_id, variant, status, flaky, run_id, finished_at FROM history
		WHERE tenant = ? AND project = ? AND case_id = ? AND finished_at >= ?`
	if f.Environment != "" {
		q += ` AND environment = ?`
	}
	q += ` ORDER BY finished_at DESC LIMIT ?`
	var out []engine.HistoryRecord
	err := s.readTx(ctx, func(tx queryer) error {
		for _, c := range f.Cases {
			args := []any{tenant, f.Project, c, f.Since.UnixNano()}
			if f.Environment != "" {
				args = append(args, f.Environment)
			}
			args = append(args, f.PerCase)
			rows, err := tx.QueryContext(ctx, q, args...)
			if err != nil {
				return fmt.Errorf("reading the outcomes of case %s in %s: %w", c, s.path, err)
			}
			for rows.Next() {
				r := engine.HistoryRecord{Tenant: tenant, Project: f.Project}
				var status string
				var flaky int
				var at int64
				if err := rows.Scan(&r.Environment, &r.Case, &r.Variant, &status, &flaky, &r.RunID, &at); err != nil {
					rows.Close()
					return fmt.Errorf("reading the outcomes of case %s: %w", c, err)
				}
				r.Status, r.Flaky, r.FinishedAt = api.Status(status), flaky != 0, time.Unix(0, at).UTC()
				out = append(out, r)
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				return fmt.Errorf("reading the outcomes of case %s: %w", c, err)
			}
		}
		return nil
	})
	return out, err
}
