package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/sqlitestore"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
	"github.com/zof-ai/zof-ci/internal/step"
)

// open opens a store on a new file in t.TempDir, closed when the test ends.
func open(t testing.TB) *sqlitestore.Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "data", "zof.db"))
}

func openAt(t testing.TB, path string) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) engine.Store { return open(t) })
}

// TestClusterConformance: SQLite is one process per data directory; the
// suite says so by skipping on the missing capability.
func TestClusterConformance(t *testing.T) {
	storetest.RunCluster(t, func(t *testing.T) engine.Store { return open(t) })
}

func TestReopenKeepsRunsEventsKeysAndOrder(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "zof.db")
	s := openAt(t, path)
	var created []*engine.RunRecord
	for i, id := range []string{"r1", "r2", "r3", "r4"} {
		rec, first := storetest.NewRun("t", id, storetest.Request("shop", "staging"))
		idem := &engine.IdempotencyRecord{Tenant: "t", Key: "key-" + id, Fingerprint: "fp", RunID: id,
			CreatedAt: storetest.T0.Add(time.Duration(i) * time.Second), ExpiresAt: storetest.T0.Add(engine.IdempotencyTTL)}
		if h, err := s.CreateRun(ctx, rec, first, idem); err != nil || h != nil {
			t.Fatalf("CreateRun %s: %v %v", id, h, err)
		}
		created = append(created, rec)
	}
	mustAppend := func(id string, evs ...api.Event) {
		t.Helper()
		if _, err := storetest.AppendEvents(s, "t", id, evs...); err != nil {
			t.Fatal(err)
		}
	}
	mustAppend("r1", api.Event{Type: api.EventRunStatus, Status: api.StatusRunning},
		api.Event{Type: api.EventMemberStatus, Member: "a", Status: api.StatusRunning, Attempt: 1},
		api.Event{Type: api.EventStepStatus, Member: "a", Step: 1, StepStatus: api.StepPassed, Output: "ok"})
	mustAppend("r2", api.Event{Type: api.EventMemberStatus, Member: "a", Status: api.StatusCancelled},
		api.Event{Type: api.EventMemberStatus, Member: "b", Status: api.StatusCancelled},
		api.Event{Type: api.EventRunStatus, Status: api.StatusCancelled})
	mustAppend("r3", api.Event{Type: api.EventRunStatus, Status: api.StatusQueued},
		api.Event{Type: api.EventRunSubstate, Substate: api.SubstateQueuePosition, Position: 1})

	type state struct {
		Runs        []*engine.RunRecord
		Events      map[string][]api.Event
		NonTerminal []string
	}
	read := func(s *sqlitestore.Store) state {
		t.Helper()
		st := state{Events: map[string][]api.Event{}}
		for _, r := range created {
			rec, err := s.GetRun(ctx, "t", r.Run.ID)
			if err != nil {
				t.Fatal(err)
			}
			st.Runs = append(st.Runs, rec)
			if st.Events[r.Run.ID], err = s.Events(ctx, r.Run.ID, 0, 0); err != nil {
				t.Fatal(err)
			}
		}
		recs, err := s.NonTerminal(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			st.NonTerminal = append(st.NonTerminal, r.Run.ID)
		}
		return st
	}
	before := read(s)
	if diff := cmp.Diff([]string{"r1", "r3", "r4"}, before.NonTerminal); diff != "" {
		t.Fatalf("NonTerminal before (-want +got):\n%s", diff)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openAt(t, path)
	if diff := cmp.Diff(before, read(s2)); diff != "" {
		t.Errorf("after reopening (-before +after):\n%s", diff)
	}
	// Keys survive: a replay finds its holder.
	rec, first := storetest.NewRun("t", "r9", storetest.Request("shop", "staging"))
	h, err := s2.CreateRun(ctx, rec, first, &engine.IdempotencyRecord{Tenant: "t", Key: "key-r3", Fingerprint: "fp", RunID: "r9",
		CreatedAt: storetest.T0.Add(time.Hour), ExpiresAt: storetest.T0.Add(time.Hour + engine.IdempotencyTTL)})
	if err != nil || h == nil || h.RunID != "r3" {
		t.Fatalf("replay after reopening: holder %+v err %v, want r3", h, err)
	}
	// New runs go after the old ones.
	r5 := storetest.Create(t, s2, "t", "r5")
	if r5.Order <= created[3].Order {
		t.Errorf("new run's order %d is not after the last stored one %d", r5.Order, created[3].Order)
	}
	if _, err := storetest.AppendEvents(s2, "t", "r1", api.Event{Type: api.EventLog, Message: "after restart"}); err != nil {
		t.Errorf("appending after reopening: %v", err)
	}
}

func TestOpenCreatesAPrivateWALDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "zof.db")
	s := openAt(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("database file mode %v, want 0600 (it holds run secrets)", perm)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open(sqlitestore.DriverName, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q (%v), want wal", mode, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(context.Background()); err == nil {
		t.Error("Ping after Close succeeded")
	}
}

func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	newer := filepath.Join(dir, "newer.db")
	s := openAt(t, newer)
	_ = s.Close()
	db, err := sql.Open(sqlitestore.DriverName, newer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE schema_version SET version = 99`); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
	}{
		{"written by a newer zof", newer, "upgrade zof"},
		{"no path", "", "no database path"},
		{"query characters", filepath.Join(dir, "x?mode=ro"), "contains '?'"},
		{"parent is a file", filepath.Join(blocker, "zof.db"), "creating the data directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := sqlitestore.Open(context.Background(), tt.path, sqlitestore.Options{})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open: %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	for i, id := range []string{"old", "edge", "fresh"} {
		rec, first := storetest.NewRun("t", id, storetest.Request("shop", "staging"))
		created := storetest.T0.Add(time.Duration(i) * time.Hour)
		if _, err := s.CreateRun(ctx, rec, first, &engine.IdempotencyRecord{Tenant: "t", Key: id, Fingerprint: "fp", RunID: id,
			CreatedAt: created, ExpiresAt: created.Add(engine.IdempotencyTTL)}); err != nil {
			t.Fatal(err)
		}
	}
	// "edge" expires exactly now: gone; "fresh" an hour later: kept.
	now := storetest.T0.Add(time.Hour + engine.IdempotencyTTL)
	n, err := s.Prune(ctx, now)
	if err != nil || n != 2 {
		t.Fatalf("Prune = %d, %v; want 2 keys", n, err)
	}
	if n, err := s.Prune(ctx, now); err != nil || n != 0 {
		t.Errorf("second Prune = %d, %v; want 0", n, err)
	}
	for id, kept := range map[string]bool{"old": false, "edge": false, "fresh": true} {
		rec, first := storetest.NewRun("t", "new-"+id, storetest.Request("shop", "staging"))
		// A create dated before every expiry: only a pruned key lets it through.
		h, err := s.CreateRun(ctx, rec, first, &engine.IdempotencyRecord{Tenant: "t", Key: id, Fingerprint: "fp", RunID: "new-" + id,
			CreatedAt: storetest.T0, ExpiresAt: storetest.T0.Add(engine.IdempotencyTTL)})
		if err != nil {
			t.Fatal(err)
		}
		if (h != nil) != kept {
			t.Errorf("key %s: holder %+v, want kept=%v", id, h, kept)
		}
		if _, err := s.GetRun(ctx, "t", id); err != nil {
			t.Errorf("Prune deleted run %s: %v", id, err)
		}
	}
}

// TestEngineConcurrentIdenticalCreates: the race end to end — 200
// identical engine.Create calls with one Idempotency-Key on a SQLite file
// make one run; every other caller is told it is a replay of that run.
func TestEngineConcurrentIdenticalCreates(t *testing.T) {
	e, err := engine.New(engine.Config{Store: open(t), Steps: noSteps{}})
	if err != nil {
		t.Fatal(err)
	}
	const n = storetest.ConcurrentCreates
	ids := make([]string, n)
	replays := make([]bool, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			r, replayed, err := e.Create(context.Background(), "t", storetest.Request("shop", "staging"), engine.CreateOptions{IdempotencyKey: "ci-run-42"})
			if err == nil {
				ids[i], replays[i] = r.ID, replayed
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	fresh := 0
	for i := range n {
		if !replays[i] {
			fresh++
		}
		if ids[i] != ids[0] {
			t.Fatalf("create %d got run %s, create 0 got %s", i, ids[i], ids[0])
		}
	}
	if fresh != 1 {
		t.Fatalf("%d creates were not replays, want exactly 1", fresh)
	}
	runs, _, err := e.List(context.Background(), "t", engine.ListFilter{})
	if err != nil || len(runs) != 1 {
		t.Fatalf("List: %d runs (err %v), want 1", len(runs), err)
	}
}

type noSteps struct{}

func (noSteps) Run(context.Context, api.Step, step.Input) step.Output {
	return step.Output{Status: api.StepPassed}
}
