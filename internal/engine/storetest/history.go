package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

// RunHistory is the conformance suite of engine.HistoryStore: open returns a
// new, empty store that implements both interfaces.
func RunHistory(t *testing.T, open func(t *testing.T) engine.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s engine.Store, h engine.HistoryStore)
	}{
		{"RecordedWhenTerminal", testHistoryRecorded},
		{"FiltersAndTenants", testHistoryFilters},
		{"Prune", testHistoryPrune},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			h, ok := s.(engine.HistoryStore)
			if !ok {
				t.Fatalf("%T does not implement engine.HistoryStore", s)
			}
			tt.fn(t, s, h)
		})
	}
}

// Finish drives run id of Request to its end at `at`: a passes, b fails
// (or passes on its second attempt when flaky), and the run is failed or passed.
func Finish(t testing.TB, s engine.Store, tenant, id string, at time.Time, flaky bool) {
	t.Helper()
	bStatus, runStatus := api.StatusFailed, api.StatusFailed
	if flaky {
		bStatus, runStatus = api.StatusPassed, api.StatusPassed
	}
	evs := []api.Event{
		{Type: api.EventRunStatus, Status: api.StatusRunning, At: at.Add(-10 * time.Second)},
		{Type: api.EventMemberStatus, Member: "a", Status: api.StatusRunning, Attempt: 1, At: at.Add(-10 * time.Second)},
		{Type: api.EventMemberStatus, Member: "a", Status: api.StatusPassed, At: at.Add(-7 * time.Second)},
		{Type: api.EventMemberStatus, Member: "b", Status: api.StatusRunning, Attempt: 1, At: at.Add(-5 * time.Second)},
	}
	if flaky {
		evs = append(evs, api.Event{Type: api.EventMemberStatus, Member: "b", Status: api.StatusRunning, Attempt: 2, At: at.Add(-3 * time.Second)})
	}
	evs = append(evs,
		api.Event{Type: api.EventMemberStatus, Member: "b", Status: bStatus, Flaky: flaky, At: at.Add(-time.Second)},
		api.Event{Type: api.EventRunStatus, Status: runStatus, At: at},
	)
	if _, err := AppendEvents(s, tenant, id, evs...); err != nil {
		t.Fatalf("finishing run %s: %v", id, err)
	}
}

func history(t *testing.T, h engine.HistoryStore, tenant string, f engine.HistoryFilter) []engine.HistoryRecord {
	t.Helper()
	rs, err := h.History(context.Background(), tenant, f)
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	return rs
}

func testHistoryRecorded(t *testing.T, s engine.Store, h engine.HistoryStore) {
	rec := Create(t, s, "t1", "r1")
	_ = rec
	// Running is not terminal: nothing is recorded yet.
	mustAppend(t, s, "t1", "r1", api.Event{Type: api.EventRunStatus, Status: api.StatusRunning})
	if got := history(t, h, "t1", engine.HistoryFilter{Project: "shop"}); len(got) != 0 {
		t.Fatalf("history of an unfinished run: %+v", got)
	}
	at := T0.Add(time.Hour)
	evs := []api.Event{
		{Type: api.EventMemberStatus, Member: "a", Status: api.StatusRunning, Attempt: 1, At: at.Add(-10 * time.Second)},
		{Type: api.EventMemberStatus, Member: "a", Status: api.StatusPassed, At: at.Add(-7 * time.Second)},
		{Type: api.EventMemberStatus, Member: "b", Status: api.StatusRunning, Attempt: 1, At: at.Add(-5 * time.Second)},
		{Type: api.EventMemberStatus, Member: "b", Status: api.StatusRunning, Attempt: 2, At: at.Add(-3 * time.Second)},
		{Type: api.EventMemberStatus, Member: "b", Status: api.StatusPassed, Flaky: true, At: at.Add(-time.Second)},
		{Type: api.EventRunStatus, Status: api.StatusPassed, At: at},
	}
	if _, err := AppendEvents(s, "t1", "r1", evs...); err != nil {
		t.Fatal(err)
	}
	want := []engine.HistoryRecord{
		{Tenant: "t1", Project: "shop", Environment: "staging", Case: "a", Status: api.StatusPassed, Attempts: 1, Duration: 3 * time.Second, RunID: "r1", FinishedAt: at.Add(-7 * time.Second)},
		{Tenant: "t1", Project: "shop", Environment: "staging", Case: "b", Status: api.StatusPassed, Attempts: 2, Flaky: true, Duration: 4 * time.Second, RunID: "r1", FinishedAt: at.Add(-time.Second)},
	}
	got := history(t, h, "t1", engine.HistoryFilter{Project: "shop"})
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("history (-want +got):\n%s", d)
	}
	// A run that ends cancelled records only members that passed or failed.
	Create(t, s, "t1", "r2")
	mustAppend(t, s, "t1", "r2", ended()...)
	if got := history(t, h, "t1", engine.HistoryFilter{Project: "shop"}); len(got) != 2 {
		t.Fatalf("a cancelled run's members were recorded: %+v", got)
	}
}

