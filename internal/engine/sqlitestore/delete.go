package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/zof-ai/zof-ci/internal/engine"
)

var _ engine.Deleter = (*Store)(nil)

// DeleteRun implements engine.Deleter. The runs row goes only when its status
// is terminal, in the same statement; the foreign keys' ON DELETE CASCADE
// removes its members, events, body and idempotency keys with it. History
// rows have no foreign key and stay.
func (s *Store) DeleteRun(ctx context.Context, tenant, id string) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("deleting run %s in %s: %w", id, s.path, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	res, err := tx.ExecContext(ctx, `DELETE FROM runs WHERE id = ? AND tenant = ? AND status IN ('passed', 'failed', 'cancelled', 'blocked')`, id, tenant)
	if err != nil {
		return fmt.Errorf("deleting run %s in %s: %w", id, s.path, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("deleting run %s in %s: %w", id, s.path, err)
	} else if n == 0 {
		var status string
		err := tx.QueryRowContext(ctx, `SELECT status FROM runs WHERE id = ? AND tenant = ?`, id, tenant).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("deleting run %s: %w", id, engine.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("deleting run %s in %s: %w", id, s.path, err)
		}
		return fmt.Errorf("deleting run %s (%s): %w", id, status, engine.ErrNotTerminal)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("deleting run %s in %s: %w", id, s.path, err)
	}
	return nil
}
