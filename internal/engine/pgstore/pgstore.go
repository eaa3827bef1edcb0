// Package pgstore is the engine.Store (and trigger.Store) of `zof serve
// --database postgres://...`: runs, their members and event logs,
// idempotency keys and triggers in PostgreSQL, through pgx's pool, so several
// replicas can share one database. The schema is docs/design-postgres.md's.
//
// Every method is one transaction. Creates are arbitrated by the unique
// (tenant, idem_key) index, so concurrent identical creates on any number of
// pools make one run; appends update the run's head only where its last_seq
// is where the batch starts, so the sequence check and the write are one
// step. Reads of a whole run use a REPEATABLE READ read-only transaction, so
// the head and its members come from one snapshot.
//
// The database holds run definitions including their secrets; protect it
// like the SQLite file of `zof serve --data`.
package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

var _ engine.Store = (*Store)(nil)
var _ engine.BatchAppender = (*Store)(nil)

const (
	// createAttempts bounds CreateRun's retries when the idempotency key's
	// holder vanishes between the conflict and the re-read (an expired key
	// pruned meanwhile).
	createAttempts = 3
	// uniqueViolation is PostgreSQL's SQLSTATE for a unique index conflict
	// (Appendix A, "PostgreSQL Error Codes").
	uniqueViolation = "23505"
)

// Options tune Open. The zero value is the production setting.
type Options struct {
	// MaxConns bounds the pool (default: pgxpool's, max(4, NumCPU)); a
	// pool_max_conns parameter in the URL is used when this is zero.
	MaxConns int32
}

// Store is an engine.Store on a PostgreSQL database. All methods are safe
// for concurrent use; Close it when done.
type Store struct {
	pool *pgxpool.Pool
	// where names the database in errors, without its password.
	where string
	// channel is the NOTIFY channel of this schema's replicas (cluster.go).
	channel string
	// version is the schema version opened (tests open older ones).
	version int
}

// idleInTxParam ends a transaction left idle (its client paused) after
// idleInTxTimeout, so its locks cannot stall the other replicas
// (docs/serve.md, "Database faults"). Our transactions never wait on the
// client between statements for more than a few milliseconds; a database
// URL that sets the parameter itself keeps its value.
const (
	idleInTxParam   = "idle_in_transaction_session_timeout"
	idleInTxTimeout = "10s"
)

// Open connects to the database at url (a postgres:// URL or a libpq
// keyword/value string), brings its schema up to date and checks that it
// answers.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	return open(ctx, url, opts, SchemaVersion)
}

func open(ctx context.Context, url string, opts Options, target int) (*Store, error) {
	if url == "" {
		return nil, errors.New("pgstore: no database URL; pass --database postgres://user@host/db")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's parse errors redact the password.
		return nil, fmt.Errorf("pgstore: %w; check --database (postgres://user@host:port/db?sslmode=...)", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if _, set := cfg.ConnConfig.RuntimeParams[idleInTxParam]; !set {
		// A replica paused (SIGSTOP, a frozen VM) in the middle of a
		// transaction would hold its row locks until it resumes, stalling
		// every other replica's claims and trigger writes on those rows.
		// The server ends such a transaction instead; the paused replica's
		// commit then fails and is retried like any lost write.
		cfg.ConnConfig.RuntimeParams[idleInTxParam] = idleInTxTimeout
	}
	where := fmt.Sprintf("PostgreSQL %s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: connecting to %s: %w", where, err)
	}
	s := &Store{pool: pool, where: where, version: target}
	if err := migrate(ctx, pool, target); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: %s: %w", where, err)
	}
	if err := s.initChannel(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: %s: %w", where, err)
	}
	return s, nil
}

// Close closes the pool. The engine must have stopped using the store.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping reports whether the database answers a query (readiness).
func (s *Store) Ping(ctx context.Context) (err error) {
	defer classify(&err)
	var v int
	if err := s.pool.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil {
		return fmt.Errorf("pgstore: %s does not answer: %w; check that the database is up and reachable", s.where, err)
	}
	return nil
}

