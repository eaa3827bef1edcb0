// Package health turns the history of finished members into test health
// (docs/health.md): per case, failure, flaky and flip rates, the last failure,
// durations and quarantine standing. It is pure: the server reads the
// records, this package judges them.
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

// Query is what to compute: records must cover Fetch(q) and be oldest first.
type Query struct {
	Project     string
	Environment string
	Since       time.Time
	Now         time.Time
}

// Fetch is the earliest finish time Compute needs: the window, and at least
// the last 30 days for the fixed-period rates. Quarantine age is counted
// within what is fetched.
func Fetch(q Query) time.Time {
	if t := q.Now.Add(-Window30d); t.Before(q.Since) {
		return t
	}
	return q.Since
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

type key struct{ c, v string }

// Compute judges recs (oldest first) for q.
func Compute(q Query, recs []engine.HistoryRecord) api.Health {
	h := api.Health{Project: q.Project, Environment: q.Environment, Since: q.Since, Until: q.Now, Cases: []api.CaseHealth{}}
	by := map[key][]engine.HistoryRecord{}
	var keys []key
	for _, r := range recs {
		k := key{r.Case, r.Variant}
		if _, ok := by[k]; !ok {
			keys = append(keys, k)
		}
		by[k] = append(by[k], r)
	}
	for _, k := range keys {
		if c, ok := judge(q, k, by[k]); ok {
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

// judge computes one case from its records, oldest first; false when none
// falls in the window.
func judge(q Query, k key, all []engine.HistoryRecord) (api.CaseHealth, bool) {
	c := api.CaseHealth{Case: k.c, Variant: k.v}
	var durs, recent, earlier []time.Duration
	var prev api.Status
	failedOn := map[string]bool{} // commits on which the case failed
	var n7, f7, n30, f30 int
	at7, at30 := q.Now.Add(-Window7d), q.Now.Add(-Window30d)
	for _, r := range all {
		failed := r.Status == api.StatusFailed
		if !r.FinishedAt.Before(at30) {
			n30++
			if failed {
				f30++
			}
		}
		if !r.FinishedAt.Before(at7) {
			n7++
			if failed {
				f7++
			}
		}
		if r.FinishedAt.Before(q.Since) {
			continue
		}
		c.Runs++
		durs = append(durs, r.Duration)
		if r.FinishedAt.Before(at7) {
			earlier = append(earlier, r.Duration)
		} else {
			recent = append(recent, r.Duration)
		}
		if prev != "" && r.Status != prev {
			c.FlipRate++
		}
		prev = r.Status
		if failed {
			c.Failures++
			c.LastFailure = &api.LastFailure{RunID: r.RunID, Commit: r.Commit, At: r.FinishedAt}
			if r.Commit != "" {
				failedOn[r.Commit] = true
			}
			continue
		}
		if r.Flaky || (r.Commit != "" && failedOn[r.Commit]) {
			c.FlakyRate++
		}
	}
	if c.Runs == 0 {
		return c, false
	}
	runs := float64(c.Runs)
	c.FailureRate = float64(c.Failures) / runs
	c.FlakyRate /= runs
	c.FlipRate /= runs
	c.FailureRate7d, c.FailureRate30d = rate(f7, n7), rate(f30, n30)
	c.Significant = c.Runs >= api.MinSignificantRuns
	c.Broken = n7 > 0 && f7 == n7
	c.DurationP50, c.DurationP90 = api.Duration(percentile(durs, 50)), api.Duration(percentile(durs, 90))
	if len(recent) > 0 && len(earlier) > 0 {
		if before := percentile(earlier, 50); before > 0 {
			c.DurationTrend = round(float64(percentile(recent, 50)-before) / float64(before))
		}
	}
	c.FailureRate, c.FlakyRate, c.FlipRate = round(c.FailureRate), round(c.FlakyRate), round(c.FlipRate)
	c.Quarantine = quarantine(q.Now, all, c.Broken)
	return c, true
}

// quarantine is the standing of a case whose latest record was quarantined:
// since the first record of the unbroken quarantined stretch that ends with
// it, clean since the last failure in that stretch.
func quarantine(now time.Time, all []engine.HistoryRecord, broken bool) *api.QuarantineHealth {
	last := len(all) - 1
	if !all[last].Quarantined {
		return nil
	}
	first := last
	for first > 0 && all[first-1].Quarantined {
		first--
	}
	since := all[first].FinishedAt
	clean := since
	for _, r := range all[first:] {
		if r.Status == api.StatusFailed {
			clean = r.FinishedAt
		}
	}
	qh := &api.QuarantineHealth{Since: since, Days: days(now.Sub(since)), CleanDays: days(now.Sub(clean))}
	qh.Fixed = !broken && qh.CleanDays >= api.CleanDaysToLeaveQuarantine
	return qh
}

func days(d time.Duration) int { return int(max(d, 0) / Day) }

func rate(f, n int) *float64 {
	if n == 0 {
		return nil
	}
	r := round(float64(f) / float64(n))
	return &r
}

// round keeps four decimals: rates are shown as percentages with two.
func round(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// percentile is the nearest-rank p-th percentile of ds (which it sorts).
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := (p*len(ds)+99)/100 - 1
	return ds[max(i, 0)]
}
