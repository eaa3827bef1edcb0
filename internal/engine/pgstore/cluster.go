// Several replicas on one database: claims, leases, the leader lease and
// LISTEN/NOTIFY (engine.Cluster; docs/design-postgres.md).

package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

var _ engine.Cluster = (*Store)(nil)

const (
	// maxChannel is PostgreSQL's identifier limit (NAMEDATALEN - 1 bytes,
	// "Identifiers and Key Words"): a longer channel name is truncated.
	maxChannel = 63
	// clusterVersion is the schema version that adds the cluster's columns.
	clusterVersion = 7
	// leaderLease names the leader lease's row in leases.
	leaderLease = "leader"
	// Notification payloads: "e:<run id>" events appended, "c:<run id>" a
	// cancel requested, "q" a run created or a held run ended.
	noteEventsPrefix = "e:"
	noteCancelPrefix = "c:"
	noteQueue        = "q"

	// nowNS is the database's clock in Unix nanoseconds: leases are compared
	// on one clock, whatever the replicas' clocks say.
	nowNS = `(extract(epoch from clock_timestamp()) * 1000000000)::bigint`
	// sqlHeld: a run that holds a tenant slot (and its exclusive environment):
	// claimed and not finished, or running (a run left running by a zof
	// older than leases has no owner but still holds its slot).
	// zof_claim (schema version 8) and the index runs_held spell the same
	// condition: a change here is a new migration replacing both.
	sqlHeld = `status IN ('initial', 'queued', 'running') AND (owner IS NOT NULL OR status = 'running')`

	sqlNotify = `SELECT pg_notify($1, $2)`
	// One notification per run appended to, and "q" when a run ended (its
	// slot is free); PostgreSQL folds identical ones of a transaction.
	sqlNotifyAppends = `SELECT pg_notify($1, n) FROM unnest($2::text[]) n`
)

// initChannel names the NOTIFY channel after the schema, so replicas of
// different schemas on one server (tests, tenants) do not wake each other.
func (s *Store) initChannel(ctx context.Context) error {
	var schema string
	if err := s.pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fmt.Errorf("reading the current schema: %w", err)
	}
	ch := "zof_" + schema
	if len(ch) > maxChannel {
		ch = ch[:maxChannel]
	}
	s.channel = ch
	return nil
}

// noteArgs are the payloads an append batch notifies.
func noteArgs(enc []encodedAppend) []string {
	out := make([]string, 0, len(enc)+1)
	ended := false
	for _, a := range enc {
		out = append(out, noteEventsPrefix+a.runID)
		ended = ended || api.Status(a.status).Terminal()
	}
	if ended {
		out = append(out, noteQueue)
	}
	return out
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Claim implements engine.Cluster in two round trips, however many tenants
// it tries: the tenants with waiting runs, in the order of their oldest
// waiting run; then one batch in one implicit transaction (pgx sends a
// batch with a single Sync): zof_claim (schema version 8, schema.go) and the
// claimed run's members. zof_claim tries each tenant's transaction-scoped
// advisory lock, so one claim of a tenant runs at a time (the count of held
// runs and the claim cannot race) while other tenants proceed; a tenant
// another replica is claiming for is skipped (that replica takes its oldest
// run). Then one UPDATE counts the tenant's held runs against its limit,
// picks its oldest waiting run whose exclusive environment is free, puts it
// under the lease and returns it with its body. The run is locked with
// plain FOR UPDATE, not SKIP LOCKED: the tenant lock already keeps claimers
// apart, and skipping a run an append holds for a moment would let a later
// run start first. The locks are released when the batch commits.
func (s *Store) Claim(ctx context.Context, lease string, ttl time.Duration, limit func(string) int) (c *engine.Claimed, err error) {
	defer classify(&err)
	rows, err := s.pool.Query(ctx, sqlWaitingTenants)
	if err != nil {
		return nil, fmt.Errorf("claiming a run in %s: %w", s.where, err)
	}
	tenants, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("claiming a run in %s: %w", s.where, err)
	}
	if len(tenants) == 0 {
		return nil, nil
	}
	limits := make([]int64, len(tenants))
	for i, t := range tenants {
		limits[i] = int64(limit(t))
	}
	b := &pgx.Batch{}
	b.Queue(sqlClaim, tenants, limits, lease, ttl.Nanoseconds())
	b.Queue(sqlClaimedMembers, lease)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close() //nolint:errcheck // the errors are read below
	var id, snap, req, sel string
	var ord int64
	var cancel *string
	err = br.QueryRow().Scan(&id, &ord, &snap, &req, &sel, &cancel)
	if errors.Is(err, pgx.ErrNoRows) {
		// Every tenant was at its limit, had its environments in use or
		// was being claimed for by another replica.
		if err := br.Close(); err != nil {
			return nil, fmt.Errorf("claiming a run in %s: %w", s.where, err)
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claiming a run in %s: %w", s.where, err)
	}
	rec, err := engine.DecodeRecord(ord, snap, req, sel)
	if err != nil {
		return nil, err
	}
	rows, err = br.Query()
	if err != nil {
		return nil, fmt.Errorf("reading claimed run %s: %w", id, err)
	}
	if err := scanMembers(rows, rec.Run); err != nil {
		return nil, err
	}
	// The implicit transaction commits at the batch's end: an error there
	// means the claim did not happen.
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("claiming run %s in %s: %w", id, s.where, err)
	}
	return &engine.Claimed{Lease: lease, Record: rec, CancelReason: deref(cancel)}, nil
}

