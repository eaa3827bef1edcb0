// Package health turns the history of finished members into test health
// (docs/health.md): per case, failure, flaky and flip rates, the last failure,
// durations and quarantine standing. It is pure: a store sums a window's
// outcomes per case (engine.CaseSummary), this package judges them.
package health

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

// Day is the unit of the health windows.
const Day = 24 * time.Hour

// Windows of the fixed-period failure rates (Datadog's 7-day rate, and 30).
const (
	Window7d  = 7 * Day
	Window30d = 30 * Day
)

// Query is what to compute: a project (one environment, or all) over the
// window from Since to Now.
type Query struct {
	Project     string
	Environment string
	Since       time.Time
	Now         time.Time
}

// MaxSince bounds a health window: a year, the history the store is sized
// for (docs/benchmarks.md).
const MaxSince = 366 * Day

// ParseSince reads a health window: whole days ("30d") or a Go duration
// ("12h"), positive and at most MaxSince.
func ParseSince(v string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil {
			return 0, fmt.Errorf("since %q: give whole days like 30d, or hours like 12h", v)
		}
		if days > int(MaxSince/Day) {
			return 0, fmt.Errorf("since %q: must be more than 0 and at most %dd", v, MaxSince/Day)
		}
		d = time.Duration(days) * Day
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return 0, fmt.Errorf("since %q: give whole days like 30d, or hours like 12h", v)
		}
	}
	if d <= 0 || d > MaxSince {
		return 0, fmt.Errorf("since %q: must be more than 0 and at most %dd", v, MaxSince/Day)
	}
	return d, nil
}

// Filter is what a store summarises for q (engine.SummaryStore).
func Filter(q Query) engine.SummaryFilter {
	return engine.SummaryFilter{Project: q.Project, Environment: q.Environment, Since: q.Since, Now: q.Now}
}

// Compute judges recs (one tenant's records of q's project, in the order
// they were recorded) for q: what FromSummaries says of the summaries a
// store keeps of them.
func Compute(q Query, recs []engine.HistoryRecord) api.Health {
	last := map[engine.CaseKey]*engine.LastOutcome{}
	own := make([]engine.HistoryRecord, len(recs))
	for i, r := range recs {
		r.Tenant, r.Project = "", q.Project
		own[i] = r
	}
	days := engine.FoldHistory(last, own)
	return FromSummaries(q, engine.SummarizeDays("", Filter(q), days, last))
}

// FromSummaries judges the cases of a store's summaries for q.
func FromSummaries(q Query, sums []engine.CaseSummary) api.Health {
	h := api.Health{Project: q.Project, Environment: q.Environment, Since: q.Since, Until: q.Now, Cases: []api.CaseHealth{}}
	for i := range sums {
		if c, ok := judge(q, &sums[i]); ok {
			h.Cases = append(h.Cases, c)
		}
	}
	slices.SortFunc(h.Cases, func(a, b api.CaseHealth) int {
		if a.Broken != b.Broken {
			if a.Broken {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(b.FailureRate, a.FailureRate); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Case, b.Case), cmp.Compare(a.Variant, b.Variant))
	})
	return h
}

// judge computes one case from its summary; false when it has no outcome in
// the window.
func judge(q Query, s *engine.CaseSummary) (api.CaseHealth, bool) {
	c := api.CaseHealth{Case: s.Case, Variant: s.Variant}
	w := &s.Window
	if w.Runs == 0 {
		return c, false
	}
	c.Runs, c.Failures = int(w.Runs), int(w.Failures)
	runs := float64(w.Runs)
	c.FailureRate = round(float64(w.Failures) / runs)
	c.FlakyRate = round(float64(w.Flaky) / runs)
	c.FlipRate = round(float64(w.Flips) / runs)
	c.FailureRate7d, c.FailureRate30d = rate(s.Failures7, s.Runs7), rate(s.Failures30, s.Runs30)
	c.Significant = c.Runs >= api.MinSignificantRuns
	c.Broken = s.Runs7 > 0 && s.Failures7 == s.Runs7
	if l := s.Last; !l.FailAt.IsZero() && !l.FailAt.Before(windowStart(q)) {
		c.LastFailure = &api.LastFailure{RunID: l.FailRun, Commit: l.FailCommit, At: l.FailAt}
	}
	c.DurationP50, c.DurationP90 = api.Duration(w.Percentile(50)), api.Duration(w.Percentile(90))
	earlier := *w
	for i := range earlier.Durations {
		earlier.Durations[i] -= s.Recent.Durations[i]
	}
	earlier.Runs -= s.Recent.Runs
	if s.Recent.Runs > 0 && earlier.Runs > 0 {
		if before := earlier.Percentile(50); before > 0 {
			c.DurationTrend = round(float64(s.Recent.Percentile(50)-before) / float64(before))
		}
	}
	c.Quarantine = quarantine(q.Now, s.Last, c.Broken)
	return c, true
}

// windowStart is the start of q's window: the beginning of Since's UTC day.
func windowStart(q Query) time.Time {
	return time.Unix(0, engine.DayOf(q.Since)*int64(engine.HistoryDay)).UTC()
}

// quarantine is the standing of a case whose latest outcome was quarantined.
func quarantine(now time.Time, l engine.LastOutcome, broken bool) *api.QuarantineHealth {
	if !l.Quarantined {
		return nil
	}
	qh := &api.QuarantineHealth{Since: l.QuarantineSince, Days: days(now.Sub(l.QuarantineSince)), CleanDays: days(now.Sub(l.CleanSince))}
	qh.Fixed = !broken && qh.CleanDays >= api.CleanDaysToLeaveQuarantine
	return qh
}

func days(d time.Duration) int { return int(max(d, 0) / Day) }

func rate(f, n int64) *float64 {
	if n == 0 {
		return nil
	}
	r := round(float64(f) / float64(n))
	return &r
}

// round keeps four decimals: rates are shown as percentages with two.
func round(x float64) float64 { return math.Round(x*1e4) / 1e4 }
