package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/zof-ai/zof-ci/internal/engine"
)

var _ engine.Deleter = (*Store)(nil)

// DeleteRun implements engine.Deleter. The runs row goes only when its status
// is terminal, in the same statement (so a replica cannot resume it in
// between); ON DELETE CASCADE removes its members, events, body and
// idempotency keys. History rows have no foreign key and stay.
func (s *Store) DeleteRun(ctx context.Context, tenant, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM runs WHERE id = $1 AND tenant = $2 AND status IN ('passed', 'failed', 'cancelled', 'blocked')`, id, tenant)
	if err != nil {
		return fmt.Errorf("deleting run %s in %s: %w", id, s.where, err)
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	var status string
	err = s.pool.QueryRow(ctx, `SELECT status FROM runs WHERE id = $1 AND tenant = $2`, id, tenant).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("deleting run %s: %w", id, engine.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("deleting run %s in %s: %w", id, s.where, err)
	}
	return fmt.Errorf("deleting run %s (%s): %w", id, status, engine.ErrNotTerminal)
}