const (
	// sqlWaitingTenants: the tenants with waiting runs no lease holds, the
	// oldest waiting run first.
	// It skips from tenant to tenant on runs_waiting (tenant, ord), one
	// index probe per tenant, instead of reading every waiting run: the cost
	// grows with the tenants waiting, not with the depth of their queues.
	sqlWaitingTenants = `WITH RECURSIVE t (tenant, ord) AS (
			(SELECT tenant, ord FROM runs WHERE owner IS NULL AND status IN ('initial', 'queued') ORDER BY tenant, ord LIMIT 1)
			UNION ALL
			SELECT n.tenant, n.ord FROM t, LATERAL (SELECT r.tenant, r.ord FROM runs r
				WHERE r.owner IS NULL AND r.status IN ('initial', 'queued') AND r.tenant > t.tenant
				ORDER BY r.tenant, r.ord LIMIT 1) n)
		SELECT tenant FROM t ORDER BY ord`
	// sqlClaim: $1 tenants in order, $2 their limits (0: none), $3 lease,
	// $4 ttl in ns; at most one row.
	sqlClaim = `SELECT o_id, o_ord, o_snapshot, o_request, o_selection, o_cancel FROM zof_claim($1, $2, $3, $4)`
	// sqlClaimedMembers reads the members of the run the lease holds, in
	// the claim's transaction (nothing when nothing was claimed); the
	// status condition lets it find the run on runs_owner.
	sqlClaimedMembers = `SELECT idx, body FROM members WHERE run_id = (SELECT id FROM runs
		WHERE owner = $1 AND status IN ('initial', 'queued', 'running')) ORDER BY idx`
)

// scanMembers appends the member rows (idx, body, in order) to run.
func scanMembers(rows pgx.Rows, run *api.Run) error {
	defer rows.Close()
	run.Members = []api.Member{}
	for rows.Next() {
		var idx int64
		var body []byte
		if err := rows.Scan(&idx, &body); err != nil {
			return fmt.Errorf("reading members of run %s: %w", run.ID, err)
		}
		if idx != int64(len(run.Members)) {
			return fmt.Errorf("run %s: member %d is missing from the store", run.ID, len(run.Members))
		}
		var m api.Member
		if err := json.Unmarshal(body, &m); err != nil {
			return fmt.Errorf("decoding stored member %d of run %s: %w", idx, run.ID, err)
		}
		run.Members = append(run.Members, m)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading members of run %s: %w", run.ID, err)
	}
	return nil
}

