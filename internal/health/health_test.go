package health_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/health"
)

var now = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// rec is one outcome of case c, d days before now.
func rec(c string, d float64, st api.Status, commit string, opts ...func(*engine.HistoryRecord)) engine.HistoryRecord {
	r := engine.HistoryRecord{Case: c, Status: st, Attempts: 1, Commit: commit, RunID: "r-" + commit,
		Duration: time.Second, FinishedAt: now.Add(-time.Duration(d * float64(health.Day)))}
	for _, o := range opts {
		o(&r)
	}
	return r
}

func flaky(r *engine.HistoryRecord)       { r.Flaky, r.Attempts = true, 2 }
func quarantined(r *engine.HistoryRecord) { r.Quarantined = true }
func dur(d time.Duration) func(*engine.HistoryRecord) {
	return func(r *engine.HistoryRecord) { r.Duration = d }
}

const P, F = api.StatusPassed, api.StatusFailed

func f(x float64) *float64 { return &x }

// bucketed is what a percentile of d reads: the centre of its histogram
// bucket (1.78s for 2s; round powers of ten are exact).
func bucketed(d time.Duration) api.Duration {
	return api.Duration(engine.BucketDuration(engine.DurationBucket(d)))
}

func TestCompute(t *testing.T) {
	q := health.Query{Project: "shop", Since: now.Add(-30 * health.Day), Now: now}
	tests := []struct {
		name string
		recs []engine.HistoryRecord
		want api.CaseHealth
	}{
		{"always failing is broken, not flaky", []engine.HistoryRecord{rec("x", 20, F, "c1"), rec("x", 2, F, "c2"), rec("x", 1, F, "c3")},
			api.CaseHealth{Case: "x", Runs: 3, Failures: 3, FailureRate: 1, FailureRate7d: f(1), FailureRate30d: f(1), Broken: true,
				LastFailure: &api.LastFailure{RunID: "r-c3", Commit: "c3", At: now.Add(-health.Day)}, DurationP50: api.Duration(time.Second), DurationP90: api.Duration(time.Second)}},
		{"pass on retry within a run is flaky", []engine.HistoryRecord{rec("x", 3, P, "c1"), rec("x", 2, P, "c2", flaky)},
			api.CaseHealth{Case: "x", Runs: 2, FlakyRate: 0.5, FailureRate7d: f(0), FailureRate30d: f(0), DurationP50: api.Duration(time.Second), DurationP90: api.Duration(time.Second)}},
		{"pass after a failure on the same commit is flaky, flips counted", []engine.HistoryRecord{rec("x", 3, F, "c1"), rec("x", 2.5, P, "c1"), rec("x", 2, P, "c2"), rec("x", 1, F, "c3")},
			api.CaseHealth{Case: "x", Runs: 4, Failures: 2, FailureRate: 0.5, FlakyRate: 0.25, FlipRate: 0.5, FailureRate7d: f(0.5), FailureRate30d: f(0.5),
				LastFailure: &api.LastFailure{RunID: "r-c3", Commit: "c3", At: now.Add(-health.Day)}, DurationP50: api.Duration(time.Second), DurationP90: api.Duration(time.Second)}},
		{"ten runs are significant; 7 and 30 day rates; duration trend", func() []engine.HistoryRecord {
			var rs []engine.HistoryRecord
			for i := range 5 {
				rs = append(rs, rec("x", 20-float64(i), F, "old", dur(time.Second)))
			}
			for i := range 5 {
				rs = append(rs, rec("x", 5-float64(i), P, "new", dur(2*time.Second)))
			}
			return rs
		}(), api.CaseHealth{Case: "x", Runs: 10, Failures: 5, FailureRate: 0.5, FlipRate: 0.1, FailureRate7d: f(0), FailureRate30d: f(0.5), Significant: true,
			LastFailure: &api.LastFailure{RunID: "r-old", Commit: "old", At: now.Add(-16 * health.Day)},
			DurationP50: api.Duration(time.Second), DurationP90: bucketed(2 * time.Second), DurationTrend: 0.78}},
		{"quarantined for 40 days, clean for 31: fixed", []engine.HistoryRecord{rec("x", 45, P, "c0"), rec("x", 40, F, "c1", quarantined), rec("x", 31, F, "c2", quarantined), rec("x", 1, P, "c3", quarantined)},
			// The pass flips from the failure before the window: a flip is counted where it happens.
			api.CaseHealth{Case: "x", Runs: 1, FlipRate: 1, FailureRate7d: f(0), FailureRate30d: f(0), DurationP50: api.Duration(time.Second), DurationP90: api.Duration(time.Second),
				Quarantine: &api.QuarantineHealth{Since: now.Add(-40 * health.Day), Days: 40, CleanDays: 31, Fixed: true}}},
		{"broken quarantined case is never fixed", []engine.HistoryRecord{rec("x", 40, F, "c1", quarantined), rec("x", 1, F, "c3", quarantined)},
			api.CaseHealth{Case: "x", Runs: 1, Failures: 1, FailureRate: 1, FailureRate7d: f(1), FailureRate30d: f(1), Broken: true,
				LastFailure: &api.LastFailure{RunID: "r-c3", Commit: "c3", At: now.Add(-health.Day)}, DurationP50: api.Duration(time.Second), DurationP90: api.Duration(time.Second),
				Quarantine: &api.QuarantineHealth{Since: now.Add(-40 * health.Day), Days: 40, CleanDays: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := health.Compute(q, tt.recs)
			if len(got.Cases) != 1 {
				t.Fatalf("cases = %+v, want one", got.Cases)
			}
			if d := cmp.Diff(tt.want, got.Cases[0]); d != "" {
				t.Fatalf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestComputeOrdersWorstFirstAndSkipsCasesOutsideTheWindow(t *testing.T) {
	q := health.Query{Project: "shop", Since: now.Add(-7 * health.Day), Now: now}
	got := health.Compute(q, []engine.HistoryRecord{
		rec("gone", 20, F, "c0"),
		rec("ok", 3, P, "c1"), rec("half", 3, F, "c1"), rec("broken", 3, F, "c1"),
		rec("ok", 2, P, "c2"), rec("half", 2, P, "c2"), rec("broken", 2, F, "c2"),
	})
	var ids []string
	for _, c := range got.Cases {
		ids = append(ids, c.Case)
	}
	if d := cmp.Diff([]string{"broken", "half", "ok"}, ids); d != "" {
		t.Fatalf("order (-want +got):\n%s", d)
	}
}

func TestParseSince(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30d", 30 * health.Day, true},
		{"12h", 12 * time.Hour, true},
		{"366d", 366 * health.Day, true},
		{"367d", 0, false},
		{"-1d", 0, false},
		{"0d", 0, false},
		{"d", 0, false},
		{"1w", 0, false},
		{"106751d", 0, false}, // would overflow time.Duration
	} {
		got, err := health.ParseSince(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSince(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func FuzzParseSince(f *testing.F) {
	for _, s := range []string{"30d", "12h", "0d", "9999999999999d", "1.5h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := health.ParseSince(s)
		if err == nil && (d <= 0 || d > health.MaxSince) {
			t.Fatalf("ParseSince(%q) = %v, outside (0, max]", s, d)
		}
	})
}