// String names the database without credentials.
func (s *Store) String() string { return s.where }

// CreateRun implements engine.Store: the run, its body, members, first event
// and the idempotency key in one transaction.
func (s *Store) CreateRun(ctx context.Context, rec *engine.RunRecord, first api.Event, idem *engine.IdempotencyRecord) (r0 *engine.IdempotencyRecord, err error) {
	defer classify(&err)
	id := rec.Run.ID
	if first.Seq != 1 || rec.Run.LastSeq != 1 {
		return nil, fmt.Errorf("creating run %s: the first event must be seq 1: %w", id, engine.ErrSeqConflict)
	}
	whole := engine.WholeRun(id, rec.Run, nil)
	snap, err := engine.EncodeHead(whole.Run)
	if err != nil {
		return nil, fmt.Errorf("creating run %s: encoding the snapshot: %w", id, err)
	}
	sel, err := json.Marshal(rec.Run.Selection)
	if err != nil {
		return nil, fmt.Errorf("creating run %s: encoding the selection: %w", id, err)
	}
	idx, bodies, err := encodeMembers(id, whole.Members)
	if err != nil {
		return nil, err
	}
	req, err := json.Marshal(rec.Request)
	if err != nil {
		return nil, fmt.Errorf("creating run %s: encoding the request: %w", id, err)
	}
	body, err := json.Marshal(first)
	if err != nil {
		return nil, fmt.Errorf("creating run %s: encoding its first event: %w", id, err)
	}
	c := create{run: rec.Run, snap: string(snap), req: string(req), sel: string(sel), idx: idx, members: bodies, first: string(body), idem: idem,
		exclusive: rec.Request.Environment.Exclusive, group: rec.Request.ConcurrencyGroup}
	for range createAttempts {
		ord, holder, err := s.createTx(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("creating run %s in %s: %w", id, s.where, err)
		}
		if holder != nil {
			return holder, nil
		}
		if ord > 0 {
			rec.Order = ord
			return nil, nil
		}
		// Lost the key to a holder that is gone again: try once more.
	}
	return nil, fmt.Errorf("creating run %s: idempotency key %q kept changing hands; retry the request", id, idem.Key)
}

type create struct {
	run                   *api.Run
	snap, req, sel, first string
	idx                   []int64
	members               []string
	idem                  *engine.IdempotencyRecord
	exclusive             bool
	group                 string
}

const (
	sqlGetKey    = `SELECT fingerprint, run_id, created_at, expires_at FROM idempotency WHERE tenant = $1 AND idem_key = $2`
	sqlInsertRun = `INSERT INTO runs (id, tenant, status, project, environment, created_at, last_seq, snapshot, exclusive, grp)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ord`
	sqlInsertRunV1 = `INSERT INTO runs (id, tenant, status, project, environment, created_at, last_seq, snapshot)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ord`
	sqlInsertBody  = `INSERT INTO run_bodies (run_id, request, selection) VALUES ($1, $2, $3)`
	sqlInsertFirst = `INSERT INTO events (run_id, seq, body) VALUES ($1, 1, $2)`
	sqlInsertKey   = `INSERT INTO idempotency (tenant, idem_key, fingerprint, run_id, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, idem_key) DO NOTHING`
	// The owner condition is the fencing of engine.Cluster: a replica that
	// lost a run's lease (or a writer holding none) changes nothing.
	sqlUpdateRun = `UPDATE runs SET status = $1, last_seq = $2, snapshot = $3
		WHERE id = $4 AND last_seq = $5 AND owner IS NOT DISTINCT FROM NULLIF($6, '')`
	// One statement however many rows: the arrays are unnested in step.
	sqlPutMembers = `INSERT INTO members (run_id, idx, body) SELECT $1, * FROM unnest($2::bigint[], $3::text[])
		ON CONFLICT (run_id, idx) DO UPDATE SET body = excluded.body`
	sqlInsertEvents = `INSERT INTO events (run_id, seq, body) SELECT $1, * FROM unnest($2::bigint[], $3::text[])`
)

