package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

var _ engine.OutcomeReader = (*Store)(nil)

// RecentOutcomes implements engine.OutcomeReader: one short range of the
// index history_tenant_project_case_finished per case (migration 6), sent as
// one batch.
func (s *Store) RecentOutcomes(ctx context.Context, tenant string, f engine.OutcomeFilter) ([]engine.HistoryRecord, error) {
	q := `SELECT environment, case_id, variant, status, flaky, run_id, finished_at FROM history
		WHERE tenant = $1 AND project = $2 AND case_id = $3 AND finished_at >= $4 AND ($5 = '' OR environment = $5)
		ORDER BY finished_at DESC LIMIT $6`
	var b pgx.Batch
	for _, c := range f.Cases {
		b.Queue(q, tenant, f.Project, c, f.Since.UnixNano(), f.Environment, f.PerCase)
	}
	br := s.pool.SendBatch(ctx, &b)
	defer br.Close()
	var out []engine.HistoryRecord
	for _, c := range f.Cases {
		rows, err := br.Query()
		if err != nil {
			return nil, fmt.Errorf("reading the outcomes of case %s from %s: %w", c, s.where, err)
		}
		for rows.Next() {
			r := engine.HistoryRecord{Tenant: tenant, Project: f.Project}
			var status string
			var at int64
			if err := rows.Scan(&r.Environment, &r.Case, &r.Variant, &status, &r.Flaky, &r.RunID, &at); err != nil {
				rows.Close()
				return nil, fmt.Errorf("reading the outcomes of case %s: %w", c, err)
			}
			r.Status, r.FinishedAt = api.Status(status), fromNanos(at)
			out = append(out, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("reading the outcomes of case %s from %s: %w", c, s.where, err)
		}
	}
	return out, nil
}