// hold puts run id under lease and reads it, in tx.
func (s *Store) hold(ctx context.Context, tx pgx.Tx, id, lease string, ttl time.Duration) (*engine.Claimed, error) {
	var cancel *string
	if err := tx.QueryRow(ctx, `UPDATE runs SET owner = $2, lease_until = `+nowNS+` + $3 WHERE id = $1 RETURNING cancel_request`,
		id, lease, ttl.Nanoseconds()).Scan(&cancel); err != nil {
		return nil, fmt.Errorf("holding run %s: %w", id, err)
	}
	var ord int64
	var snap, req, sel string
	if err := tx.QueryRow(ctx, `SELECT ord, snapshot, request, selection FROM runs JOIN run_bodies ON run_id = id WHERE id = $1`, id).
		Scan(&ord, &snap, &req, &sel); err != nil {
		return nil, fmt.Errorf("reading run %s: %w", id, err)
	}
	rec, err := engine.DecodeRecord(ord, snap, req, sel)
	if err != nil {
		return nil, err
	}
	if err := s.loadMembers(ctx, tx, []*api.Run{rec.Run}); err != nil {
		return nil, err
	}
	return &engine.Claimed{Lease: lease, Record: rec, CancelReason: deref(cancel)}, nil
}

// TakeOver implements engine.Cluster: the oldest held run whose lease
// expired, SKIP LOCKED so replicas taking over at once take different runs.
func (s *Store) TakeOver(ctx context.Context, lease string, ttl time.Duration) (*engine.Claimed, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("taking over a run in %s: %w", s.where, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	var id string
	err = tx.QueryRow(ctx, `SELECT id FROM runs WHERE `+sqlHeld+` AND coalesce(lease_until, 0) < `+nowNS+`
		ORDER BY ord LIMIT 1 FOR UPDATE SKIP LOCKED`).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("taking over a run in %s: %w", s.where, err)
	}
	c, err := s.hold(ctx, tx, id, lease, ttl)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("taking over run %s in %s: %w", id, s.where, err)
	}
	return c, nil
}

// Renew implements engine.Cluster.
func (s *Store) Renew(ctx context.Context, leases []string, ttl time.Duration) (map[string]string, error) {
	rows, err := s.pool.Query(ctx, `UPDATE runs SET lease_until = `+nowNS+` + $2 WHERE owner = ANY($1)
		RETURNING owner, coalesce(cancel_request, '')`, leases, ttl.Nanoseconds())
	if err != nil {
		return nil, fmt.Errorf("renewing %d leases in %s: %w", len(leases), s.where, err)
	}
	defer rows.Close()
	held := make(map[string]string, len(leases))
	for rows.Next() {
		var owner, cancel string
		if err := rows.Scan(&owner, &cancel); err != nil {
			return nil, fmt.Errorf("renewing leases: %w", err)
		}
		held[owner] = cancel
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("renewing %d leases in %s: %w", len(leases), s.where, err)
	}
	return held, nil
}

// Release implements engine.Cluster: a running run keeps its owner (its
// slot and its fencing) with an expired lease, for the next TakeOver; a run
// claimed but never started is waiting again.
func (s *Store) Release(ctx context.Context, leases []string) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("releasing leases in %s: %w", s.where, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, `UPDATE runs SET owner = CASE WHEN status = 'running' THEN owner END, lease_until = 0
		WHERE owner = ANY($1)`, leases); err != nil {
		return fmt.Errorf("releasing leases in %s: %w", s.where, err)
	}
	if _, err := tx.Exec(ctx, sqlNotify, s.channel, noteQueue); err != nil {
		return fmt.Errorf("releasing leases in %s: %w", s.where, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("releasing leases in %s: %w", s.where, err)
	}
	return nil
}