// createTx is one attempt of CreateRun. It returns the new run's ord, or the
// key's holder, or neither when the key was taken and then released again.
func (s *Store) createTx(ctx context.Context, c create) (int64, *engine.IdempotencyRecord, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, nil, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	idem, run := c.idem, c.run
	if idem != nil {
		// The fast path: a replay finds its holder without inserting anything.
		held, err := getKey(ctx, tx, idem.Tenant, idem.Key)
		if err != nil {
			return 0, nil, err
		}
		if held != nil {
			if held.ExpiresAt.After(idem.CreatedAt) {
				return 0, held, nil
			}
			// Expired keys are free: drop the old binding (the run stays).
			if _, err := tx.Exec(ctx, `DELETE FROM idempotency WHERE tenant = $1 AND idem_key = $2`, idem.Tenant, idem.Key); err != nil {
				return 0, nil, fmt.Errorf("releasing expired idempotency key %q: %w", idem.Key, err)
			}
		}
	}
	var ord int64
	args := []any{run.ID, run.Tenant, string(run.Status), run.Project, run.Environment, run.CreatedAt.UnixNano(), run.LastSeq, c.snap}
	insert := sqlInsertRun
	if s.version >= clusterVersion {
		args = append(args, c.exclusive, c.group)
	} else {
		insert = sqlInsertRunV1 // a test's older schema
	}
	err = tx.QueryRow(ctx, insert, args...).Scan(&ord)
	if isUnique(err) {
		return 0, nil, engine.ErrDuplicateRun
	}
	if err != nil {
		return 0, nil, err
	}
	b := &pgx.Batch{}
	b.Queue(sqlInsertBody, run.ID, c.req, c.sel)
	b.Queue(sqlInsertFirst, run.ID, c.first)
	b.Queue(sqlPutMembers, run.ID, c.idx, c.members)
	b.Queue(sqlNotify, s.channel, noteQueue)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, nil, fmt.Errorf("storing the run's definition, members and first event: %w", err)
	}
	if idem != nil {
		tag, err := tx.Exec(ctx, sqlInsertKey, idem.Tenant, idem.Key, idem.Fingerprint, idem.RunID, idem.CreatedAt.UnixNano(), idem.ExpiresAt.UnixNano())
		if err != nil {
			return 0, nil, fmt.Errorf("storing idempotency key %q: %w", idem.Key, err)
		}
		if tag.RowsAffected() == 0 {
			// Another writer took the key after our check (READ COMMITTED: the
			// insert waited for its commit): undo our run and report theirs.
			_ = tx.Rollback(ctx)
			held, err := getKey(ctx, s.pool, idem.Tenant, idem.Key)
			return 0, held, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, nil, err
	}
	return ord, nil, nil
}

// querier is what reads need of a pool, a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// getKey reads an idempotency record, nil when there is none.
func getKey(ctx context.Context, q querier, tenant, key string) (*engine.IdempotencyRecord, error) {
	rec := engine.IdempotencyRecord{Tenant: tenant, Key: key}
	var created, expires int64
	err := q.QueryRow(ctx, sqlGetKey, tenant, key).Scan(&rec.Fingerprint, &rec.RunID, &created, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading idempotency key %q: %w", key, err)
	}
	rec.CreatedAt, rec.ExpiresAt = fromNanos(created), fromNanos(expires)
	return &rec, nil
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// isUnique reports whether err is a unique index violation.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == uniqueViolation
}

// Append implements engine.Store.
func (s *Store) Append(ctx context.Context, a engine.Append) error {
	return s.AppendBatch(ctx, []engine.Append{a})
}

