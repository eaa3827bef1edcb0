// Package historytest checks a store's health summaries
// (engine.HistoryStore.HealthSummary) against the reference: what
// engine.FoldHistory and engine.SummarizeDays make of the same store's
// history rows. sqlitestore and pgstore run it.
package historytest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/storetest"
)

// Fill finishes runs in s: over 40 days, two environments of project shop
// and one of another tenant; member b fails on some, passes on retry on
// others. It returns the time of the last run.
func Fill(t testing.TB, s engine.Store) time.Time {
	t.Helper()
	at := storetest.T0
	for i := range 40 {
		env := "staging"
		if i%3 == 0 {
			env = "prod"
		}
		id := fmt.Sprintf("r%02d", i)
		storetest.CreateIn(t, s, "t1", id, "shop", env)
		storetest.Finish(t, s, "t1", id, at, i%4 == 1)
		if i%5 == 0 {
			storetest.CreateIn(t, s, "t2", "x"+id, "shop", env)
			storetest.Finish(t, s, "t2", "x"+id, at, false)
		}
		at = at.Add(time.Duration(i%3+1) * 10 * time.Hour)
	}
	return at
}

// Filters are the queries Check compares, now being the last run's time.
func Filters(now time.Time) []engine.SummaryFilter {
	return []engine.SummaryFilter{
		{Project: "shop", Since: now.Add(-30 * engine.HistoryDay), Now: now},
		{Project: "shop", Environment: "prod", Since: now.Add(-7 * engine.HistoryDay), Now: now},
		{Project: "shop", Environment: "staging", Since: now.Add(-90 * engine.HistoryDay), Now: now},
		{Project: "shop", Since: now.Add(-12 * time.Hour), Now: now},
		{Project: "none", Since: now.Add(-30 * engine.HistoryDay), Now: now},
	}
}

// Summaries reads every filter's summaries, sorted by case and variant.
func Summaries(t testing.TB, h engine.HistoryStore, tenant string, fs []engine.SummaryFilter) [][]engine.CaseSummary {
	t.Helper()
	out := make([][]engine.CaseSummary, len(fs))
	for i, f := range fs {
		got, err := h.HealthSummary(context.Background(), tenant, f)
		if err != nil {
			t.Fatalf("HealthSummary(%+v): %v", f, err)
		}
		out[i] = sorted(got)
	}
	return out
}

func sorted(s []engine.CaseSummary) []engine.CaseSummary {
	slices.SortFunc(s, func(a, b engine.CaseSummary) int {
		return cmp.Or(cmp.Compare(a.Case, b.Case), cmp.Compare(a.Variant, b.Variant))
	})
	if s == nil {
		s = []engine.CaseSummary{}
	}
	return s
}

