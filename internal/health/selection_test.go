package health_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/health"
)

// shadow is a shadow run d days before now: 4 members of 1s each (a, b in
// the subset; c, d left out), failing the cases in failed.
func shadow(id string, d float64, failed ...string) engine.ShadowRecord {
	r := engine.ShadowRecord{RunID: id, FinishedAt: now.Add(-time.Duration(d * float64(health.Day))), Scope: "changed",
		Members: 4, Selected: 2, Duration: 4 * time.Second, SubsetDuration: 2 * time.Second,
		Left: []engine.ShadowLeftMember{{Case: "c", Duration: time.Second}, {Case: "d", Duration: time.Second}}}
	for _, c := range failed {
		r.Failures++
		switch c {
		case "a", "b":
			r.Caught++
		case "c":
			r.Missed = append(r.Missed, engine.ShadowMissed{Case: "c", Why: api.ShadowWhyUnmapped, Detail: "changed 1 file outside every pattern: docs/x.md", Files: []string{"docs/x.md"}})
		case "d":
			r.Missed = append(r.Missed, engine.ShadowMissed{Case: "d", Why: api.ShadowWhyNoEdge, Detail: "none of the 2 changed files matches its covers (pay/**)"})
		}
	}
	return r
}

func TestSelection(t *testing.T) {
	q := health.Query{Project: "shop", Since: now.Add(-30 * health.Day), Now: now}
	got := health.Selection(q, []engine.ShadowRecord{
		shadow("old", 40, "c"), // outside the window
		shadow("r1", 5),
		shadow("r2", 4, "a"),
		shadow("r3", 3, "c"),
		shadow("r4", 2, "b", "c"),
		shadow("r5", 1, "d"),
	})
	h := func(x float64) *float64 { return &x }
	want := api.SelectionHealth{Project: "shop", Since: q.Since, Until: now,
		ShadowRuns: 5, FaultyRuns: 4, CaughtRuns: 2, FaultyRunRecall: h(0.5),
		Failures: 5, CaughtFailures: 2, FailureRecall: h(0.4), CaseShare: 0.5, TimeShare: 0.5,
		Curve: []api.RecallPoint{
			{Added: 0, FaultyRunRecall: h(0.5), FailureRecall: h(0.4), TimeSaved: 0.5},
			{Added: 1, Case: "c", FaultyRunRecall: h(0.75), FailureRecall: h(0.8), TimeSaved: 0.25},
			{Added: 2, Case: "d", FaultyRunRecall: h(1), FailureRecall: h(1), TimeSaved: 0},
			{Added: 2, All: true, FaultyRunRecall: h(1), FailureRecall: h(1)},
		},
		Missed: []api.MissedCase{
			{Case: "c", Missed: 2, Runs: 5, Why: api.ShadowWhyUnmapped, Reasons: map[string]int{api.ShadowWhyUnmapped: 2},
				Detail: "changed 1 file outside every pattern: docs/x.md", Files: []string{"docs/x.md"}, LastRun: "r4",
				Hint: "add the changed files outside every pattern (docs/x.md) to the covers of c, or to selection.global if every case depends on them"},
			{Case: "d", Missed: 1, Runs: 5, Why: api.ShadowWhyNoEdge, Reasons: map[string]int{api.ShadowWhyNoEdge: 1},
				Detail: "none of the 2 changed files matches its covers (pay/**)", LastRun: "r5",
				Hint: "widen the covers of d to the paths whose changes broke it (see its runs' changed files)"},
		},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
}

func TestSelectionWithoutShadowRuns(t *testing.T) {
	q := health.Query{Project: "shop", Since: now.Add(-30 * health.Day), Now: now}
	got := health.Selection(q, nil)
	if got.ShadowRuns != 0 || got.FaultyRunRecall != nil || len(got.Curve) != 0 || got.Missed == nil {
		t.Fatalf("no shadow runs: %+v", got)
	}
}
