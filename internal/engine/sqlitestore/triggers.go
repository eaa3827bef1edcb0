package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/trigger"
)

var _ trigger.Store = (*Store)(nil)

const triggerColumns = `ord, reported, expires_at, body, detail`

// CreateTrigger implements trigger.Store in one transaction: the unique
// (tenant, source, trigger_key) decides, an expired holder is replaced.
func (s *Store) CreateTrigger(ctx context.Context, rec *trigger.Record) (*trigger.Record, error) {
	body, err := json.Marshal(rec.Trigger)
	if err != nil {
		return nil, fmt.Errorf("creating trigger %s: %w", rec.ID, err)
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("creating trigger %s in %s: %w", rec.ID, s.path, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	held, err := scanTrigger(tx.QueryRowContext(ctx, `SELECT `+triggerColumns+` FROM triggers WHERE tenant = ? AND source = ? AND trigger_key = ?`,
		rec.Tenant, rec.Source, rec.Key))
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("reading trigger key %q in %s: %w", rec.Key, s.path, err)
	case held.ExpiresAt.After(rec.CreatedAt):
		return held, nil
	default:
		if _, err := tx.ExecContext(ctx, `DELETE FROM triggers WHERE id = ?`, held.ID); err != nil {
			return nil, fmt.Errorf("releasing expired trigger %s: %w", held.ID, err)
		}
	}
	var ord int64
	err = tx.QueryRowContext(ctx, `INSERT INTO triggers (id, tenant, source, trigger_key, ord, state, event, reported, created_at, expires_at, body, detail)
		VALUES (?, ?, ?, ?, (SELECT COALESCE(MAX(ord), 0) + 1 FROM triggers), ?, ?, ?, ?, ?, ?, ?) RETURNING ord`,
		rec.ID, rec.Tenant, rec.Source, rec.Key, string(rec.State), rec.Event, boolInt(rec.Reported),
		rec.CreatedAt.UnixNano(), rec.ExpiresAt.UnixNano(), string(body), string(rec.Detail)).Scan(&ord)
	if err != nil {
		return nil, fmt.Errorf("storing trigger %s in %s: %w", rec.ID, s.path, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("storing trigger %s in %s: %w", rec.ID, s.path, err)
	}
	rec.Order = ord
	return nil, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// UpdateTrigger implements trigger.Store.
func (s *Store) UpdateTrigger(ctx context.Context, rec *trigger.Record) error {
	// The immutable fields come from the stored body, so an update cannot change them.
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("updating trigger %s in %s: %w", rec.ID, s.path, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	cur, err := scanTrigger(tx.QueryRowContext(ctx, `SELECT `+triggerColumns+` FROM triggers WHERE id = ?`, rec.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("trigger %s: %w", rec.ID, trigger.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("reading trigger %s in %s: %w", rec.ID, s.path, err)
	}
	t := cur.Trigger
	t.State, t.Reason, t.RunID, t.Attempts, t.UpdatedAt = rec.State, rec.Reason, rec.RunID, rec.Attempts, rec.UpdatedAt
	t.Event, t.Repo, t.Ref, t.SHA, t.PR = rec.Event, rec.Repo, rec.Ref, rec.SHA, rec.PR
	body, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("updating trigger %s: %w", rec.ID, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE triggers SET state = ?, event = ?, reported = ?, body = ?, detail = ? WHERE id = ?`,
		string(t.State), t.Event, boolInt(rec.Reported), string(body), string(rec.Detail), rec.ID); err != nil {
		return fmt.Errorf("updating trigger %s in %s: %w", rec.ID, s.path, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("updating trigger %s in %s: %w", rec.ID, s.path, err)
	}
	return nil
}

// GetTrigger implements trigger.Store.
func (s *Store) GetTrigger(ctx context.Context, tenant, id string) (*trigger.Record, error) {
	r, err := scanTrigger(s.reader.QueryRowContext(ctx, `SELECT `+triggerColumns+` FROM triggers WHERE id = ? AND tenant = ?`, id, tenant))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("trigger %s: %w", id, trigger.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading trigger %s from %s: %w", id, s.path, err)
	}
	return r, nil
}

// ListTriggers implements trigger.Store; the cursor is an ord bound.
func (s *Store) ListTriggers(ctx context.Context, tenant string, f trigger.Filter) ([]*trigger.Record, string, error) {
	lq := newListQuery(`SELECT `+triggerColumns+` FROM triggers`, tenant)
	if err := lq.cursor(f.Cursor, trigger.ErrInvalidCursor); err != nil {
		return nil, "", err
	}
	lq.eq("source", f.Source)
	lq.eq("event", f.Event)
	lq.in("state", stringsOf(f.States))
	q, args := lq.sql, lq.args
	limit := f.PageSize()
	q += ` ORDER BY ord DESC LIMIT ?`
	args = append(args, limit+1)
	out, err := s.queryTriggers(ctx, q, args...)
	if err != nil {
		return nil, "", err
	}
	if len(out) > limit {
		out = out[:limit]
		return out, strconv.FormatInt(out[limit-1].Order, 10), nil
	}
	return out, "", nil
}

// PendingTriggers implements trigger.Store.
func (s *Store) PendingTriggers(ctx context.Context, now time.Time) ([]*trigger.Record, error) {
	return s.queryTriggers(ctx, `SELECT `+triggerColumns+` FROM triggers
		WHERE expires_at > ? AND (state IN (?, ?) OR (state = ? AND reported = 0)) ORDER BY ord`,
		now.UnixNano(), string(api.TriggerAccepted), string(api.TriggerProcessing), string(api.TriggerRunCreated))
}

// PruneTriggers deletes the triggers that expired at or before now and
// returns how many; a server calls it with Prune.
func (s *Store) PruneTriggers(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.writer.ExecContext(ctx, `DELETE FROM triggers WHERE expires_at <= ?`, now.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("pruning expired triggers in %s: %w", s.path, err)
	}
	return res.RowsAffected()
}

func (s *Store) queryTriggers(ctx context.Context, q string, args ...any) ([]*trigger.Record, error) {
	rows, err := s.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing triggers in %s: %w", s.path, err)
	}
	defer rows.Close()
	var out []*trigger.Record
	for rows.Next() {
		r, err := scanTrigger(rows)
		if err != nil {
			return nil, fmt.Errorf("listing triggers in %s: %w", s.path, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing triggers in %s: %w", s.path, err)
	}
	return out, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanTrigger(row scanner) (*trigger.Record, error) {
	var r trigger.Record
	var reported int
	var expires int64
	var body, detail string
	if err := row.Scan(&r.Order, &reported, &expires, &body, &detail); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(body), &r.Trigger); err != nil {
		return nil, fmt.Errorf("decoding the stored trigger at order %d: %w", r.Order, err)
	}
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	r.Reported = reported != 0
	r.ExpiresAt = fromNanos(expires)
	if detail != "" {
		r.Detail = []byte(detail)
	}
	return &r, nil
}