// AppendBatch implements engine.BatchAppender: every run's append in one
// transaction, all or nothing. Each run's head is updated only if its
// last_seq is where its events start (0 rows: ErrSeqConflict or
// ErrNotFound), then its changed members and its events are written; the
// (run_id, seq) key backs the rule up.
func (s *Store) AppendBatch(ctx context.Context, batch []engine.Append) (err error) {
	defer classify(&err)
	if len(batch) == 0 {
		return nil
	}
	enc := make([]encodedAppend, len(batch))
	for i, a := range batch {
		var err error
		if enc[i], err = encodeAppend(a); err != nil {
			return err
		}
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("appending to run %s in %s: %w", batch[0].RunID, s.where, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	b := &pgx.Batch{}
	for _, a := range enc {
		b.Queue(sqlUpdateRun, a.status, a.last, a.snap, a.runID, a.start, a.lease)
		if len(a.idx) > 0 {
			b.Queue(sqlPutMembers, a.runID, a.idx, a.members)
		}
		b.Queue(sqlInsertEvents, a.runID, a.seqs, a.bodies)
	}
	b.Queue(sqlNotifyAppends, s.channel, noteArgs(enc))
	br := tx.SendBatch(ctx, b)
	for _, a := range enc {
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return fmt.Errorf("appending to run %s in %s: %w", a.runID, s.where, err)
		}
		if tag.RowsAffected() == 0 {
			_ = br.Close()
			_ = tx.Rollback(ctx)
			return s.appendConflict(ctx, a)
		}
		n := 1
		if len(a.idx) > 0 {
			n = 2
		}
		for i := range n {
			if _, err := br.Exec(); err != nil {
				_ = br.Close()
				if i == n-1 && isUnique(err) {
					return fmt.Errorf("appending to run %s: %w", a.runID, engine.ErrSeqConflict)
				}
				return fmt.Errorf("appending to run %s in %s: %w", a.runID, s.where, err)
			}
		}
	}
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return fmt.Errorf("appending to run %s in %s: notifying the other replicas: %w", batch[0].RunID, s.where, err)
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("appending to run %s in %s: %w", batch[0].RunID, s.where, err)
	}
	var ended []*api.Run
	for _, a := range enc {
		if a.head.Status.Terminal() {
			ended = append(ended, a.head)
		}
	}
	if err := s.recordHistory(ctx, tx, ended); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("appending to run %s in %s: %w", batch[0].RunID, s.where, err)
	}
	return nil
}

// appendConflict explains an append whose head update matched no row.
func (s *Store) appendConflict(ctx context.Context, a encodedAppend) error {
	var last int64
	var owner *string
	switch err := s.pool.QueryRow(ctx, `SELECT last_seq, owner FROM runs WHERE id = $1`, a.runID).Scan(&last, &owner); {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("appending to run %s: %w", a.runID, engine.ErrNotFound)
	case err != nil:
		return fmt.Errorf("appending to run %s: %w", a.runID, err)
	}
	if held := deref(owner); held != a.lease {
		return fmt.Errorf("appending to run %s under lease %q: it is held under %q: %w", a.runID, a.lease, held, engine.ErrLeaseLost)
	}
	return fmt.Errorf("appending to run %s: the batch starts after seq %d, the log is at %d: %w", a.runID, a.start, last, engine.ErrSeqConflict)
}

// encodedAppend is an append checked and encoded before the transaction starts.
type encodedAppend struct {
	head    *api.Run // to record history when the run ends
	runID   string
	start   int64 // the seq the log must be at
	status  string
	last    int64
	snap    string // the head
	idx     []int64
	members []string
	seqs    []int64
	bodies  []string
	lease   string // engine.Append.Lease
}

func encodeMembers(runID string, us []engine.MemberUpdate) ([]int64, []string, error) {
	idx, bodies := make([]int64, len(us)), make([]string, len(us))
	for i, u := range us {
		b, err := json.Marshal(u.Member)
		if err != nil {
			return nil, nil, fmt.Errorf("run %s: encoding member %d: %w", runID, u.Index, err)
		}
		idx[i], bodies[i] = int64(u.Index), string(b)
	}
	return idx, bodies, nil
}

