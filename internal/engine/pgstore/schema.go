package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/zof-ai/zof-ci/internal/engine/historysql"
)

// migrations are the schema's versions in order: migrations[i] takes the
// database from version i to i+1. Never edit a released migration; append a
// new one. The shape is docs/design-postgres.md's: a run's head (runs), its
// definition (run_bodies, written once), one row per member and its event log.
//
// JSON is stored as TEXT, not JSONB: JSONB refuses the escape \u0000, which
// step output may contain, and nothing queries inside the documents.
// Times are Unix nanoseconds in BIGINT, as in the SQLite store.
var migrations = [][]string{
	// 1: runs, members, event logs, idempotency keys and triggers.
	{
		// ord is a sequence: MAX+1 races between concurrent writers.
		`CREATE TABLE runs (
			id          TEXT   NOT NULL PRIMARY KEY,
			tenant      TEXT   NOT NULL,
			ord         BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
			status      TEXT   NOT NULL,
			project     TEXT   NOT NULL,
			environment TEXT   NOT NULL,
			created_at  BIGINT NOT NULL,
			last_seq    BIGINT NOT NULL,
			snapshot    TEXT   NOT NULL
		)`,
		`CREATE INDEX runs_tenant_ord ON runs (tenant, ord)`,
		`CREATE INDEX runs_tenant_status_ord ON runs (tenant, status, ord)`,
		`CREATE INDEX runs_tenant_project_environment_ord ON runs (tenant, project, environment, ord)`,
		`CREATE INDEX runs_active ON runs (status, ord) WHERE status IN ('initial', 'queued', 'running')`,
		`CREATE TABLE run_bodies (
			run_id    TEXT NOT NULL PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
			request   TEXT NOT NULL,
			selection TEXT NOT NULL
		)`,
		`CREATE TABLE members (
			run_id TEXT   NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
			idx    BIGINT NOT NULL,
			body   TEXT   NOT NULL,
			PRIMARY KEY (run_id, idx)
		)`,
		`CREATE TABLE events (
			run_id TEXT   NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
			seq    BIGINT NOT NULL,
			body   TEXT   NOT NULL,
			PRIMARY KEY (run_id, seq)
		)`,
		// The unique (tenant, idem_key) makes N concurrent identical creates,
		// on any number of replicas, produce one run.
		`CREATE TABLE idempotency (
			tenant      TEXT   NOT NULL,
			idem_key    TEXT   NOT NULL,
			fingerprint TEXT   NOT NULL,
			run_id      TEXT   NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
			created_at  BIGINT NOT NULL,
			expires_at  BIGINT NOT NULL,
			UNIQUE (tenant, idem_key)
		)`,
		`CREATE INDEX idempotency_expires_at ON idempotency (expires_at)`,
		// The unique (tenant, source, trigger_key) deduplicates redeliveries
		// and schedule ticks seen by several replicas.
		`CREATE TABLE triggers (
			id          TEXT   NOT NULL PRIMARY KEY,
			tenant      TEXT   NOT NULL,
			source      TEXT   NOT NULL,
			trigger_key TEXT   NOT NULL,
			ord         BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
			state       TEXT   NOT NULL,
			event       TEXT   NOT NULL,
			reported    BOOLEAN NOT NULL,
			created_at  BIGINT NOT NULL,
			expires_at  BIGINT NOT NULL,
			body        TEXT   NOT NULL,
			detail      TEXT   NOT NULL,
			UNIQUE (tenant, source, trigger_key)
		)`,
		`CREATE INDEX triggers_tenant_ord ON triggers (tenant, ord)`,
		`CREATE INDEX triggers_state_ord ON triggers (state, ord)`,
		`CREATE INDEX triggers_expires_at ON triggers (expires_at)`,
	},
	// 2: test health history (engine.HistoryStore), as in the SQLite store:
	// one row per member that passed or failed, written in the transaction
	// of the append that ends its run. The primary key makes that write
	// idempotent. Health reads one project of one tenant from a date on
	// (history_tenant_project_finished); pruning deletes by date
	// (history_finished).
	{
		`CREATE TABLE history (
			tenant      TEXT    NOT NULL,
			project     TEXT    NOT NULL,
			environment TEXT    NOT NULL,
			case_id     TEXT    NOT NULL,
			variant     TEXT    NOT NULL,
			status      TEXT    NOT NULL,
			attempts    BIGINT  NOT NULL,
			flaky       BOOLEAN NOT NULL,
			quarantined BOOLEAN NOT NULL,
			duration_ns BIGINT  NOT NULL,
			run_id      TEXT    NOT NULL,
			commit_sha  TEXT    NOT NULL,
			branch      TEXT    NOT NULL,
			finished_at BIGINT  NOT NULL,
			PRIMARY KEY (run_id, case_id, variant)
		)`,
		`CREATE INDEX history_tenant_project_finished ON history (tenant, project, finished_at)`,
		`CREATE INDEX history_finished ON history (finished_at)`,
	},
	// 3: artifacts: the evidence of failed steps (engine.ArtifactStore), as in
	// the SQLite store: kept with the run and deleted with it (ON DELETE
	// CASCADE); ord is the order put within the run, counted what the row
	// counts against engine.MaxRunArtifactBytes.
	{
		`CREATE TABLE artifacts (
			run_id       TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
			name         TEXT    NOT NULL,
			ord          BIGINT  NOT NULL,
			member       TEXT    NOT NULL,
			step         BIGINT  NOT NULL,
			attempt      BIGINT  NOT NULL,
			kind         TEXT    NOT NULL,
			content_type TEXT    NOT NULL,
			truncated    BOOLEAN NOT NULL,
			size         BIGINT  NOT NULL,
			counted      BIGINT  NOT NULL,
			content      BYTEA   NOT NULL,
			PRIMARY KEY (run_id, name)
		)`,
		`CREATE INDEX artifacts_run_ord ON artifacts (run_id, ord)`,
	},
	// 4: health summaries, as in the SQLite store (historysql.Migration,
	// docs/health.md "How it is stored"), back-filled from history.
	historysql.Migration(historysql.Postgres, "BOOLEAN"),
	// 5 (console): the runs list filters by branch, pull request and trigger,
	// and by runs with a flaky member, at any number of runs: stored
	// generated columns of the head with an index each in list order, and a
	// partial index of flaky members (small: flaky is rare). PostgreSQL's
	// JSON functions refuse text holding the escape \u0000 (a NUL in a
	// step's output or a reason), which would fail the append: the head is
	// read after replacing that escape by \u0020, which keeps the JSON valid
	// whether the backslash starts an escape or ends an escaped backslash;
	// a member is flaky when its compact JSON has the key "flaky" set to
	// true (a quote inside a JSON string is always escaped, so the text
	// "flaky":true occurs only as the key).
	{
		`ALTER TABLE runs ADD COLUMN branch TEXT NOT NULL GENERATED ALWAYS AS (COALESCE(replace(snapshot, '\u0000', '\u0020')::json #>> '{source,ref}', '')) STORED`,
		`ALTER TABLE runs ADD COLUMN pr BIGINT NOT NULL GENERATED ALWAYS AS (COALESCE((replace(snapshot, '\u0000', '\u0020')::json #>> '{source,pr}')::bigint, 0)) STORED`,
		`ALTER TABLE runs ADD COLUMN trigger_kind TEXT NOT NULL GENERATED ALWAYS AS (COALESCE(replace(snapshot, '\u0000', '\u0020')::json #>> '{source,trigger}', '')) STORED`,
		`CREATE INDEX runs_tenant_branch_ord ON runs (tenant, branch, ord)`,
		`CREATE INDEX runs_tenant_pr_ord ON runs (tenant, pr, ord)`,
		`CREATE INDEX runs_tenant_trigger_ord ON runs (tenant, trigger_kind, ord)`,
		`CREATE INDEX members_flaky ON members (run_id) WHERE strpos(body, '"flaky":true') > 0`,
	},
	// 6 (console): the run page's strip of each case's last outcomes reads
	// one case at a time, newest first (engine.OutcomeReader).
	{
		`CREATE INDEX history_tenant_project_case_finished ON history (tenant, project, case_id, finished_at)`,
	},
	// 7: several replicas on one database (engine.Cluster, pgstore/cluster.go).
	// owner is the lease a replica holds a run under (claimed until its
	// terminal event), lease_until when it expires (Unix ns of the
	// database's clock), cancel_request a cancel asked of the holder;
	// exclusive and grp copy the definition's exclusive environment and
	// concurrency group, which claims and supersede query; leases holds the
	// leader lease. (One tenant's claims queue on an advisory lock.)
	{
		`ALTER TABLE runs ADD COLUMN owner TEXT`,
		`ALTER TABLE runs ADD COLUMN lease_until BIGINT`,
		`ALTER TABLE runs ADD COLUMN cancel_request TEXT`,
		`ALTER TABLE runs ADD COLUMN exclusive BOOLEAN NOT NULL DEFAULT false`,
		`ALTER TABLE runs ADD COLUMN grp TEXT NOT NULL DEFAULT ''`,
		// Only unfinished runs are claimed or superseded; their definitions
		// are read as json (not jsonb, which refuses \u0000 in step output).
		`UPDATE runs SET exclusive = coalesce((b.request::json->'environment'->>'exclusive')::boolean, false),
			grp = coalesce(b.request::json->>'concurrency_group', '')
			FROM run_bodies b WHERE b.run_id = runs.id AND runs.status IN ('initial', 'queued', 'running')`,
		`CREATE INDEX runs_waiting ON runs (tenant, ord) WHERE owner IS NULL AND status IN ('initial', 'queued')`,
		`CREATE INDEX runs_owner ON runs (owner) WHERE owner IS NOT NULL AND status IN ('initial', 'queued', 'running')`,
		`CREATE INDEX runs_grp ON runs (tenant, grp, ord) WHERE grp <> '' AND status IN ('initial', 'queued', 'running')`,
		`CREATE TABLE leases (
			name  TEXT   NOT NULL PRIMARY KEY,
			owner TEXT   NOT NULL,
			until BIGINT NOT NULL
		)`,
	},
	// 8: a claim in one statement (pgstore/cluster.go, Store.Claim;
	// docs/design-postgres.md "Claim"). zof_claim tries the tenants in the
	// order given: the tenant's transaction-scoped advisory lock (the key
	// of version 7's claims, so replicas of both versions keep each other
	// out), skipping a tenant another claimer holds; then one UPDATE counts
	// the tenant's held runs against its limit (0: none), takes its oldest
	// waiting run whose exclusive environment is free and puts it under the
	// lease. The function is VOLATILE, so under READ COMMITTED each
	// statement in it takes a new snapshot: the UPDATE, started after the
	// lock is held, sees every claim committed before it (one statement with
	// the lock in a CTE would count from a snapshot taken before the lock).
	// Other isolation levels keep one snapshot per transaction: refused.
	// runs_held holds exactly the held runs (sqlHeld), so the count of a
	// tenant's held runs and the exclusive environment check read at most
	// the held runs of the tenant, not its waiting ones or its history.
	{
		`CREATE INDEX runs_held ON runs (tenant, project, environment)
			WHERE status IN ('initial', 'queued', 'running') AND (owner IS NOT NULL OR status = 'running')`,
		`CREATE FUNCTION zof_claim(p_tenants TEXT[], p_limits BIGINT[], p_lease TEXT, p_ttl BIGINT)
		RETURNS TABLE (o_id TEXT, o_ord BIGINT, o_snapshot TEXT, o_request TEXT, o_selection TEXT, o_cancel TEXT)
		LANGUAGE plpgsql VOLATILE AS $fn$
		DECLARE
			i INT;
		BEGIN
			IF current_setting('transaction_isolation') <> 'read committed' THEN
				RAISE EXCEPTION 'zof claims runs only under read committed, not %', current_setting('transaction_isolation')
					USING HINT = 'a claim counts held runs after taking a lock, which needs a snapshot per statement: set default_transaction_isolation to read committed for zof''s role or database';
			END IF;
			FOR i IN 1 .. coalesce(array_length(p_tenants, 1), 0) LOOP
				CONTINUE WHEN NOT pg_try_advisory_xact_lock(hashtext('zof-ci claim ' || current_schema() || ' ' || p_tenants[i]));
				RETURN QUERY WITH c AS (
					UPDATE runs SET owner = p_lease, lease_until = (extract(epoch from clock_timestamp()) * 1000000000)::bigint + p_ttl
					WHERE runs.id = (SELECT q.id FROM runs q
						WHERE q.tenant = p_tenants[i] AND q.owner IS NULL AND q.status IN ('initial', 'queued')
						  AND NOT (q.exclusive AND EXISTS (SELECT 1 FROM runs h WHERE h.tenant = q.tenant AND h.project = q.project
						      AND h.environment = q.environment AND h.exclusive
						      AND h.status IN ('initial', 'queued', 'running') AND (h.owner IS NOT NULL OR h.status = 'running')))
						ORDER BY q.ord LIMIT 1 FOR UPDATE OF q)
					  AND (p_limits[i] <= 0 OR (SELECT count(*) FROM runs r WHERE r.tenant = p_tenants[i]
						  AND r.status IN ('initial', 'queued', 'running') AND (r.owner IS NOT NULL OR r.status = 'running')) < p_limits[i])
					RETURNING runs.id, runs.ord, runs.snapshot, runs.cancel_request)
					SELECT c.id, c.ord, c.snapshot, b.request, b.selection, c.cancel_request FROM c JOIN run_bodies b ON b.run_id = c.id;
				IF FOUND THEN
					RETURN;
				END IF;
			END LOOP;
		END
		$fn$`,
	},
	// 9: an unfinished trigger (webhook delivery, schedule tick) is held
	// under the lease of the replica working on it (trigger.Leaser,
	// pgstore/triggers.go): owner names the lease, lease_until when it
	// expires (Unix ns of the database's clock). A trigger stored before
	// has neither, so the next claim takes it.
	{
		`ALTER TABLE triggers ADD COLUMN owner TEXT`,
		`ALTER TABLE triggers ADD COLUMN lease_until BIGINT`,
	},
	// 10: each project's latest coverage summary, as in the SQLite store
	// (pgstore/coverage.go): one row per tenant and project, the record as
	// JSON; received_at decides which of two replicas' writes is the latest.
	{
		`CREATE TABLE coverage (
			tenant      TEXT   NOT NULL,
			project     TEXT   NOT NULL,
			received_at BIGINT NOT NULL,
			body        TEXT   NOT NULL,
			PRIMARY KEY (tenant, project)
		)`,
	},
	// 11: the fleet of endpoint agents across replicas (pgstore/fleet.go,
	// docs/agents.md "Several replicas"): one row holding the lease epochs'
	// high-water mark (shared, so a new fleet home never grants an epoch an
	// earlier one used), the cluster secret replicas authenticate each other
	// with (written once by the first replica that starts), and the fleet
	// home's lease: the replica, the address others reach it at and when the
	// lease expires (Unix ns of the database's clock).
	{
		`CREATE TABLE fleet (
			id           SMALLINT NOT NULL PRIMARY KEY CHECK (id = 1),
			epoch        BIGINT   NOT NULL DEFAULT 0,
			secret       TEXT,
			home         TEXT,
			home_address TEXT,
			home_until   BIGINT   NOT NULL DEFAULT 0
		)`,
		`INSERT INTO fleet (id) VALUES (1)`,
	},
}

