package pgstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/trigger"
)

var (
	_ trigger.Store  = (*Store)(nil)
	_ trigger.Leaser = (*Store)(nil)
)

const triggerColumns = `ord, reported, expires_at, body, detail, coalesce(owner, '')`

// sqlTriggerPending: an unexpired trigger ($1: now) that is unfinished.
const sqlTriggerPending = `expires_at > $1 AND (state IN ('` + string(api.TriggerAccepted) + `', '` + string(api.TriggerProcessing) +
	`') OR (state = '` + string(api.TriggerRunCreated) + `' AND NOT reported))`

// CreateTrigger implements trigger.Store in one transaction: the unique
// (tenant, source, trigger_key) decides, an expired holder is replaced. A
// concurrent create of the same key on another replica waits for this one's
// commit on the unique index, then finds it the holder.
func (s *Store) CreateTrigger(ctx context.Context, rec *trigger.Record) (r0 *trigger.Record, err error) {
	defer classify(&err)
	body, err := json.Marshal(rec.Trigger)
	if err != nil {
		return nil, fmt.Errorf("creating trigger %s: %w", rec.ID, err)
	}
	for range createAttempts {
		held, ord, err := s.createTriggerTx(ctx, rec, string(body))
		if err != nil {
			return nil, fmt.Errorf("creating trigger %s in %s: %w", rec.ID, s.where, err)
		}
		if held != nil {
			return held, nil
		}
		if ord > 0 {
			rec.Order = ord
			return nil, nil
		}
	}
	return nil, fmt.Errorf("creating trigger %s: key %q kept changing hands; retry the delivery", rec.ID, rec.Key)
}

func (s *Store) createTriggerTx(ctx context.Context, rec *trigger.Record, body string) (*trigger.Record, int64, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	held, err := scanTrigger(tx.QueryRow(ctx, `SELECT `+triggerColumns+` FROM triggers WHERE tenant = $1 AND source = $2 AND trigger_key = $3`,
		rec.Tenant, rec.Source, rec.Key))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return nil, 0, fmt.Errorf("reading trigger key %q: %w", rec.Key, err)
	case held.ExpiresAt.After(rec.CreatedAt):
		return held, 0, nil
	default:
		if _, err := tx.Exec(ctx, `DELETE FROM triggers WHERE id = $1`, held.ID); err != nil {
			return nil, 0, fmt.Errorf("releasing expired trigger %s: %w", held.ID, err)
		}
	}
	var ord int64
	// A record with an Owner is held by it for trigger.LeaseTTL from the
	// database's clock, so no starting replica takes it meanwhile.
	err = tx.QueryRow(ctx, `INSERT INTO triggers (id, tenant, source, trigger_key, state, event, reported, created_at, expires_at, body, detail, owner, lease_until)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULLIF($12, ''), CASE WHEN $12 = '' THEN NULL ELSE `+nowNS+` + $13::bigint END)
		ON CONFLICT (tenant, source, trigger_key) DO NOTHING RETURNING ord`,
		rec.ID, rec.Tenant, rec.Source, rec.Key, string(rec.State), rec.Event, rec.Reported,
		rec.CreatedAt.UnixNano(), rec.ExpiresAt.UnixNano(), body, string(rec.Detail), rec.Owner, trigger.LeaseTTL.Nanoseconds()).Scan(&ord)
	if errors.Is(err, pgx.ErrNoRows) {
		// Another replica stored the key after our read: it is the holder
		// (or it expired meanwhile, and the caller tries again).
		_ = tx.Rollback(ctx)
		held, err := scanTrigger(s.pool.QueryRow(ctx, `SELECT `+triggerColumns+` FROM triggers WHERE tenant = $1 AND source = $2 AND trigger_key = $3`,
			rec.Tenant, rec.Source, rec.Key))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, 0, nil
		}
		return held, 0, err
	}
	if err != nil {
		return nil, 0, fmt.Errorf("storing trigger %s: %w", rec.ID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, 0, fmt.Errorf("storing trigger %s: %w", rec.ID, err)
	}
	return nil, ord, nil
}

