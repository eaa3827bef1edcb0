package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

// RunConsole checks what the web console needs of a store beyond Run:
// engine.Deleter, and the list filters by branch, pull request, trigger and
// flaky members.
func RunConsole(t *testing.T, open func(t *testing.T) engine.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s engine.Store)
	}{
		{"DeleteTerminalOnly", testDelete},
		{"DeleteKeepsHistory", testDeleteKeepsHistory},
		{"ListBySourceAndFlaky", testListBySource},
		{"RecentOutcomes", testRecentOutcomes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

func deleter(t *testing.T, s engine.Store) engine.Deleter {
	t.Helper()
	d, ok := s.(engine.Deleter)
	if !ok {
		t.Fatalf("%T does not implement engine.Deleter", s)
	}
	return d
}

func testDelete(t *testing.T, s engine.Store) {
	ctx := context.Background()
	d := deleter(t, s)
	keyed, first := NewRun("t", "keyed", Request("shop", "staging"))
	if _, err := s.CreateRun(ctx, keyed, first, key("t", "k1", "fp", "keyed", T0)); err != nil {
		t.Fatal(err)
	}
	Create(t, s, "t", "active")
	Create(t, s, "u", "theirs")
	mustAppend(t, s, "t", "keyed", ended()...)
	mustAppend(t, s, "u", "theirs", ended()...)

	tests := []struct {
		tenant, id string
		want       error
	}{
		{"t", "active", engine.ErrNotTerminal},
		{"t", "theirs", engine.ErrNotFound},
		{"t", "missing", engine.ErrNotFound},
		{"t", "keyed", nil},
		{"t", "keyed", engine.ErrNotFound}, // already gone
	}
	for _, tt := range tests {
		err := d.DeleteRun(ctx, tt.tenant, tt.id)
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("DeleteRun(%s, %s) = %v, want %v", tt.tenant, tt.id, err, tt.want)
		}
	}
	if _, err := s.GetRun(ctx, "t", "keyed"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("GetRun of a deleted run: %v, want ErrNotFound", err)
	}
	if evs, err := s.Events(ctx, "keyed", 0, 0); len(evs) != 0 || !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Events of a deleted run: %d events, %v; want none and ErrNotFound", len(evs), err)
	}
	runs, _, err := s.ListRuns(ctx, "t", engine.ListFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(runs); len(got) != 1 || got[0] != "active" {
		t.Errorf("ListRuns after delete = %v, want [active]", got)
	}
	for _, tenant := range []string{"t", "u"} {
		if _, err := s.GetRun(ctx, tenant, map[string]string{"t": "active", "u": "theirs"}[tenant]); err != nil {
			t.Errorf("a run that was not deleted is gone: %v", err)
		}
	}
	// The idempotency key went with its run: the same key creates a new run.
	again, first := NewRun("t", "keyed2", Request("shop", "staging"))
	holder, err := s.CreateRun(ctx, again, first, key("t", "k1", "fp", "keyed2", T0.Add(time.Second)))
	if err != nil || holder != nil {
		t.Errorf("create with the deleted run's key: holder %+v, err %v; want a new run", holder, err)
	}
}

func testDeleteKeepsHistory(t *testing.T, s engine.Store) {
	ctx := context.Background()
	h, ok := s.(engine.HistoryStore)
	if !ok {
		t.Fatalf("%T does not implement engine.HistoryStore", s)
	}
	Create(t, s, "t", "r1")
	Finish(t, s, "t", "r1", T0.Add(time.Hour), false)
	if err := deleter(t, s).DeleteRun(ctx, "t", "r1"); err != nil {
		t.Fatal(err)
	}
	recs, err := h.History(ctx, "t", engine.HistoryFilter{Project: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Errorf("history after deleting its run: %d records, want 2 (a and b)", len(recs))
	}
}

func testListBySource(t *testing.T, s engine.Store) {
	ctx := context.Background()
	create := func(tenant, id, ref string, pr int, trigger string) {
		req := Request("shop", "staging")
		req.Source = api.Source{Provider: "github", Repo: "o/r", Ref: ref, PR: pr, Trigger: trigger}
		rec, first := NewRun(tenant, id, req)
		if _, err := s.CreateRun(ctx, rec, first, nil); err != nil {
			t.Fatal(err)
		}
	}
	create("t", "r1", "main", 0, "ci")
	create("t", "r2", "feature/x", 7, "webhook")
	create("t", "r3", "main", 0, "schedule")
	create("t", "r4", "main", 0, "ci")
	create("u", "theirs", "main", 7, "ci")
	// A NUL in a reason (JSON \u0000) must not break the append or the filters.
	if _, err := AppendEvents(s, "t", "r1",
		api.Event{Type: api.EventRunStatus, Status: api.StatusRunning, Reason: "nul\x00here"},
		api.Event{Type: api.EventMemberStatus, Member: "a", Status: api.StatusRunning, Attempt: 1, Reason: "nul\x00here"}); err != nil {
		t.Fatalf("append with a NUL: %v", err)
	}
	Finish(t, s, "t", "r3", T0.Add(time.Hour), true)
	Finish(t, s, "t", "r4", T0.Add(time.Hour), false)
	Finish(t, s, "u", "theirs", T0.Add(time.Hour), true)

	failed := []api.Status{api.StatusFailed, api.StatusBlocked}
	tests := []struct {
		name string
		f    engine.ListFilter
		want [][]string
	}{
		{"branch", engine.ListFilter{Branch: "main"}, [][]string{{"r4", "r3", "r1"}}},
		{"branch, paged", engine.ListFilter{Branch: "main", Limit: 2}, [][]string{{"r4", "r3"}, {"r1"}}},
		{"pull request", engine.ListFilter{PR: 7}, [][]string{{"r2"}}},
		{"trigger", engine.ListFilter{Trigger: "ci"}, [][]string{{"r4", "r1"}}},
		{"flaky only", engine.ListFilter{Flaky: true}, [][]string{{"r3"}}},
		{"flaky and branch", engine.ListFilter{Flaky: true, Branch: "main", Limit: 1}, [][]string{{"r3"}}},
		{"failed only on a branch", engine.ListFilter{Statuses: failed, Branch: "main"}, [][]string{{"r4"}}},
		{"branch and trigger", engine.ListFilter{Branch: "main", Trigger: "schedule"}, [][]string{{"r3"}}},
		{"no such branch", engine.ListFilter{Branch: "gone"}, [][]string{nil}},
	}
	for _, tt := range tests {
		var pages [][]string
		f := tt.f
		for len(pages) < 10 {
			runs, next, err := s.ListRuns(ctx, "t", f)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			pages = append(pages, ids(runs))
			if next == "" {
				break
			}
			f.Cursor = next
		}
		if diff := cmp.Diff(tt.want, pages); diff != "" {
			t.Errorf("%s: pages (-want +got):\n%s", tt.name, diff)
		}
	}
}

func testRecentOutcomes(t *testing.T, s engine.Store) {
	ctx := context.Background()
	o, ok := s.(engine.OutcomeReader)
	if !ok {
		t.Fatalf("%T does not implement engine.OutcomeReader", s)
	}
	for i, id := range []string{"r1", "r2", "r3", "r4"} {
		Create(t, s, "t", id)
		Finish(t, s, "t", id, T0.Add(time.Duration(i+1)*time.Hour), id == "r3")
	}
	Create(t, s, "u", "theirs")
	Finish(t, s, "u", "theirs", T0.Add(5*time.Hour), false)

	type out struct {
		Case, Run string
		Status    api.Status
		Flaky     bool
	}
	read := func(f engine.OutcomeFilter) []out {
		recs, err := o.RecentOutcomes(ctx, "t", f)
		if err != nil {
			t.Fatal(err)
		}
		var got []out
		for _, r := range recs {
			got = append(got, out{r.Case, r.RunID, r.Status, r.Flaky})
		}
		return got
	}
	since := T0.Add(90 * time.Minute) // r1 is older
	got := read(engine.OutcomeFilter{Project: "shop", Cases: []string{"b", "a"}, Since: since, PerCase: 2})
	want := []out{
		{"b", "r4", api.StatusFailed, false}, {"b", "r3", api.StatusPassed, true},
		{"a", "r4", api.StatusPassed, false}, {"a", "r3", api.StatusPassed, false},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RecentOutcomes, 2 per case (-want +got):\n%s", diff)
	}
	got = read(engine.OutcomeFilter{Project: "shop", Environment: "staging", Cases: []string{"b"}, Since: since, PerCase: 30})
	if len(got) != 3 || got[2].Run != "r2" {
		t.Errorf("RecentOutcomes since %v: %+v, want r4, r3 and r2", since, got)
	}
	for _, f := range []engine.OutcomeFilter{
		{Project: "shop", Environment: "prod", Cases: []string{"a"}, Since: since, PerCase: 30},
		{Project: "blog", Cases: []string{"a"}, Since: since, PerCase: 30},
		{Project: "shop", Cases: []string{"zz"}, Since: since, PerCase: 30},
	} {
		if got := read(f); len(got) != 0 {
			t.Errorf("RecentOutcomes(%+v) = %+v, want nothing", f, got)
		}
	}
}