// SchemaVersion is the schema version this binary migrates to.
var SchemaVersion = len(migrations)

// migrateLockKey namespaces the advisory lock migrations hold; the schema
// name is mixed in, so databases with one schema per tenant or test do not
// wait for each other.
const migrateLockKey = "zof-ci schema migration "

// ErrSchemaTooNew: the database was migrated by a newer zof.
var ErrSchemaTooNew = errors.New("the database schema is newer than this zof")

// migrate brings the schema to the latest version in one transaction that
// holds a transaction-scoped advisory lock: replicas starting at once queue on
// the lock, and each one after the first finds the schema current. DDL is
// transactional in PostgreSQL, so a failed migration leaves nothing half done.
func migrate(ctx context.Context, db interface {
	Begin(context.Context) (pgx.Tx, error)
}, target int) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("starting the schema migration: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1 || current_schema()))`, migrateLockKey); err != nil {
		return fmt.Errorf("taking the migration lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("creating schema_version: %w", err)
	}
	var version int
	switch err := tx.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&version); {
	case errors.Is(err, pgx.ErrNoRows):
		if _, err := tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return fmt.Errorf("initialising schema_version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("reading the schema version: %w", err)
	}
	if version > target {
		return fmt.Errorf("the database has schema version %d but this zof knows only up to %d: it was migrated by a newer zof; upgrade zof or use another database: %w", version, target, ErrSchemaTooNew)
	}
	for v := version; v < target; v++ {
		for _, stmt := range migrations[v] {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("migrating to schema version %d: %w", v+1, err)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE schema_version SET version = $1`, v+1); err != nil {
			return fmt.Errorf("recording schema version %d: %w", v+1, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing the schema migration: %w", err)
	}
	return nil
}
