package pgstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/historysql"
	"github.com/zof-ai/zof-ci/internal/engine/historytest"
	"github.com/zof-ai/zof-ci/internal/engine/pgstore"
	"github.com/zof-ai/zof-ci/internal/engine/pgstore/pgtest"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
)

func TestHistoryConformance(t *testing.T) {
	storetest.RunHistory(t, func(t *testing.T) engine.Store { return open(t) })
}

// TestHistoryAfterUpgrade: a database created before history (schema 1),
// with a run in flight, is migrated on open, and that run's end is recorded.
func TestHistoryAfterUpgrade(t *testing.T) {
	url := pgtest.URL(t)
	old, err := pgstore.OpenAtVersion(context.Background(), url, 1)
	if err != nil {
		t.Fatal(err)
	}
	storetest.Create(t, old, "t1", "r1")
	_ = old.Close()

	s := openAt(t, url)
	at := storetest.T0.Add(time.Hour)
	storetest.Finish(t, s, "t1", "r1", at, false)
	got, err := s.History(context.Background(), "t1", engine.HistoryFilter{Project: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	var cases []string
	for _, r := range got {
		cases = append(cases, r.RunID+"/"+r.Case+"/"+string(r.Status))
	}
	if want := []string{"r1/a/passed", "r1/b/failed"}; !slices.Equal(cases, want) {
		t.Fatalf("history after the upgrade = %v, want %v", cases, want)
	}
}

// BenchmarkTerminalAppend: the append that ends a run whose members have
// all passed, where the store records their history in the same
// transaction (read the members, insert one row each). Its cost grows with
// the run's members, once per run; every other append pays nothing.
func BenchmarkTerminalAppend(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{10, 100, 500} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			s := open(b)
			req := storetest.Request("shop", "staging")
			req.Cases = nil
			for i := range n {
				req.Cases = append(req.Cases, api.Case{ID: fmt.Sprintf("c%d", i), Steps: []api.Step{{Name: "s", Run: &api.Command{Command: "true"}}}})
			}
			at := storetest.T0.Add(time.Hour)
			runs := 0
			for b.Loop() {
				b.StopTimer()
				runs++
				id := fmt.Sprintf("r%d", runs)
				rec, first := storetest.NewRun("t", id, req)
				if _, err := s.CreateRun(ctx, rec, first, nil); err != nil {
					b.Fatal(err)
				}
				evs := []api.Event{{Type: api.EventRunStatus, Status: api.StatusRunning, At: at}}
				for i := range n {
					evs = append(evs,
						api.Event{Type: api.EventMemberStatus, Member: fmt.Sprintf("c%d", i), Status: api.StatusRunning, Attempt: 1, At: at},
						api.Event{Type: api.EventMemberStatus, Member: fmt.Sprintf("c%d", i), Status: api.StatusPassed, At: at.Add(time.Second)})
				}
				snap, err := storetest.AppendEvents(s, "t", id, evs...)
				if err != nil {
					b.Fatal(err)
				}
				end := api.Event{Seq: snap.LastSeq + 1, RunID: id, Type: api.EventRunStatus, Status: api.StatusPassed, At: at.Add(2 * time.Second)}
				if err := snap.Apply(end); err != nil {
					b.Fatal(err)
				}
				a := storetest.AppendOf(id, snap, []api.Event{end})
				b.StartTimer()
				if err := s.Append(ctx, a); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			recs, err := s.History(ctx, "t", engine.HistoryFilter{Project: "shop"})
			if err != nil {
				b.Fatal(err)
			}
			if len(recs) != runs*n {
				b.Fatalf("%d history records after %d runs of %d members", len(recs), runs, n)
			}
		})
	}
}

func TestHealthSummaryConformance(t *testing.T) {
	historytest.Run(t, func(t *testing.T) engine.Store { return open(t) })
}

// TestHealthSummaryBackfill: summaries rebuilt from history by the
// migration's back-fill equal those kept run by run.
func TestHealthSummaryBackfill(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	s := openAt(t, url)
	now := historytest.Fill(t, s)
	fs := historytest.Filters(now)
	kept := historytest.Summaries(t, s, "t1", fs)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range append([]string{`DELETE FROM history_totals`, `DELETE FROM history_last`}, historysql.Backfill(historysql.Postgres)...) {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%v:\n%s", err, q)
		}
	}
	if d := cmp.Diff(kept, historytest.Summaries(t, s, "t1", fs)); d != "" {
		t.Fatalf("back-filled summaries (-kept run by run +back-filled):\n%s", d)
	}
}

func TestShadowHistory(t *testing.T) {
	historytest.RunShadow(t, func(t *testing.T) engine.Store { return open(t) })
}
