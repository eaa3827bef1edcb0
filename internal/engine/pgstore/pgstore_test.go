package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/pgstore"
	"github.com/zof-ai/zof-ci/internal/engine/pgstore/pgtest"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
	"github.com/zof-ai/zof-ci/internal/trigger"
)

// openAt opens a store on url, closed when the test ends.
func openAt(t testing.TB, url string) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// open opens a store on a fresh schema.
func open(t testing.TB) *pgstore.Store {
	t.Helper()
	return openAt(t, pgtest.URL(t))
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) engine.Store { return open(t) })
}

func TestTriggerConformance(t *testing.T) {
	storetest.RunTriggers(t, func(t *testing.T) trigger.Store { return open(t) })
}

// TestConcurrentOpensMigrateOnce: replicas starting at once on a fresh
// database all open it, and the schema is created once (the advisory lock
// serialises them; without it, concurrent CREATE TABLEs fail).
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	url := pgtest.URL(t)
	const n = 8
	errs := make([]error, n)
	stores := make([]*pgstore.Store, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = pgstore.Open(context.Background(), url, pgstore.Options{MaxConns: 2})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var rows, version int
	if err := conn.QueryRow(context.Background(), `SELECT count(*), max(version) FROM schema_version`).Scan(&rows, &version); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || version != pgstore.SchemaVersion {
		t.Fatalf("schema_version has %d rows, version %d; want 1 row at %d", rows, version, pgstore.SchemaVersion)
	}
	// Every store works on the one schema.
	storetest.Create(t, stores[0], "t", "r1")
	if _, err := stores[n-1].GetRun(context.Background(), "t", "r1"); err != nil {
		t.Fatal(err)
	}
}

// TestNewerSchemaRefused: a database migrated by a newer zof is not touched.
func TestNewerSchemaRefused(t *testing.T) {
	url := pgtest.URL(t)
	s := openAt(t, url)
	_ = s.Close()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	newer := pgstore.SchemaVersion + 5
	if _, err := conn.Exec(context.Background(), `UPDATE schema_version SET version = $1`, newer); err != nil {
		t.Fatal(err)
	}
	_, err = pgstore.Open(context.Background(), url, pgstore.Options{})
	if !errors.Is(err, pgstore.ErrSchemaTooNew) {
		t.Fatalf("open: %v, want ErrSchemaTooNew", err)
	}
	for _, want := range []string{fmt.Sprintf("schema version %d", newer), fmt.Sprintf("only up to %d", pgstore.SchemaVersion), "upgrade zof"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestIdempotentCreatesAcrossPools: concurrent creates with one key through
// separate pools (as separate replicas would) make exactly one run; every
// other create gets that run as its holder.
func TestIdempotentCreatesAcrossPools(t *testing.T) {
	url := pgtest.URL(t)
	const replicas, perReplica = 3, 20
	stores := make([]*pgstore.Store, replicas)
	for i := range stores {
		stores[i] = openAt(t, url)
	}
	storetest.IdenticalCreates(t, replicas*perReplica, func(i int) engine.Store { return stores[i%replicas] })
}

// TestPruneDropsExpiredKeysOnly: Prune removes expired keys, keeps the runs.
func TestPruneDropsExpiredKeysOnly(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	for i, id := range []string{"r1", "r2"} {
		rec, first := storetest.NewRun("t", id, storetest.Request("shop", "staging"))
		created := storetest.T0.Add(time.Duration(i) * time.Hour)
		idem := &engine.IdempotencyRecord{Tenant: "t", Key: id, Fingerprint: "fp", RunID: id, CreatedAt: created, ExpiresAt: created.Add(engine.IdempotencyTTL)}
		if h, err := s.CreateRun(ctx, rec, first, idem); err != nil || h != nil {
			t.Fatalf("create %s: %v %v", id, h, err)
		}
	}
	n, err := s.Prune(ctx, storetest.T0.Add(engine.IdempotencyTTL+time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("prune: %d %v, want 1", n, err)
	}
	if _, err := s.GetRun(ctx, "t", "r1"); err != nil {
		t.Fatalf("the run of a pruned key is gone: %v", err)
	}
}

// TestNULInOutputRoundTrips: step output may hold NUL bytes, which JSON
// escapes as \u0000 and a JSONB column would refuse; the store keeps them.
func TestNULInOutputRoundTrips(t *testing.T) {
	s := open(t)
	storetest.Create(t, s, "t", "r1")
	out := "before\x00after"
	if _, err := storetest.AppendEvents(s, "t", "r1",
		api.Event{Type: api.EventMemberStatus, Member: "a", Status: api.StatusRunning, Attempt: 1},
		api.Event{Type: api.EventStepStatus, Member: "a", Step: 1, StepStatus: api.StepFailed, Output: out}); err != nil {
		t.Fatal(err)
	}
	evs, err := s.Events(context.Background(), "r1", 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Output != out {
		t.Fatalf("events %+v, want the output %q back", evs, out)
	}
}

// TestTriggerDedupeAcrossPools: one webhook delivery received by several
// replicas at once is stored once; every other create gets it as holder.
func TestTriggerDedupeAcrossPools(t *testing.T) {
	url := pgtest.URL(t)
	const replicas, perReplica = 3, 10
	stores := make([]*pgstore.Store, replicas)
	for i := range stores {
		stores[i] = openAt(t, url)
	}
	n := replicas * perReplica
	holders := make([]*trigger.Record, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			rec := storetest.NewTrigger("t", fmt.Sprintf("trg_%d", i), "delivery-1", storetest.T0)
			<-start
			holders[i], errs[i] = stores[i%replicas].CreateTrigger(context.Background(), rec)
		})
	}
	close(start)
	wg.Wait()
	owner := ""
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("create %d: %v", i, errs[i])
		}
		if holders[i] == nil {
			if owner != "" {
				t.Fatalf("trg_%d and %s both stored", i, owner)
			}
			owner = fmt.Sprintf("trg_%d", i)
		}
	}
	for i, h := range holders {
		if h != nil && h.ID != owner {
			t.Fatalf("create %d got holder %s, want %s", i, h.ID, owner)
		}
	}
	got, _, err := stores[0].ListTriggers(context.Background(), "t", trigger.Filter{})
	if err != nil || len(got) != 1 || got[0].ID != owner {
		t.Fatalf("stored triggers %v (err %v), want exactly %s", got, err, owner)
	}
}

// TestIdleTransactionsEnd: the store's connections end a transaction its
// client left idle (a paused replica holding row locks) after 10 s, unless
// the database URL says otherwise.
func TestIdleTransactionsEnd(t *testing.T) {
	url := pgtest.URL(t)
	for _, tc := range []struct{ name, url, want string }{
		{"default", url, "10s"},
		{"the URL's own value", url + "&idle_in_transaction_session_timeout=2500", "2500ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openAt(t, tc.url)
			got, err := s.Setting(context.Background(), "idle_in_transaction_session_timeout")
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("idle_in_transaction_session_timeout = %q, want %q", got, tc.want)
			}
		})
	}
}