// UpdateTrigger implements trigger.Store, fenced by rec.Owner's lease: in
// one transaction the row is locked and written only while that lease holds
// it on the database's clock (the same fencing as run appends), so a
// replica that lost the lease (paused past its expiry) cannot overwrite
// what the replica that took the trigger over records.
func (s *Store) UpdateTrigger(ctx context.Context, rec *trigger.Record) (err error) {
	defer classify(&err)
	// The immutable fields come from the stored body, so an update cannot change them.
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("updating trigger %s in %s: %w", rec.ID, s.where, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	var live bool
	cur, err := scanTrigger(tx.QueryRow(ctx, `SELECT `+triggerColumns+`, coalesce(lease_until, 0) >= `+nowNS+`
		FROM triggers WHERE id = $1 FOR UPDATE`, rec.ID), &live)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("trigger %s: %w", rec.ID, trigger.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("reading trigger %s in %s: %w", rec.ID, s.where, err)
	}
	switch {
	case rec.Owner == "" && live:
		return fmt.Errorf("updating trigger %s without a lease: replica lease %q holds it; nothing was written, that replica finishes it: %w",
			rec.ID, cur.Owner, trigger.ErrFenced)
	case rec.Owner != "" && (cur.Owner != rec.Owner || !live):
		why := "its lease expired"
		switch {
		case cur.Owner == "":
			why = "no lease holds it"
		case cur.Owner != rec.Owner:
			why = fmt.Sprintf("replica lease %q took it over", cur.Owner)
		}
		return fmt.Errorf("updating trigger %s under replica lease %q: %s; nothing was written, stop working on it: %w",
			rec.ID, rec.Owner, why, trigger.ErrFenced)
	}
	t := cur.Trigger
	t.State, t.Reason, t.RunID, t.Attempts, t.UpdatedAt = rec.State, rec.Reason, rec.RunID, rec.Attempts, rec.UpdatedAt
	t.Event, t.Repo, t.Ref, t.SHA, t.PR = rec.Event, rec.Repo, rec.Ref, rec.SHA, rec.PR
	body, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("updating trigger %s: %w", rec.ID, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE triggers SET state = $1, event = $2, reported = $3, body = $4, detail = $5 WHERE id = $6`,
		string(t.State), t.Event, rec.Reported, string(body), string(rec.Detail), rec.ID); err != nil {
		return fmt.Errorf("updating trigger %s in %s: %w", rec.ID, s.where, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("updating trigger %s in %s: %w", rec.ID, s.where, err)
	}
	return nil
}

// GetTrigger implements trigger.Store.
func (s *Store) GetTrigger(ctx context.Context, tenant, id string) (r0 *trigger.Record, err error) {
	defer classify(&err)
	r, err := scanTrigger(s.pool.QueryRow(ctx, `SELECT `+triggerColumns+` FROM triggers WHERE id = $1 AND tenant = $2`, id, tenant))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("trigger %s: %w", id, trigger.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading trigger %s from %s: %w", id, s.where, err)
	}
	return r, nil
}

// ListTriggers implements trigger.Store; the cursor is an ord bound.
func (s *Store) ListTriggers(ctx context.Context, tenant string, f trigger.Filter) (r0 []*trigger.Record, r1 string, err error) {
	defer classify(&err)
	lq := newListQuery(`SELECT `+triggerColumns+` FROM triggers`, tenant)
	if err := lq.cursor(f.Cursor, trigger.ErrInvalidCursor); err != nil {
		return nil, "", err
	}
	lq.eq("source", f.Source)
	lq.eq("event", f.Event)
	lq.in("state", stringsOf(f.States))
	limit := f.PageSize()
	q := lq.sql + ` ORDER BY ord DESC LIMIT ` + lq.arg(limit+1)
	out, err := s.queryTriggers(ctx, q, lq.args...)
	if err != nil {
		return nil, "", err
	}
	if len(out) > limit {
		out = out[:limit]
		return out, strconv.FormatInt(out[limit-1].Order, 10), nil
	}
	return out, "", nil
}

// PendingTriggers implements trigger.Store: every unfinished trigger,
// whatever lease holds it (ClaimTriggers is what a replica takes up).
func (s *Store) PendingTriggers(ctx context.Context, now time.Time) (r0 []*trigger.Record, err error) {
	defer classify(&err)
	return s.queryTriggers(ctx, `SELECT `+triggerColumns+` FROM triggers WHERE `+sqlTriggerPending+` ORDER BY ord`, now.UnixNano())
}

// ClaimTriggers implements trigger.Leaser in one statement: the unfinished
// triggers of sources that no live lease holds (no owner, or lease_until
// passed on the database's clock) are put under owner's lease, SKIP LOCKED
// so replicas claiming at once take different ones.
func (s *Store) ClaimTriggers(ctx context.Context, now time.Time, owner string, sources []string, ttl time.Duration) (r0 []*trigger.Record, err error) {
	defer classify(&err)
	out, err := s.queryTriggers(ctx, `UPDATE triggers SET owner = $2, lease_until = `+nowNS+` + $3
		WHERE id IN (SELECT id FROM triggers WHERE `+sqlTriggerPending+` AND source = ANY($4)
			AND coalesce(lease_until, 0) < `+nowNS+` ORDER BY ord FOR UPDATE SKIP LOCKED)
		RETURNING `+triggerColumns, now.UnixNano(), owner, ttl.Nanoseconds(), sources)
	if err != nil {
		return nil, fmt.Errorf("claiming unfinished triggers: %w", err)
	}
	slices.SortFunc(out, func(a, b *trigger.Record) int { return cmp.Compare(a.Order, b.Order) })
	return out, nil
}

// RenewTriggers implements trigger.Leaser.
func (s *Store) RenewTriggers(ctx context.Context, owner string, ids []string, ttl time.Duration) (r0 []string, err error) {
	defer classify(&err)
	rows, err := s.pool.Query(ctx, `UPDATE triggers SET lease_until = `+nowNS+` + $3 WHERE owner = $1 AND id = ANY($2) RETURNING id`,
		owner, ids, ttl.Nanoseconds())
	if err != nil {
		return nil, fmt.Errorf("renewing %d trigger leases in %s: %w", len(ids), s.where, err)
	}
	kept, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("renewing %d trigger leases in %s: %w", len(ids), s.where, err)
	}
	return kept, nil
}

// ReleaseTriggers implements trigger.Leaser: the owner stays (who worked on
// it last), the lease is expired.
func (s *Store) ReleaseTriggers(ctx context.Context, owner string) (err error) {
	defer classify(&err)
	if _, err := s.pool.Exec(ctx, `UPDATE triggers SET lease_until = 0 WHERE owner = $1 AND lease_until > 0`, owner); err != nil {
		return fmt.Errorf("releasing the trigger leases of %s in %s: %w", owner, s.where, err)
	}
	return nil
}

// PruneTriggers deletes the triggers that expired at or before now and
// returns how many; a server calls it with Prune.
func (s *Store) PruneTriggers(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM triggers WHERE expires_at <= $1`, now.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("pruning expired triggers in %s: %w", s.where, err)
	}
	return tag.RowsAffected(), nil
}

func (s *Store) queryTriggers(ctx context.Context, q string, args ...any) ([]*trigger.Record, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing triggers in %s: %w", s.where, err)
	}
	defer rows.Close()
	var out []*trigger.Record
	for rows.Next() {
		r, err := scanTrigger(rows)
		if err != nil {
			return nil, fmt.Errorf("listing triggers in %s: %w", s.where, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing triggers in %s: %w", s.where, err)
	}
	return out, nil
}

// scanTrigger reads triggerColumns, then into extra any columns selected after them.
func scanTrigger(row pgx.Row, extra ...any) (*trigger.Record, error) {
	var r trigger.Record
	var expires int64
	var body, detail string
	if err := row.Scan(append([]any{&r.Order, &r.Reported, &expires, &body, &detail, &r.Owner}, extra...)...); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(body), &r.Trigger); err != nil {
		return nil, fmt.Errorf("decoding the stored trigger at order %d: %w", r.Order, err)
	}
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	r.ExpiresAt = fromNanos(expires)
	if detail != "" {
		r.Detail = []byte(detail)
	}
	return &r, nil
}
