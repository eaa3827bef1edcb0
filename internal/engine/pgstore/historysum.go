package pgstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/historysql"
)

// summarize adds recs (one finished run's history, just inserted) to the
// health summaries inside the append's transaction (historysql.Summarize).
func (s *Store) summarize(ctx context.Context, tx pgx.Tx, recs []engine.HistoryRecord) error {
	return historysql.Summarize(ctx, pgDB{tx}, historysql.Postgres, s.where, recs)
}

// HealthSummary implements engine.HistoryStore: five primary-key seeks per
// case (historysql.Summary), whatever the window.
func (s *Store) HealthSummary(ctx context.Context, tenant string, f engine.SummaryFilter) ([]engine.CaseSummary, error) {
	return historysql.HealthSummary(ctx, pgDB{s.pool}, historysql.Postgres, s.where, tenant, f)
}

// pruneSummaries deletes the summaries older than before, in tx
// (historysql.Prune).
func pruneSummaries(ctx context.Context, tx pgx.Tx, before time.Time) error {
	return historysql.PruneSummaries(ctx, pgDB{tx}, historysql.Postgres, before)
}

// pgDB is a pgx transaction or pool as historysql runs statements on it.
type pgDB struct {
	q interface {
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	}
}

var _ historysql.DB = pgDB{}

func (d pgDB) Query(ctx context.Context, sql string, args ...any) (historysql.Rows, error) {
	return d.q.Query(ctx, sql, args...)
}

func (d pgDB) Exec(ctx context.Context, sql string, args ...any) error {
	_, err := d.q.Exec(ctx, sql, args...)
	return err
}