func testHistoryFilters(t *testing.T, s engine.Store, h engine.HistoryStore) {
	CreateIn(t, s, "t1", "old", "shop", "staging")
	Finish(t, s, "t1", "old", T0.Add(time.Hour), false)
	CreateIn(t, s, "t1", "new", "shop", "prod")
	Finish(t, s, "t1", "new", T0.Add(48*time.Hour), true)
	CreateIn(t, s, "t1", "other", "blog", "staging")
	Finish(t, s, "t1", "other", T0.Add(2*time.Hour), false)
	CreateIn(t, s, "t2", "theirs", "shop", "staging")
	Finish(t, s, "t2", "theirs", T0.Add(3*time.Hour), false)

	runs := func(rs []engine.HistoryRecord) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.RunID+"/"+r.Case+"/"+string(r.Status))
		}
		return out
	}
	for _, tt := range []struct {
		name   string
		tenant string
		f      engine.HistoryFilter
		want   []string
	}{
		{"project, oldest first", "t1", engine.HistoryFilter{Project: "shop"}, []string{"old/a/passed", "old/b/failed", "new/a/passed", "new/b/passed"}},
		{"environment", "t1", engine.HistoryFilter{Project: "shop", Environment: "prod"}, []string{"new/a/passed", "new/b/passed"}},
		{"since", "t1", engine.HistoryFilter{Project: "shop", Since: T0.Add(24 * time.Hour)}, []string{"new/a/passed", "new/b/passed"}},
		{"other tenant", "t2", engine.HistoryFilter{Project: "shop"}, []string{"theirs/a/passed", "theirs/b/failed"}},
		{"unknown project", "t1", engine.HistoryFilter{Project: "nope"}, nil},
	} {
		if d := cmp.Diff(tt.want, runs(history(t, h, tt.tenant, tt.f))); d != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, d)
		}
	}
}

func testHistoryPrune(t *testing.T, s engine.Store, h engine.HistoryStore) {
	CreateIn(t, s, "t1", "old", "shop", "staging")
	Finish(t, s, "t1", "old", T0.Add(time.Hour), false)
	CreateIn(t, s, "t2", "new", "shop", "staging")
	Finish(t, s, "t2", "new", T0.Add(48*time.Hour), false)
	n, err := h.PruneHistory(context.Background(), T0.Add(24*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("PruneHistory = %d, %v; want 2 records of run old", n, err)
	}
	if got := history(t, h, "t1", engine.HistoryFilter{Project: "shop"}); len(got) != 0 {
		t.Fatalf("pruned records remain: %+v", got)
	}
	if got := history(t, h, "t2", engine.HistoryFilter{Project: "shop"}); len(got) != 2 {
		t.Fatalf("newer records were pruned: %+v", got)
	}
}
