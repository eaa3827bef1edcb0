package sqlitestore

import (
	"context"
	"database/sql"
	"time"

	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/historysql"
)

// summarize adds recs (one finished run's history, just inserted) to the
// health summaries inside the append's transaction (historysql.Summarize).
func (s *Store) summarize(ctx context.Context, tx *sql.Tx, recs []engine.HistoryRecord) error {
	return historysql.Summarize(ctx, sqlDB{tx}, historysql.SQLite, s.path, recs)
}

// HealthSummary implements engine.HistoryStore: five primary-key seeks per
// case (historysql.Summary), whatever the window.
func (s *Store) HealthSummary(ctx context.Context, tenant string, f engine.SummaryFilter) ([]engine.CaseSummary, error) {
	return historysql.HealthSummary(ctx, sqlDB{s.reader}, historysql.SQLite, s.path, tenant, f)
}

// pruneSummaries deletes the summaries older than before, in tx
// (historysql.Prune).
func pruneSummaries(ctx context.Context, tx *sql.Tx, before time.Time) error {
	return historysql.PruneSummaries(ctx, sqlDB{tx}, historysql.SQLite, before)
}

// sqlDB is a database/sql transaction or pool as historysql runs statements
// on it.
type sqlDB struct {
	q interface {
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	}
}

var _ historysql.DB = sqlDB{}

func (d sqlDB) Query(ctx context.Context, query string, args ...any) (historysql.Rows, error) {
	rows, err := d.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

func (d sqlDB) Exec(ctx context.Context, query string, args ...any) error {
	_, err := d.q.ExecContext(ctx, query, args...)
	return err
}

// sqlRows gives *sql.Rows the Close of historysql.Rows: a read's rows are
// closed after Err was checked, and closing them cannot lose a write.
type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }
