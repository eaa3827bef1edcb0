// Package sqlitestore is the engine.Store of `zof serve`: a SQLite file
// (pure Go driver, no cgo) holding runs, event logs and idempotency keys, so
// they survive a restart.
//
// Durability: the database runs in WAL mode with synchronous=NORMAL. A
// committed write survives the process being killed at any moment; after a
// power loss or OS crash the last transactions before it may be lost (never
// corrupted), because the WAL is synced at checkpoints rather than at every
// commit. Options.FullSync trades create throughput for surviving that too.
//
// Concurrency: SQLite has one writer at a time. Writes go through a pool of
// one connection whose transactions begin IMMEDIATE, so they queue in Go
// rather than spinning on SQLITE_BUSY; reads use a separate pool and, in WAL
// mode, never wait for the writer. busy_timeout covers another process on the
// same file (a second `zof serve` by mistake, or the sqlite3 shell).
//
// The file holds run definitions including their secrets (the values the
// engine masks); it is created readable by its owner only.
package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

var _ engine.Store = (*Store)(nil)
var _ engine.BatchAppender = (*Store)(nil)

const (
	// DriverName is the database/sql driver of modernc.org/sqlite.
	DriverName = "sqlite"
	// FileName is the database's name inside a data directory (`zof serve --data DIR`).
	FileName = "zof.db"
	// DefaultBusyTimeout: how long a statement waits for a lock another
	// process holds before failing with SQLITE_BUSY.
	DefaultBusyTimeout = 5 * time.Second
	// insertChunk bounds the rows of one multi-row INSERT, well under
	// SQLite's limit of 32766 bound parameters (SQLITE_MAX_VARIABLE_NUMBER
	// since 3.32) and PostgreSQL's 65535.
	insertChunk = 256
	// createAttempts bounds CreateRun's retries when the idempotency key's
	// holder vanishes between the conflict and the re-read (an expired key
	// pruned meanwhile); with SQLite's single writer the first attempt decides.
	createAttempts = 3
)

// Options tune Open. The zero value is the production setting.
type Options struct {
	// BusyTimeout: see DefaultBusyTimeout.
	BusyTimeout time.Duration
	// Readers bounds the read connections (default: GOMAXPROCS, at least 2).
	Readers int
	// FullSync sets synchronous=FULL: every commit is synced to disk, so a
	// committed run also survives a power loss, at the cost of an fsync per
	// write (create throughput drops to what the disk syncs per second).
	FullSync bool
}

// Store is an engine.Store on a SQLite file. All methods are safe for
// concurrent use; Close it when done.
type Store struct {
	path   string
	writer *sql.DB // one connection: SQLite's single writer
	reader *sql.DB
	// Statements of the hot write paths, prepared once on the writer's
	// connection (parsing them each time costs a quarter of a create).
	getKey, insertRun, insertBody, insertFirst, insertKey, updateRun, insertEvent, putMember *sql.Stmt
}

// Hot write statements (see Store).
const (
	sqlGetKey    = `SELECT fingerprint, run_id, created_at, expires_at FROM idempotency WHERE tenant = ? AND idem_key = ?`
	sqlInsertRun = `INSERT INTO runs (id, tenant, ord, status, project, environment, created_at, last_seq, snapshot)
		VALUES (?, ?, (SELECT COALESCE(MAX(ord), 0) + 1 FROM runs), ?, ?, ?, ?, ?, ?)
		RETURNING ord`
	sqlInsertBody  = `INSERT INTO run_bodies (run_id, request, selection) VALUES (?, ?, ?)`
	sqlInsertFirst = `INSERT INTO events (run_id, seq, body) VALUES (?, 1, ?)`
	sqlInsertKey   = `INSERT INTO idempotency (tenant, idem_key, fingerprint, run_id, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant, idem_key) DO NOTHING`
	sqlUpdateRun   = `UPDATE runs SET status = ?, last_seq = ?, snapshot = ? WHERE id = ? AND last_seq = ?`
	sqlInsertEvent = `INSERT INTO events (run_id, seq, body) VALUES (?, ?, ?)`
	sqlPutMember   = `INSERT INTO members (run_id, idx, body) VALUES (?, ?, ?)
		ON CONFLICT (run_id, idx) DO UPDATE SET body = excluded.body`
)

// Open opens (creating if needed) the SQLite database at path and brings its
// schema up to date. The parent directory is created too.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlitestore: no database path; pass a file inside the --data directory")
	}
	if strings.ContainsAny(path, "?#") {
		// The driver reads everything after '?' as connection parameters.
		return nil, fmt.Errorf("sqlitestore: database path %q contains '?' or '#'; choose a --data directory without them", path)
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = DefaultBusyTimeout
	}
	if opts.Readers <= 0 {
		opts.Readers = max(runtime.GOMAXPROCS(0), 2)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlitestore: creating the data directory for %s: %w; check --data and its permissions", path, err)
	}
	// Create the file ourselves so it is private: it holds run secrets.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: opening %s: %w; check --data and its permissions", path, err)
	}
	_ = f.Close()

	sync := "NORMAL"
	if opts.FullSync {
		sync = "FULL"
	}
	params := "?_pragma=busy_timeout(" + strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10) + ")" +
		"&_pragma=foreign_keys(1)" +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(" + sync + ")"
	writer, err := sql.Open(DriverName, path+params+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: opening %s: %w", path, err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	s := &Store{path: path, writer: writer}
	// The writer connects first: it switches the file to WAL (a persistent
	// setting) before any reader opens it.
	if err := migrate(ctx, writer, path); err != nil {
		_ = writer.Close()
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	reader, err := sql.Open(DriverName, path+params+"&_pragma=query_only(1)")
	if err != nil {
		_ = writer.Close()
		return nil, fmt.Errorf("sqlitestore: opening %s for reading: %w", path, err)
	}
	reader.SetMaxOpenConns(opts.Readers)
	reader.SetMaxIdleConns(opts.Readers)
	s.reader = reader
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&s.getKey, sqlGetKey}, {&s.insertRun, sqlInsertRun}, {&s.insertFirst, sqlInsertFirst},
		{&s.insertKey, sqlInsertKey}, {&s.updateRun, sqlUpdateRun}, {&s.insertEvent, sqlInsertEvent},
		{&s.putMember, sqlPutMember}, {&s.insertBody, sqlInsertBody},
	} {
		if *p.stmt, err = writer.PrepareContext(ctx, p.sql); err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("sqlitestore: preparing statements on %s: %w", path, err)
		}
	}
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close closes the database. The engine must have stopped using the store.
func (s *Store) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.getKey, s.insertRun, s.insertFirst, s.insertKey, s.updateRun, s.insertEvent, s.putMember, s.insertBody} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.reader != nil {
		errs = append(errs, s.reader.Close())
	}
	errs = append(errs, s.writer.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlitestore: closing %s: %w", s.path, err)
	}
	return nil
}

// Ping reports whether the database answers a query (readiness).
func (s *Store) Ping(ctx context.Context) error {
	var v int
	if err := s.reader.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil {
		return fmt.Errorf("sqlitestore: %s does not answer: %w; check the disk and the --data directory", s.path, err)
	}
	return nil
}

// CreateRun implements engine.Store: the run, its first event and the
// idempotency key in one transaction. The unique (tenant, idem_key) index is
// the arbiter: a create that finds the key held, or loses the race for it,
// stores nothing and returns the holder.
func (s *Store) CreateRun(ctx context.Context, rec *engine.RunRecord, first api.Event, idem *engine.IdempotencyRecord) (*engine.IdempotencyRecord, error) {
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
	members, err := encodeMembers(id, whole.Members)
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
	for range createAttempts {
		ord, holder, err := s.createTx(ctx, rec.Run, snap, members, runBody{req, sel}, body, idem)
		if err != nil {
			return nil, fmt.Errorf("creating run %s in %s: %w", id, s.path, err)
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

// createTx is one attempt of CreateRun. It returns the new run's ord, or the
// key's holder, or neither when the key was taken and then released again.
// runBody is what run_bodies holds: written once, never updated.
type runBody struct{ request, selection []byte }

func (s *Store) createTx(ctx context.Context, run *api.Run, snap []byte, members []encodedMember, rb runBody, body []byte, idem *engine.IdempotencyRecord) (int64, *engine.IdempotencyRecord, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, nil, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if idem != nil {
		// The fast path: a replay finds its holder without inserting anything.
		held, err := getKey(ctx, tx.StmtContext(ctx, s.getKey), idem.Tenant, idem.Key)
		if err != nil {
			return 0, nil, err
		}
		if held != nil {
			if held.ExpiresAt.After(idem.CreatedAt) {
				return 0, held, nil
			}
			// Expired keys are free: drop the old binding (the run stays).
			if _, err := tx.ExecContext(ctx, `DELETE FROM idempotency WHERE tenant = ? AND idem_key = ?`, idem.Tenant, idem.Key); err != nil {
				return 0, nil, fmt.Errorf("releasing expired idempotency key %q: %w", idem.Key, err)
			}
		}
	}
	var ord int64
	err = tx.StmtContext(ctx, s.insertRun).QueryRowContext(ctx,
		run.ID, run.Tenant, string(run.Status), run.Project, run.Environment, run.CreatedAt.UnixNano(), run.LastSeq, string(snap)).Scan(&ord)
	if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
		return 0, nil, engine.ErrDuplicateRun
	}
	if err != nil {
		return 0, nil, err
	}
	if _, err := tx.StmtContext(ctx, s.insertBody).ExecContext(ctx, run.ID, string(rb.request), string(rb.selection)); err != nil {
		return 0, nil, fmt.Errorf("storing the run's definition: %w", err)
	}
	if _, err := tx.StmtContext(ctx, s.insertFirst).ExecContext(ctx, run.ID, string(body)); err != nil {
		return 0, nil, fmt.Errorf("storing the first event: %w", err)
	}
	if err := s.putMembers(ctx, tx, run.ID, members); err != nil {
		return 0, nil, err
	}
	if idem != nil {
		res, err := tx.StmtContext(ctx, s.insertKey).ExecContext(ctx,
			idem.Tenant, idem.Key, idem.Fingerprint, idem.RunID, idem.CreatedAt.UnixNano(), idem.ExpiresAt.UnixNano())
		if err != nil {
			return 0, nil, fmt.Errorf("storing idempotency key %q: %w", idem.Key, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return 0, nil, err
		} else if n == 0 {
			// Another writer took the key after our check (PostgreSQL, READ
			// COMMITTED): undo our run and report theirs, now committed.
			_ = tx.Rollback()
			held, err := getKey(ctx, s.getKey, idem.Tenant, idem.Key)
			return 0, held, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, nil, err
	}
	return ord, nil, nil
}

// getKey reads an idempotency record with a sqlGetKey statement, nil when there is none.
func getKey(ctx context.Context, stmt *sql.Stmt, tenant, key string) (*engine.IdempotencyRecord, error) {
	rec := engine.IdempotencyRecord{Tenant: tenant, Key: key}
	var created, expires int64
	err := stmt.QueryRowContext(ctx, tenant, key).Scan(&rec.Fingerprint, &rec.RunID, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading idempotency key %q: %w", key, err)
	}
	rec.CreatedAt, rec.ExpiresAt = fromNanos(created), fromNanos(expires)
	return &rec, nil
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// isConstraint reports whether err is SQLite's extended result code code.
func isConstraint(err error, code int) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == code
}

// Append implements engine.Store. The run's row (its head) is updated only
// if its last_seq is where the batch starts (a conditional UPDATE, so the
// check and the write are one step in any SQL database), then the changed
// members' rows are written and the events inserted; the (run_id, seq)
// primary key backs the rule up.
func (s *Store) Append(ctx context.Context, a engine.Append) error {
	return s.AppendBatch(ctx, []engine.Append{a})
}

// AppendBatch implements engine.BatchAppender: every run's append in one
// transaction, all or nothing (the scheduler moves a whole queue at once).
func (s *Store) AppendBatch(ctx context.Context, batch []engine.Append) error {
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
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("appending to run %s in %s: %w", batch[0].RunID, s.path, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	for _, a := range enc {
		if err := s.appendTx(ctx, tx, a); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("appending to run %s in %s: %w", batch[0].RunID, s.path, err)
	}
	return nil
}

// encodedAppend is an append checked and encoded before the transaction starts,
// so the single writer is held only for the writes.
type encodedAppend struct {
	head    *api.Run // to record history when the run ends
	runID   string
	start   int64 // the seq the log must be at
	status  string
	last    int64
	snap    string // the head
	members []encodedMember
	events  []api.Event
	bodies  []string
}

// encodedMember is a member's row.
type encodedMember struct {
	idx  int
	body string
}

func encodeMembers(runID string, us []engine.MemberUpdate) ([]encodedMember, error) {
	out := make([]encodedMember, len(us))
	for i, u := range us {
		b, err := json.Marshal(u.Member)
		if err != nil {
			return nil, fmt.Errorf("run %s: encoding member %d: %w", runID, u.Index, err)
		}
		out[i] = encodedMember{idx: u.Index, body: string(b)}
	}
	return out, nil
}

func encodeAppend(a engine.Append) (encodedAppend, error) {
	runID, snapshot, events := a.RunID, a.Run, a.Events
	start := snapshot.LastSeq - int64(len(events))
	for i, ev := range events {
		if ev.Seq != start+int64(i)+1 {
			return encodedAppend{}, fmt.Errorf("appending to run %s: event %d of the batch has seq %d, want %d: %w", runID, i+1, ev.Seq, start+int64(i)+1, engine.ErrSeqConflict)
		}
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
	members, err := encodeMembers(runID, a.Members)
	if err != nil {
		return encodedAppend{}, err
	}
	return encodedAppend{head: snapshot, runID: runID, start: start, status: string(snapshot.Status), last: snapshot.LastSeq, snap: string(snap), members: members, events: events, bodies: bodies}, nil
}

// appendTx writes one run's append inside tx: the snapshot only if the log is
// still at a.start (else ErrSeqConflict), then the events.
func (s *Store) appendTx(ctx context.Context, tx *sql.Tx, a encodedAppend) error {
	runID, start, events, bodies := a.runID, a.start, a.events, a.bodies
	res, err := tx.StmtContext(ctx, s.updateRun).ExecContext(ctx, a.status, a.last, a.snap, runID, start)
	if err != nil {
		return fmt.Errorf("appending to run %s in %s: %w", runID, s.path, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("appending to run %s: %w", runID, err)
	} else if n == 0 {
		var last int64
		switch err := tx.QueryRowContext(ctx, `SELECT last_seq FROM runs WHERE id = ?`, runID).Scan(&last); {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("appending to run %s: %w", runID, engine.ErrNotFound)
		case err != nil:
			return fmt.Errorf("appending to run %s: %w", runID, err)
		}
		return fmt.Errorf("appending to run %s: the batch starts after seq %d, the log is at %d: %w", runID, start, last, engine.ErrSeqConflict)
	}
	if err := s.putMembers(ctx, tx, runID, a.members); err != nil {
		return err
	}
	if a.head.Status.Terminal() {
		if err := s.recordHistory(ctx, tx, a.head); err != nil {
			return err
		}
	}
	for i := 0; i < len(events); i += insertChunk {
		n := min(insertChunk, len(events)-i)
		args := make([]any, 0, 3*n)
		for j := i; j < i+n; j++ {
			args = append(args, runID, events[j].Seq, bodies[j])
		}
		var err error
		if n == 1 { // the common case: one status change
			_, err = tx.StmtContext(ctx, s.insertEvent).ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO events (run_id, seq, body) VALUES `+strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", n), ", "), args...)
		}
		if err != nil {
			if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
				return fmt.Errorf("appending to run %s: %w", runID, engine.ErrSeqConflict)
			}
			return fmt.Errorf("appending to run %s in %s: %w", runID, s.path, err)
		}
	}
	return nil
}

// putMembers writes members' rows inside tx, several per statement.
func (s *Store) putMembers(ctx context.Context, tx *sql.Tx, runID string, ms []encodedMember) error {
	for i := 0; i < len(ms); i += insertChunk {
		n := min(insertChunk, len(ms)-i)
		args := make([]any, 0, 3*n)
		for _, m := range ms[i : i+n] {
			args = append(args, runID, m.idx, m.body)
		}
		var err error
		if n == 1 { // the common case: an event changes one member
			_, err = tx.StmtContext(ctx, s.putMember).ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO members (run_id, idx, body) VALUES `+
				strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", n), ", ")+
				` ON CONFLICT (run_id, idx) DO UPDATE SET body = excluded.body`, args...)
		}
		if err != nil {
			return fmt.Errorf("storing members of run %s in %s: %w", runID, s.path, err)
		}
	}
	return nil
}

// queryer is what reads need of a *sql.DB or *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readTx runs fn in a read transaction, so a run's head and its members
// are read from one state of the database.
func (s *Store) readTx(ctx context.Context, fn func(q queryer) error) error {
	tx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("reading %s: %w", s.path, err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	return fn(tx)
}

// loadMembers fills the members of runs (heads decoded from runs.snapshot)
// from their rows, several runs per query.
func (s *Store) loadMembers(ctx context.Context, q queryer, runs []*api.Run) error {
	byID := make(map[string]*api.Run, len(runs))
	for _, r := range runs {
		byID[r.ID] = r
		r.Members = []api.Member{}
	}
	for i := 0; i < len(runs); i += insertChunk {
		chunk := runs[i:min(i+insertChunk, len(runs))]
		args := make([]any, len(chunk))
		for j, r := range chunk {
			args[j] = r.ID
		}
		rows, err := q.QueryContext(ctx, `SELECT run_id, idx, body FROM members WHERE run_id IN (`+
			strings.TrimSuffix(strings.Repeat("?, ", len(chunk)), ", ")+`) ORDER BY run_id, idx`, args...)
		if err != nil {
			return fmt.Errorf("reading members from %s: %w", s.path, err)
		}
		if err := scanMembers(rows, byID); err != nil {
			return err
		}
	}
	return nil
}

func scanMembers(rows *sql.Rows, byID map[string]*api.Run) error {
	defer rows.Close()
	for rows.Next() {
		var runID string
		var idx int
		var body []byte
		if err := rows.Scan(&runID, &idx, &body); err != nil {
			return fmt.Errorf("reading members: %w", err)
		}
		r := byID[runID]
		if idx != len(r.Members) {
			return fmt.Errorf("run %s: member %d is missing from the store", runID, len(r.Members))
		}
		var m api.Member
		if err := json.Unmarshal(body, &m); err != nil {
			return fmt.Errorf("decoding stored member %d of run %s: %w", idx, runID, err)
		}
		r.Members = append(r.Members, m)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading members: %w", err)
	}
	return nil
}

// GetRun implements engine.Store.
func (s *Store) GetRun(ctx context.Context, tenant, id string) (*engine.RunRecord, error) {
	var rec *engine.RunRecord
	err := s.readTx(ctx, func(q queryer) error {
		var ord int64
		var snap, req string
		var sel string
		err := q.QueryRowContext(ctx, `SELECT ord, snapshot, request, selection FROM runs JOIN run_bodies ON run_id = id WHERE id = ? AND tenant = ?`, id, tenant).Scan(&ord, &snap, &req, &sel)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("run %s: %w", id, engine.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("reading run %s from %s: %w", id, s.path, err)
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
func (s *Store) ListRuns(ctx context.Context, tenant string, f engine.ListFilter) ([]*api.Run, string, error) {
	lq := newListQuery(`SELECT ord, snapshot, selection FROM runs JOIN run_bodies ON run_id = id`, tenant)
	if err := lq.cursor(f.Cursor, engine.ErrInvalidCursor); err != nil {
		return nil, "", err
	}
	lq.eq("project", f.Project)
	lq.eq("environment", f.Environment)
	lq.in("status", stringsOf(f.Statuses))
	lq.source(f)
	q, args := lq.sql+` ORDER BY ord DESC`, lq.args
	if f.Limit > 0 {
		q += ` LIMIT ?` // one more than a page tells whether there is a next one
		args = append(args, f.Limit+1)
	}
	var out []*api.Run
	var lastOrd int64
	more := false
	err := s.readTx(ctx, func(tx queryer) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("listing runs in %s: %w", s.path, err)
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
				return fmt.Errorf("listing runs in %s: %w", s.path, err)
			}
			r, err := engine.DecodeHead(ord, snap, sel)
			if err != nil {
				return err
			}
			out = append(out, r)
			lastOrd = ord
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("listing runs in %s: %w", s.path, err)
		}
		_ = rows.Close()
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
func (s *Store) Events(ctx context.Context, runID string, after int64, limit int) ([]api.Event, error) {
	q := `SELECT body FROM events WHERE run_id = ? AND seq > ? ORDER BY seq`
	args := []any{runID, after}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading events of run %s from %s: %w", runID, s.path, err)
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
		return nil, fmt.Errorf("reading events of run %s: %w", runID, err)
	}
	if len(out) == 0 {
		// Every run has seq 1, so an empty answer may mean there is no run.
		var one int
		err := s.reader.QueryRowContext(ctx, `SELECT 1 FROM runs WHERE id = ?`, runID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("events of run %s: %w", runID, engine.ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("reading run %s: %w", runID, err)
		}
	}
	return out, nil
}

// NonTerminal implements engine.Store.
func (s *Store) NonTerminal(ctx context.Context) ([]*engine.RunRecord, error) {
	var out []*engine.RunRecord
	err := s.readTx(ctx, func(tx queryer) error {
		rows, err := tx.QueryContext(ctx, `SELECT ord, snapshot, request, selection FROM runs JOIN run_bodies ON run_id = id WHERE status IN (?, ?, ?) ORDER BY ord`,
			string(api.StatusInitial), string(api.StatusQueued), string(api.StatusRunning))
		if err != nil {
			return fmt.Errorf("reading unfinished runs from %s: %w", s.path, err)
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
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading unfinished runs from %s: %w", s.path, err)
		}
		_ = rows.Close()
		return s.loadMembers(ctx, tx, runs)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Prune deletes the idempotency keys that expired at or before now (the runs
// stay) and returns how many. Expired keys are already treated as free by
// CreateRun; pruning keeps the table from growing. A server calls it
// periodically, e.g. hourly.
func (s *Store) Prune(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.writer.ExecContext(ctx, `DELETE FROM idempotency WHERE expires_at <= ?`, now.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("pruning expired idempotency keys in %s: %w", s.path, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("pruning expired idempotency keys: %w", err)
	}
	return n, nil
}