func encodeAppend(a engine.Append) (encodedAppend, error) {
	runID, snapshot, events := a.RunID, a.Run, a.Events
	start := snapshot.LastSeq - int64(len(events))
	seqs := make([]int64, len(events))
	for i, ev := range events {
		if ev.Seq != start+int64(i)+1 {
			return encodedAppend{}, fmt.Errorf("appending to run %s: event %d of the batch has seq %d, want %d: %w", runID, i+1, ev.Seq, start+int64(i)+1, engine.ErrSeqConflict)
		}
		seqs[i] = ev.Seq
	}
	snap, err := engine.EncodeHead(snapshot)
	if err != nil {
		return encodedAppend{}, fmt.Errorf("appending to run %s: encoding the snapshot: %w", runID, err)
	}
	bodies := make([]string, len(events))
	for i, ev := range events {
		b, err := json.Marshal(ev)
		if err != nil {
			return encodedAppend{}, fmt.Errorf("appending to run %s: encoding event %d: %w", runID, ev.Seq, err)
		}
		bodies[i] = string(b)
	}
	idx, members, err := encodeMembers(runID, a.Members)
	if err != nil {
		return encodedAppend{}, err
	}
	return encodedAppend{head: snapshot, runID: runID, start: start, status: string(snapshot.Status), last: snapshot.LastSeq, snap: string(snap),
		idx: idx, members: members, seqs: seqs, bodies: bodies, lease: a.Lease}, nil
}

