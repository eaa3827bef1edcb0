package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/zof-ai/zof-ci/internal/engine/historysql"
)

// migrations are the schema's versions in order: migrations[i] takes the
// database from version i to i+1. Never edit a released migration; append a
// new one. The SQL is kept portable to PostgreSQL; where PostgreSQL needs
// something else the comment says so. Beyond the schema, the store's queries
// use ? placeholders (PostgreSQL: $1, $2, ...) and otherwise only
// INSERT ... ON CONFLICT DO NOTHING, RETURNING and LIMIT, which both have.
//
// Types: BIGINT is 64-bit in PostgreSQL and has INTEGER affinity in SQLite
// (where every integer is up to 64-bit anyway); TEXT holds JSON (JSONB would
// be the PostgreSQL choice for snapshot, request and body). Times are Unix
// nanoseconds in BIGINT, so comparisons are plain integer comparisons in both.
var migrations = [][]string{
	// 1: runs, their event logs and idempotency keys.
	{
		// ord is the creation order: FIFO queues and newest-first lists sort by
		// it. SQLite assigns it as MAX(ord)+1 inside the single writer's
		// transaction; PostgreSQL would use `ord BIGINT GENERATED ALWAYS AS
		// IDENTITY` (a sequence), since MAX+1 races between concurrent writers.
		`CREATE TABLE runs (
			id          TEXT   NOT NULL PRIMARY KEY,
			tenant      TEXT   NOT NULL,
			ord         BIGINT NOT NULL UNIQUE,
			status      TEXT   NOT NULL,
			project     TEXT   NOT NULL,
			environment TEXT   NOT NULL,
			created_at  BIGINT NOT NULL,
			last_seq    BIGINT NOT NULL,
			snapshot    TEXT   NOT NULL,
			request     TEXT   NOT NULL
		)`,
		// List: newest first per tenant, optionally by status, project and
		// environment; the cursor is an ord bound.
		`CREATE INDEX runs_tenant_ord ON runs (tenant, ord)`,
		`CREATE INDEX runs_tenant_status_ord ON runs (tenant, status, ord)`,
		`CREATE INDEX runs_tenant_project_environment_ord ON runs (tenant, project, environment, ord)`,
		// NonTerminal: the scheduler's resume, oldest first. (PostgreSQL could
		// make it a partial index WHERE status IN ('initial','queued','running').)
		`CREATE INDEX runs_status_ord ON runs (status, ord)`,
		`CREATE TABLE events (
			run_id TEXT   NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
			seq    BIGINT NOT NULL,
			body   TEXT   NOT NULL,
			PRIMARY KEY (run_id, seq)
		)`,
		// The unique (tenant, idem_key) is what makes N concurrent identical
		// creates produce one run; "key" is avoided as a column name because it
		// is reserved in some SQL dialects.
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
	},
	// 2: triggers (webhook deliveries and schedule ticks, package trigger).
	{
		// The unique (tenant, source, trigger_key) deduplicates redeliveries
		// and ticks seen by two processes. body is the api.Trigger as JSON;
		// the columns beside it are what queries filter on. ord as in runs
		// (PostgreSQL: an identity column).
		`CREATE TABLE triggers (
			id          TEXT   NOT NULL PRIMARY KEY,
			tenant      TEXT   NOT NULL,
			source      TEXT   NOT NULL,
			trigger_key TEXT   NOT NULL,
			ord         BIGINT NOT NULL UNIQUE,
			state       TEXT   NOT NULL,
			event       TEXT   NOT NULL,
			reported    BIGINT NOT NULL,
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
	// 3: an append writes only what changed. SQLite rewrites a whole row on
	// any UPDATE, so a run's row kept only what changes (status, last_seq
	// and the head: the run without members and selection); the definition
	// and the selection, both as large as the run and never changed, move to
	// run_bodies, written once; members get a row each, and an append
	// rewrites the rows of the members its events changed. (Before, every
	// event of a 2,000-member run rewrote megabytes.) idx is the member's
	// place in the run.
	{
		`CREATE TABLE members (
			run_id TEXT   NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
			idx    BIGINT NOT NULL,
			body   TEXT   NOT NULL,
			PRIMARY KEY (run_id, idx)
		)`,
		// Existing runs: split each snapshot. json_each's key is the array
		// index and its value the member's JSON text. (PostgreSQL:
		// jsonb_array_elements(snapshot->'members') WITH ORDINALITY, less one.)
		`INSERT INTO members (run_id, idx, body)
			SELECT runs.id, m.key, m.value FROM runs, json_each(runs.snapshot, '$.members') AS m`,
		`CREATE TABLE run_bodies (
			run_id    TEXT NOT NULL PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
			request   TEXT NOT NULL,
			selection TEXT NOT NULL
		)`,
		`INSERT INTO run_bodies (run_id, request, selection)
			SELECT id, request, COALESCE(json_extract(snapshot, '$.selection'), '{}') FROM runs`,
		`UPDATE runs SET snapshot = json_remove(snapshot, '$.members', '$.selection')`,
		`ALTER TABLE runs DROP COLUMN request`,
	},
	// 4: test health history (engine.HistoryStore): one row per member that
	// passed or failed, written in the transaction of the append that ends
	// its run. The primary key makes that write idempotent. Health reads one
	// project of one tenant from a date on (history_tenant_project_finished);
	// pruning deletes by date (history_finished). Sized for a year of a busy
	// team: 10,000 runs x 500 members (docs/benchmarks.md).
	{
		`CREATE TABLE history (
			tenant      TEXT   NOT NULL,
			project     TEXT   NOT NULL,
			environment TEXT   NOT NULL,
			case_id     TEXT   NOT NULL,
			variant     TEXT   NOT NULL,
			status      TEXT   NOT NULL,
			attempts    BIGINT NOT NULL,
			flaky       BIGINT NOT NULL,
			quarantined BIGINT NOT NULL,
			duration_ns BIGINT NOT NULL,
			run_id      TEXT   NOT NULL,
			commit_sha  TEXT   NOT NULL,
			branch      TEXT   NOT NULL,
			finished_at BIGINT NOT NULL,
			PRIMARY KEY (run_id, case_id, variant)
		)`,
		`CREATE INDEX history_tenant_project_finished ON history (tenant, project, finished_at)`,
		`CREATE INDEX history_finished ON history (finished_at)`,
	},
	// 5: artifacts: the evidence of failed steps (engine.ArtifactStore), kept
	// with the run and deleted with it (ON DELETE CASCADE). ord is the order
	// put within the run; counted is what the row counts against
	// engine.MaxRunArtifactBytes (its content without a cap marker), summed
	// by the put that checks the cap. (PostgreSQL: content BYTEA.)
	{
		`CREATE TABLE artifacts (
			run_id       TEXT   NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
			name         TEXT   NOT NULL,
			ord          BIGINT NOT NULL,
			member       TEXT   NOT NULL,
			step         BIGINT NOT NULL,
			attempt      BIGINT NOT NULL,
			kind         TEXT   NOT NULL,
			content_type TEXT   NOT NULL,
			truncated    BIGINT NOT NULL,
			size         BIGINT NOT NULL,
			counted      BIGINT NOT NULL,
			content      BLOB   NOT NULL,
			PRIMARY KEY (run_id, name)
		)`,
		`CREATE INDEX artifacts_run_ord ON artifacts (run_id, ord)`,
	},
	// 6: health summaries (historysql.Migration, docs/health.md "How it is
	// stored"): per case and UTC day, counts and a duration histogram, and
	// each case's latest outcome, kept in the transaction that records
	// history; back-filled here from the history already recorded. A health
	// query reads them instead of every history row.
	historysql.Migration(historysql.SQLite, "BIGINT"),
	// 7 (console): the runs list filters by branch, pull request and trigger,
	// and by runs with a flaky member, at any number of runs. The first three
	// are generated columns of the head (VIRTUAL: ALTER TABLE can add only
	// those; the index stores the value) with an index each in list order;
	// flaky members get a partial index, small because flaky is rare.
	// (PostgreSQL: STORED generated columns over snapshot::jsonb.)
	{
		`ALTER TABLE runs ADD COLUMN branch TEXT GENERATED ALWAYS AS (COALESCE(json_extract(snapshot, '$.source.ref'), '')) VIRTUAL`,
		`ALTER TABLE runs ADD COLUMN pr BIGINT GENERATED ALWAYS AS (COALESCE(json_extract(snapshot, '$.source.pr'), 0)) VIRTUAL`,
		`ALTER TABLE runs ADD COLUMN trigger_kind TEXT GENERATED ALWAYS AS (COALESCE(json_extract(snapshot, '$.source.trigger'), '')) VIRTUAL`,
		`CREATE INDEX runs_tenant_branch_ord ON runs (tenant, branch, ord)`,
		`CREATE INDEX runs_tenant_pr_ord ON runs (tenant, pr, ord)`,
		`CREATE INDEX runs_tenant_trigger_ord ON runs (tenant, trigger_kind, ord)`,
		`CREATE INDEX members_flaky ON members (run_id) WHERE json_extract(body, '$.flaky') = 1`,
	},
	// 8 (console): the run page's strip of each case's last outcomes reads
	// one case at a time, newest first (engine.OutcomeReader).
	{
		`CREATE INDEX history_tenant_project_case_finished ON history (tenant, project, case_id, finished_at)`,
	},
	// 9: each project's latest coverage summary (docs/coverage.md, "On the
	// server"; sqlitestore/coverage.go): one row per tenant and project, the
	// record as JSON; received_at decides which of two writes is the latest.
	{
		`CREATE TABLE coverage (
			tenant      TEXT   NOT NULL,
			project     TEXT   NOT NULL,
			received_at BIGINT NOT NULL,
			body        TEXT   NOT NULL,
			PRIMARY KEY (tenant, project)
		)`,
	},
}

// migrate brings the schema to the latest version in one transaction (DDL is
// transactional in SQLite and PostgreSQL), so two processes opening the same
// new file do not both create it and a failed migration leaves nothing half done.
func migrate(ctx context.Context, db *sql.DB, path string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("starting the schema migration of %s: %w", path, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("creating schema_version in %s: %w", path, err)
	}
	var version int
	switch err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&version); {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return fmt.Errorf("initialising schema_version in %s: %w", path, err)
		}
	case err != nil:
		return fmt.Errorf("reading the schema version of %s: %w", path, err)
	}
	if version > len(migrations) {
		return fmt.Errorf("%s has schema version %d but this zof knows only up to %d: it was written by a newer zof; upgrade zof or point --data at another directory", path, version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		for _, stmt := range migrations[v] {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migrating %s to schema version %d: %w", path, v+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, v+1); err != nil {
			return fmt.Errorf("recording schema version %d in %s: %w", v+1, path, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing the schema migration of %s: %w", path, err)
	}
	return nil
}