// RequestCancel implements engine.Cluster; the first reason stays.
func (s *Store) RequestCancel(ctx context.Context, tenant, id, reason string) (bool, error) {
	var n int
	err := s.pool.QueryRow(ctx, `WITH u AS (
			UPDATE runs SET cancel_request = coalesce(cancel_request, $3)
			WHERE id = $1 AND tenant = $2 AND `+sqlHeld+` RETURNING id)
		SELECT count(pg_notify($4, $5 || id)) FROM u`, id, tenant, reason, s.channel, noteCancelPrefix).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("requesting the cancel of run %s in %s: %w", id, s.where, err)
	}
	return n > 0, nil
}

// Lead implements engine.Cluster: the row is taken when free or expired,
// renewed by its owner.
func (s *Store) Lead(ctx context.Context, owner string, ttl time.Duration) (bool, error) {
	var got string
	err := s.pool.QueryRow(ctx, `INSERT INTO leases (name, owner, until) VALUES ($1, $2, `+nowNS+` + $3)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
		WHERE leases.owner = excluded.owner OR leases.until < `+nowNS+`
		RETURNING owner`, leaderLease, owner, ttl.Nanoseconds()).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("taking the leader lease in %s: %w", s.where, err)
	}
	return got == owner, nil
}

// Queue implements engine.Cluster, from one snapshot.
func (s *Store) Queue(ctx context.Context) (*engine.QueueState, error) {
	qs := &engine.QueueState{Held: map[string]int{}}
	err := s.readTx(ctx, func(q querier) error {
		rows, err := q.Query(ctx, `SELECT id, tenant, ord, last_seq FROM runs
			WHERE owner IS NULL AND status IN ('initial', 'queued') ORDER BY ord`)
		if err != nil {
			return err
		}
		if qs.Waiting, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (engine.QueuedRun, error) {
			var w engine.QueuedRun
			err := r.Scan(&w.ID, &w.Tenant, &w.Order, &w.LastSeq)
			return w, err
		}); err != nil {
			return err
		}
		rows, err = q.Query(ctx, `SELECT tenant, count(*) FROM runs WHERE `+sqlHeld+` GROUP BY tenant`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var t string
			var n int
			if err := rows.Scan(&t, &n); err != nil {
				rows.Close()
				return err
			}
			qs.Held[t] = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = q.Query(ctx, `SELECT tenant, project, environment, id FROM runs WHERE exclusive AND `+sqlHeld+` ORDER BY ord`)
		if err != nil {
			return err
		}
		qs.Exclusive, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (engine.HeldEnv, error) {
			var h engine.HeldEnv
			err := r.Scan(&h.Tenant, &h.Project, &h.Environment, &h.RunID)
			return h, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the queue from %s: %w", s.where, err)
	}
	return qs, nil
}

// Group implements engine.Cluster.
func (s *Store) Group(ctx context.Context, tenant, group string, before int64) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM runs WHERE tenant = $1 AND grp = $2 AND ord < $3
		AND status IN ('initial', 'queued', 'running') ORDER BY ord`, tenant, group, before)
	if err != nil {
		return nil, fmt.Errorf("reading concurrency group %s from %s: %w", group, s.where, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("reading concurrency group %s from %s: %w", group, s.where, err)
	}
	return ids, nil
}

// Listen implements engine.Cluster on a connection of its own (a pooled
// one would be handed to other queries between waits).
func (s *Store) Listen(ctx context.Context, fn func(engine.Note)) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("connecting to %s to listen: %w", s.where, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return fmt.Errorf("listening on %s: %w", s.where, err)
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("waiting for notifications from %s: %w", s.where, err)
		}
		switch p := n.Payload; {
		case p == noteQueue:
			fn(engine.Note{Kind: engine.NoteQueue})
		case strings.HasPrefix(p, noteEventsPrefix):
			fn(engine.Note{Kind: engine.NoteEvents, RunID: p[len(noteEventsPrefix):]})
		case strings.HasPrefix(p, noteCancelPrefix):
			fn(engine.Note{Kind: engine.NoteCancel, RunID: p[len(noteCancelPrefix):]})
		}
	}
}