// readTx runs fn in a read-only REPEATABLE READ transaction, so a run's head
// and its members are read from one snapshot.
func (s *Store) readTx(ctx context.Context, fn func(q querier) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("reading %s: %w", s.where, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only: nothing to keep
	return fn(tx)
}

// loadMembers fills the members of runs (heads decoded from runs.snapshot)
// from their rows, in one query.
func (s *Store) loadMembers(ctx context.Context, q querier, runs []*api.Run) error {
	if len(runs) == 0 {
		return nil
	}
	byID := make(map[string]*api.Run, len(runs))
	ids := make([]string, len(runs))
	for i, r := range runs {
		byID[r.ID] = r
		r.Members = []api.Member{}
		ids[i] = r.ID
	}
	rows, err := q.Query(ctx, `SELECT run_id, idx, body FROM members WHERE run_id = ANY($1) ORDER BY run_id, idx`, ids)
	if err != nil {
		return fmt.Errorf("reading members from %s: %w", s.where, err)
	}
	defer rows.Close()
	for rows.Next() {
		var runID string
		var idx int64
		var body []byte
		if err := rows.Scan(&runID, &idx, &body); err != nil {
			return fmt.Errorf("reading members: %w", err)
		}
		r := byID[runID]
		if idx != int64(len(r.Members)) {
			return fmt.Errorf("run %s: member %d is missing from the store", runID, len(r.Members))
		}
		var m api.Member
		if err := json.Unmarshal(body, &m); err != nil {
			return fmt.Errorf("decoding stored member %d of run %s: %w", idx, runID, err)
		}
		r.Members = append(r.Members, m)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading members from %s: %w", s.where, err)
	}
	return nil
}

// GetRun implements engine.Store.
func (s *Store) GetRun(ctx context.Context, tenant, id string) (r0 *engine.RunRecord, err error) {
	defer classify(&err)
	var rec *engine.RunRecord
	err = s.readTx(ctx, func(q querier) error {
		var ord int64
		var snap, req, sel string
		err := q.QueryRow(ctx, `SELECT ord, snapshot, request, selection FROM runs JOIN run_bodies ON run_id = id WHERE id = $1 AND tenant = $2`, id, tenant).Scan(&ord, &snap, &req, &sel)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("run %s: %w", id, engine.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("reading run %s from %s: %w", id, s.where, err)
		}
		if rec, err = engine.DecodeRecord(ord, snap, req, sel); err != nil {
			return err
		}
		return s.loadMembers(ctx, q, []*api.Run{rec.Run})
	})
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// ListRuns implements engine.Store. The cursor is the ord of the last run
// returned; the next page is the runs below it.
func (s *Store) ListRuns(ctx context.Context, tenant string, f engine.ListFilter) (r0 []*api.Run, r1 string, err error) {
	defer classify(&err)
	lq := newListQuery(`SELECT ord, snapshot, selection FROM runs JOIN run_bodies ON run_id = id`, tenant)
	if err := lq.cursor(f.Cursor, engine.ErrInvalidCursor); err != nil {
		return nil, "", err
	}
	lq.eq("project", f.Project)
	lq.eq("environment", f.Environment)
	lq.in("status", stringsOf(f.Statuses))
	lq.source(f)
	q := lq.sql + ` ORDER BY ord DESC`
	if f.Limit > 0 {
		q += ` LIMIT ` + lq.arg(f.Limit+1) // one more than a page tells whether there is a next one
	}
	var out []*api.Run
	var lastOrd int64
	more := false
	err = s.readTx(ctx, func(tx querier) error {
		rows, err := tx.Query(ctx, q, lq.args...)
		if err != nil {
			return fmt.Errorf("listing runs in %s: %w", s.where, err)
		}
		defer rows.Close()
		for rows.Next() {
			if f.Limit > 0 && len(out) == f.Limit {
				more = true
				break
			}
			var ord int64
			var snap, sel string
			if err := rows.Scan(&ord, &snap, &sel); err != nil {
				return fmt.Errorf("listing runs in %s: %w", s.where, err)
			}
			r, err := engine.DecodeHead(ord, snap, sel)
			if err != nil {
				return err
			}
			out = append(out, r)
			lastOrd = ord
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("listing runs in %s: %w", s.where, err)
		}
		return s.loadMembers(ctx, tx, out)
	})
	if err != nil {
		return nil, "", err
	}
	if more {
		return out, strconv.FormatInt(lastOrd, 10), nil
	}
	return out, "", nil
}

// Events implements engine.Store.
func (s *Store) Events(ctx context.Context, runID string, after int64, limit int) (r0 []api.Event, err error) {
	defer classify(&err)
	q := `SELECT body FROM events WHERE run_id = $1 AND seq > $2 ORDER BY seq`
	args := []any{runID, after}
	if limit > 0 {
		q += ` LIMIT $3`
		args = append(args, limit)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading events of run %s from %s: %w", runID, s.where, err)
	}
	defer rows.Close()
	var out []api.Event
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("reading events of run %s: %w", runID, err)
		}
		var ev api.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			return nil, fmt.Errorf("decoding a stored event of run %s: %w", runID, err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading events of run %s from %s: %w", runID, s.where, err)
	}
	if len(out) == 0 {
		// Every run has seq 1, so an empty answer may mean there is no run.
		var one int
		err := s.pool.QueryRow(ctx, `SELECT 1 FROM runs WHERE id = $1`, runID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("events of run %s: %w", runID, engine.ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("reading run %s from %s: %w", runID, s.where, err)
		}
	}
	return out, nil
}

// NonTerminal implements engine.Store.
func (s *Store) NonTerminal(ctx context.Context) (r0 []*engine.RunRecord, err error) {
	defer classify(&err)
	var out []*engine.RunRecord
	err = s.readTx(ctx, func(tx querier) error {
		rows, err := tx.Query(ctx, `SELECT ord, snapshot, request, selection FROM runs JOIN run_bodies ON run_id = id
			WHERE status IN ('initial', 'queued', 'running') ORDER BY ord`)
		if err != nil {
			return fmt.Errorf("reading unfinished runs from %s: %w", s.where, err)
		}
		defer rows.Close()
		var runs []*api.Run
		for rows.Next() {
			var ord int64
			var snap, req, sel string
			if err := rows.Scan(&ord, &snap, &req, &sel); err != nil {
				return fmt.Errorf("reading unfinished runs: %w", err)
			}
			rec, err := engine.DecodeRecord(ord, snap, req, sel)
			if err != nil {
				return err
			}
			out = append(out, rec)
			runs = append(runs, rec.Run)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading unfinished runs from %s: %w", s.where, err)
		}
		return s.loadMembers(ctx, tx, runs)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Prune deletes the idempotency keys that expired at or before now (the runs
// stay) and returns how many; a server calls it periodically.
func (s *Store) Prune(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM idempotency WHERE expires_at <= $1`, now.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("pruning expired idempotency keys in %s: %w", s.where, err)
	}
	return tag.RowsAffected(), nil
}