// Check compares h's summaries of tenant over fs with the reference folded
// from h's own history rows.
func Check(t *testing.T, h engine.HistoryStore, tenant string, fs []engine.SummaryFilter) {
	t.Helper()
	recs, err := h.History(context.Background(), tenant, engine.HistoryFilter{Project: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	last := map[engine.CaseKey]*engine.LastOutcome{}
	days := engine.FoldHistory(last, recs)
	got := Summaries(t, h, tenant, fs)
	for i, f := range fs {
		want := sorted(engine.SummarizeDays(tenant, f, days, last))
		if d := gocmp.Diff(want, got[i]); d != "" {
			t.Errorf("HealthSummary(%s, %+v) (-reference +store):\n%s", tenant, f, d)
		}
	}
}

// Run fills a new store from open and checks its summaries per tenant.
func Run(t *testing.T, open func(t *testing.T) engine.Store) {
	s := open(t)
	h, ok := s.(engine.HistoryStore)
	if !ok {
		t.Fatalf("%T does not implement engine.HistoryStore", s)
	}
	now := Fill(t, s)
	fs := Filters(now)
	for _, tenant := range []string{"t1", "t2", "nobody"} {
		Check(t, h, tenant, fs)
	}
	sums := Summaries(t, h, "t1", fs[:1])[0]
	if len(sums) != 2 || sums[1].Window.Failures == 0 || sums[1].Window.Flaky == 0 || sums[1].Window.Flips == 0 {
		t.Fatalf("the fill does not exercise failures, flaky passes and flips: %+v", sums)
	}
	// Pruning drops the days before the cut from the summaries too.
	cut := now.Add(-10 * engine.HistoryDay)
	if _, err := h.PruneHistory(context.Background(), cut); err != nil {
		t.Fatal(err)
	}
	wide := Summaries(t, h, "t1", []engine.SummaryFilter{{Project: "shop", Since: now.Add(-90 * engine.HistoryDay), Now: now}})[0]
	fromCut := Summaries(t, h, "t1", []engine.SummaryFilter{{Project: "shop", Since: cut, Now: now}})[0]
	if len(wide) == 0 || len(wide) != len(fromCut) {
		t.Fatalf("after pruning at %v: %d cases over 90 days, %d from the cut", cut, len(wide), len(fromCut))
	}
	for i := range wide {
		if wide[i].Window.Runs != fromCut[i].Window.Runs || wide[i].Window.Runs >= sums[i].Window.Runs {
			t.Errorf("case %s after pruning at %v: %d runs over 90 days, %d from the cut's day, %d before pruning",
				wide[i].Case, cut, wide[i].Window.Runs, fromCut[i].Window.Runs, sums[i].Window.Runs)
		}
	}
}

// RunShadow checks that a store records a finished shadow run (and only
// shadow runs) with its subset, failures and misses, per tenant.
func RunShadow(t *testing.T, open func(t *testing.T) engine.Store) {
	s := open(t)
	sh, ok := s.(engine.ShadowStore)
	if !ok {
		t.Fatalf("%T does not implement engine.ShadowStore", s)
	}
	// r1: a plain run; r2: a shadow run whose subset is case a, so b's
	// failure is missed.
	storetest.CreateIn(t, s, "t1", "r1", "shop", "staging")
	storetest.Finish(t, s, "t1", "r1", storetest.T0.Add(time.Hour), false)
	req := storetest.Request("shop", "staging")
	req.Selection.Shadow = &api.ShadowPlan{Scope: "changed", Effective: "changed", Selected: []string{"a"},
		Left: []api.ShadowLeft{{Case: "b", Why: api.ShadowWhyUnmapped, Detail: "changed 1 file outside every pattern: docs/x.md"}}}
	req.Selection.Unmapped = []string{"docs/x.md"}
	rec, first := storetest.NewRun("t1", "r2", req)
	if holder, err := s.CreateRun(context.Background(), rec, first, nil); err != nil || holder != nil {
		t.Fatalf("CreateRun: %v %v", holder, err)
	}
	at := storetest.T0.Add(2 * time.Hour)
	storetest.Finish(t, s, "t1", "r2", at, false)
	got, err := sh.ShadowHistory(context.Background(), "t1", engine.HistoryFilter{Project: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	want := []engine.ShadowRecord{{Tenant: "t1", Project: "shop", Environment: "staging", RunID: "r2", FinishedAt: at, Scope: "changed",
		Members: 2, Selected: 1, Failures: 1, Caught: 0, Duration: 7 * time.Second, SubsetDuration: 3 * time.Second,
		Missed: []engine.ShadowMissed{{Case: "b", Why: api.ShadowWhyUnmapped, Detail: "changed 1 file outside every pattern: docs/x.md", Files: []string{"docs/x.md"}}},
		Left:   []engine.ShadowLeftMember{{Case: "b", Duration: 4 * time.Second}}}}
	if d := gocmp.Diff(want, got); d != "" {
		t.Fatalf("shadow history (-want +got):\n%s", d)
	}
	if other, err := sh.ShadowHistory(context.Background(), "t2", engine.HistoryFilter{Project: "shop"}); err != nil || len(other) != 0 {
		t.Fatalf("another tenant sees %v, %v", other, err)
	}
	if _, err := s.(engine.HistoryStore).PruneHistory(context.Background(), at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if left, _ := sh.ShadowHistory(context.Background(), "t1", engine.HistoryFilter{Project: "shop"}); len(left) != 0 {
		t.Fatalf("after pruning: %v", left)
	}
}
