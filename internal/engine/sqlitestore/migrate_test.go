package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
)

// Migrating an up-to-date database is a no-op, and the recorded version is
// the number of migrations.
func TestMigrateIsIdempotent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "zof.db")
	db, err := sql.Open(DriverName, path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for range 2 {
		if err := migrate(ctx, db, path); err != nil {
			t.Fatal(err)
		}
	}
	var v, rows int
	if err := db.QueryRow(`SELECT version, (SELECT COUNT(*) FROM schema_version) FROM schema_version`).Scan(&v, &rows); err != nil {
		t.Fatal(err)
	}
	if v != len(migrations) || rows != 1 {
		t.Errorf("schema_version = %d in %d rows, want %d in 1", v, rows, len(migrations))
	}
}

// A database written before members had their own rows (schema version 2,
// the whole snapshot in runs.snapshot) migrates to the per-member shape:
// every run reads back exactly as it was stored, and appends continue it.
func TestMigrateSplitsSnapshotsIntoMembers(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "zof.db")
	db, err := sql.Open(DriverName, path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{`CREATE TABLE schema_version (version BIGINT NOT NULL)`, `INSERT INTO schema_version (version) VALUES (2)`}
	stmts = append(stmts, migrations[0]...)
	stmts = append(stmts, migrations[1]...)
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	// Two runs as version 2 stored them: a running one and a finished one.
	var want []*api.Run
	for i, id := range []string{"r1", "r2"} {
		rec, first := storetest.NewRun("t", id, storetest.Request("shop", "staging"))
		snap := rec.Run
		evs := []api.Event{first}
		for _, ev := range []api.Event{
			{Type: api.EventRunStatus, Status: api.StatusRunning},
			{Type: api.EventMemberStatus, Member: "b", Status: api.StatusRunning, Attempt: 1},
			{Type: api.EventStepStatus, Member: "b", Step: 1, StepStatus: api.StepFailed, Failure: &api.Failure{Message: "boom"}},
		} {
			ev.Seq, ev.RunID, ev.At = snap.LastSeq+1, id, storetest.T0
			if err := snap.Apply(ev); err != nil {
				t.Fatal(err)
			}
			evs = append(evs, ev)
		}
		whole, _ := json.Marshal(snap)
		req, _ := json.Marshal(rec.Request)
		if _, err := db.Exec(`INSERT INTO runs (id, tenant, ord, status, project, environment, created_at, last_seq, snapshot, request) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, "t", i+1, string(snap.Status), snap.Project, snap.Environment, snap.CreatedAt.UnixNano(), snap.LastSeq, string(whole), string(req)); err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			body, _ := json.Marshal(ev)
			if _, err := db.Exec(`INSERT INTO events (run_id, seq, body) VALUES (?, ?, ?)`, id, ev.Seq, string(body)); err != nil {
				t.Fatal(err)
			}
		}
		want = append(want, snap)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("Open (migrating from version 2): %v", err)
	}
	defer s.Close()
	for _, w := range want {
		rec, err := s.GetRun(ctx, "t", w.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(w, rec.Run); diff != "" {
			t.Errorf("%s after the migration (-before +after):\n%s", w.ID, diff)
		}
	}
	var heads int
	if err := s.reader.QueryRow(`SELECT COUNT(*) FROM runs WHERE json_extract(snapshot, '$.members') IS NOT NULL OR json_extract(snapshot, '$.selection') IS NOT NULL`).Scan(&heads); err != nil {
		t.Fatal(err)
	}
	if heads != 0 {
		t.Errorf("%d runs still hold their members or selection in runs.snapshot", heads)
	}
	// The migrated run goes on: an append changes member a only.
	next := want[0].Clone()
	ev := api.Event{Seq: next.LastSeq + 1, At: storetest.T0, Type: api.EventMemberStatus, RunID: "r1", Member: "a", Status: api.StatusRunning, Attempt: 1}
	if err := next.Apply(ev); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, storetest.AppendOf("r1", next, []api.Event{ev})); err != nil {
		t.Fatal(err)
	}
	rec, err := s.GetRun(ctx, "t", "r1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(next, rec.Run); diff != "" {
		t.Errorf("r1 after an append (-want +got):\n%s", diff)
	}
}
