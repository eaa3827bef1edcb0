package engine

import (
	"math"
	"slices"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// Test health reads summaries, not history rows (docs/health.md, "How it is
// stored"). The append that records a run's history also keeps, per
// (tenant, project, environment, case, variant), running totals — counts
// and a histogram of durations — with one snapshot per UTC day on which the
// case had an outcome: the totals up to the end of that day. The outcomes
// of any window are then the latest totals less the snapshot of the last
// day before the window: a health query reads a few rows per case, however
// long the window or busy the project. The latest outcome of each case is
// kept beside them, for flips and pass-on-retry.

// HistoryDay is the length of a summary row's day; days are UTC and
// numbered from the Unix epoch (DayOf).
const HistoryDay = 24 * time.Hour

// DayOf is the number of the UTC day t falls in.
func DayOf(t time.Time) int64 {
	n := t.UnixNano()
	d := n / int64(HistoryDay)
	if n < 0 && n%int64(HistoryDay) != 0 {
		d--
	}
	return d
}

// DurationBuckets is the size of the duration histogram of a summary row.
// Its buckets are centred on DurationBucketBase·10^(k/8) (eight a decade:
// 1 ms, 1.33 ms, 1.78 ms, 2.37 ms, … 1 s, …), bucket 0 holding everything
// shorter and the last everything from about 1.3 hours on. A percentile
// read from it is its bucket's centre: within 16 % of the true value, and
// exact for round powers of ten.
const DurationBuckets = 56

// DurationBucketBase is the centre of bucket 1.
const DurationBucketBase = time.Millisecond

// durationBounds[i] is the upper bound (exclusive) of bucket i: halfway (in
// log scale) between the centres of buckets i and i+1.
var durationBounds = func() [DurationBuckets - 1]int64 {
	var b [DurationBuckets - 1]int64
	for i := range b {
		b[i] = int64(math.Round(float64(DurationBucketBase) * math.Pow(10, (float64(i)-0.5)/8)))
	}
	return b
}()

// DurationBounds are the buckets' upper bounds in nanoseconds (the last
// bucket has none): the migrations that back-fill summaries from history
// bucket durations with them.
func DurationBounds() []int64 { return durationBounds[:] }

// DurationBucket is the histogram bucket of d.
func DurationBucket(d time.Duration) int {
	i, _ := slices.BinarySearch(durationBounds[:], int64(d)+1)
	return i
}

// BucketDuration is the duration a percentile falling in bucket i reports:
// its centre, to three significant digits (bucket 0: half the base).
func BucketDuration(i int) time.Duration {
	if i <= 0 {
		return DurationBucketBase / 2
	}
	c := float64(DurationBucketBase) * math.Pow(10, float64(min(i, DurationBuckets-1)-1)/8)
	p := math.Pow(10, math.Floor(math.Log10(c))-2)
	return time.Duration(math.Round(c/p) * p)
}

// DayCounts are a case's outcomes over some days.
type DayCounts struct {
	Runs, Failures int64
	// Flaky counts passes after a failure on the same commit: a pass on
	// retry within the run, or a pass on the commit of the case's latest
	// failure (Trunk's pass-on-retry).
	Flaky int64
	// Flips counts outcomes different from the case's previous one in the
	// same environment.
	Flips     int64
	Durations [DurationBuckets]int64
}

// Add adds o to c.
func (c *DayCounts) Add(o *DayCounts) {
	c.Runs += o.Runs
	c.Failures += o.Failures
	c.Flaky += o.Flaky
	c.Flips += o.Flips
	for i := range c.Durations {
		c.Durations[i] += o.Durations[i]
	}
}

// Sub subtracts o from c.
func (c *DayCounts) Sub(o *DayCounts) {
	c.Runs -= o.Runs
	c.Failures -= o.Failures
	c.Flaky -= o.Flaky
	c.Flips -= o.Flips
	for i := range c.Durations {
		c.Durations[i] -= o.Durations[i]
	}
}

// Percentile is the nearest-rank p-th percentile of the durations, 0 with none.
func (c *DayCounts) Percentile(p int) time.Duration {
	var n int64
	for _, k := range c.Durations {
		n += k
	}
	if n == 0 {
		return 0
	}
	rank := max((int64(p)*n+99)/100, 1)
	var seen int64
	for i, k := range c.Durations {
		seen += k
		if seen >= rank {
			return BucketDuration(i)
		}
	}
	return BucketDuration(DurationBuckets - 1)
}

// CaseKey names a case's outcomes in one environment.
type CaseKey struct {
	Tenant, Project, Environment, Case, Variant string
}

// DayKey names a snapshot of running totals: a case's totals up to the end
// of Day.
type DayKey struct {
	CaseKey
	Day int64
}

// BaseDay is the day of the snapshot that pruning leaves of the days it
// deletes: the totals before the first day kept, so differences stay right.
const BaseDay int64 = -1 << 62

// LastOutcome is what a store keeps of a case's latest outcome in an
// environment: what the next outcome is compared with, the latest failure,
// and the quarantine stretch.
type LastOutcome struct {
	Status api.Status
	At     time.Time
	// FailRun, FailCommit and FailAt are the latest failure (FailAt zero: none).
	FailRun, FailCommit string
	FailAt              time.Time
	// Quarantined: the latest outcome was quarantined; QuarantineSince is the
	// first outcome of the unbroken quarantined stretch that ends with it, and
	// CleanSince its latest failure in that stretch, else QuarantineSince.
	Quarantined                 bool
	QuarantineSince, CleanSince time.Time
	// Totals are the case's running totals in this environment, as of the
	// end of TotalsDay (the latest snapshot).
	Totals    DayCounts
	TotalsDay int64
}

// FoldHistory adds recs, in the order they are recorded, to the latest
// outcomes in last (updated in place; a missing case is added) and returns
// the snapshots of running totals they change, to be written over the
// stored ones. An outcome counts on its UTC day, or on the case's latest
// snapshot day when that is later (a member that finished before midnight,
// recorded after the case's outcome of the next day), so snapshots only
// ever grow at the end. Every store summarises with it, so they agree.
func FoldHistory(last map[CaseKey]*LastOutcome, recs []HistoryRecord) map[DayKey]*DayCounts {
	snaps := make(map[DayKey]*DayCounts)
	for _, r := range recs {
		k := CaseKey{r.Tenant, r.Project, r.Environment, r.Case, r.Variant}
		prev := last[k]
		if prev == nil {
			prev = &LastOutcome{TotalsDay: BaseDay}
			last[k] = prev
		}
		prev.TotalsDay = max(prev.TotalsDay, DayOf(r.FinishedAt))
		c := &prev.Totals
		c.Runs++
		c.Durations[DurationBucket(r.Duration)]++
		failed := r.Status == api.StatusFailed
		if prev.Status != "" && prev.Status != r.Status {
			c.Flips++
		}
		if failed {
			c.Failures++
		} else if r.Flaky || (r.Commit != "" && !prev.FailAt.IsZero() && r.Commit == prev.FailCommit) {
			c.Flaky++
		}
		prev.Status, prev.At = r.Status, r.FinishedAt
		if failed {
			prev.FailRun, prev.FailCommit, prev.FailAt = r.RunID, r.Commit, r.FinishedAt
		}
		switch {
		case !r.Quarantined:
			prev.Quarantined, prev.QuarantineSince, prev.CleanSince = false, time.Time{}, time.Time{}
		case !prev.Quarantined:
			prev.Quarantined, prev.QuarantineSince, prev.CleanSince = true, r.FinishedAt, r.FinishedAt
		case failed:
			prev.CleanSince = r.FinishedAt
		}
		snap := prev.Totals
		snaps[DayKey{k, prev.TotalsDay}] = &snap
	}
	return snaps
}

// SummaryFilter selects the summaries of one project of a tenant (one
// environment, or all), over the window from Since to Now: days are whole
// UTC days, so the window starts at the beginning of Since's day.
type SummaryFilter struct {
	Project     string
	Environment string
	Since, Now  time.Time
}

// Fixed periods of the health failure rates (Datadog's 7-day rate, and 30).
const (
	Period7d  = 7 * HistoryDay
	Period30d = 30 * HistoryDay
)

// SummaryDays are the first days (DayOf) of f's periods: the window, its
// recent part (the last 7 days within it), and the last 7 and 30 days.
func (f SummaryFilter) SummaryDays() (window, recent, d7, d30 int64) {
	window, d7, d30 = DayOf(f.Since), DayOf(f.Now.Add(-Period7d)), DayOf(f.Now.Add(-Period30d))
	return window, max(window, d7), d7, d30
}

// CaseSummary is one case (and variant) of a project over a SummaryFilter,
// its environments merged.
type CaseSummary struct {
	Case, Variant string
	// Window is the window's outcomes; Recent the runs and durations of its
	// last 7 days (for the duration trend; its other counts stay 0).
	Window, Recent DayCounts
	// Runs7 … Failures30 are over the last 7 and 30 days, whatever the window.
	Runs7, Failures7, Runs30, Failures30 int64
	// Last is the latest outcome (of the environment that saw it).
	Last LastOutcome
}

// SummarizeDays is HealthSummary over snapshots and latest outcomes held in
// memory (memstore, and the reference the SQL stores are tested against).
func SummarizeDays(tenant string, f SummaryFilter, snaps map[DayKey]*DayCounts, last map[CaseKey]*LastOutcome) []CaseSummary {
	window, recent, d7, d30 := f.SummaryDays()
	// before[k][i] is k's snapshot of the latest day before period i.
	starts := [4]int64{window, recent, d7, d30}
	type found struct {
		day  int64
		snap *DayCounts
	}
	before := map[CaseKey]*[4]found{}
	for k, c := range snaps {
		b := before[k.CaseKey]
		if b == nil {
			b = &[4]found{}
			before[k.CaseKey] = b
		}
		for i, start := range starts {
			if k.Day < start && (b[i].snap == nil || k.Day > b[i].day) {
				b[i] = found{k.Day, c}
			}
		}
	}
	type ck struct{ c, v string }
	by := map[ck]*CaseSummary{}
	var order []ck
	for k, l := range last {
		if k.Tenant != tenant || k.Project != f.Project || (f.Environment != "" && k.Environment != f.Environment) {
			continue
		}
		var b [4]DayCounts
		if p := before[k]; p != nil {
			for i := range b {
				if p[i].snap != nil {
					b[i] = *p[i].snap
				}
			}
		}
		var part CaseSummary
		part.Window = l.Totals
		part.Window.Sub(&b[0])
		rec := l.Totals
		rec.Sub(&b[1])
		part.Recent.Runs, part.Recent.Durations = rec.Runs, rec.Durations
		part.Runs7, part.Failures7 = l.Totals.Runs-b[2].Runs, l.Totals.Failures-b[2].Failures
		part.Runs30, part.Failures30 = l.Totals.Runs-b[3].Runs, l.Totals.Failures-b[3].Failures
		part.Last = *l
		part.Last.Totals, part.Last.TotalsDay = DayCounts{}, 0
		s := by[ck{k.Case, k.Variant}]
		if s == nil {
			s = &CaseSummary{Case: k.Case, Variant: k.Variant}
			by[ck{k.Case, k.Variant}] = s
			order = append(order, ck{k.Case, k.Variant})
		}
		s.Merge(&part)
	}
	out := make([]CaseSummary, 0, len(by))
	for _, k := range order {
		out = append(out, *by[k])
	}
	return out
}

// Merge adds o (the same case in another environment) to s.
func (s *CaseSummary) Merge(o *CaseSummary) {
	s.Window.Add(&o.Window)
	s.Recent.Add(&o.Recent)
	s.Runs7 += o.Runs7
	s.Failures7 += o.Failures7
	s.Runs30 += o.Runs30
	s.Failures30 += o.Failures30
	s.Last = MergeLast(s.Last, o.Last)
}

// MergeLast merges the latest outcomes of one case in two environments: the
// later outcome's status and quarantine, the later failure.
func MergeLast(a, b LastOutcome) LastOutcome {
	if b.At.After(a.At) {
		a, b = b, a
	}
	if b.FailAt.After(a.FailAt) {
		a.FailRun, a.FailCommit, a.FailAt = b.FailRun, b.FailCommit, b.FailAt
	}
	return a
}

// PruneSnapshots drops the snapshots of days before before's day, keeping
// the latest of them per case as its BaseDay snapshot (so differences with
// it stay right), and the latest outcomes older than before with every
// snapshot of their cases.
func PruneSnapshots(snaps map[DayKey]*DayCounts, last map[CaseKey]*LastOutcome, before time.Time) {
	cut := DayOf(before)
	base := map[CaseKey]DayKey{}
	for k := range snaps {
		if k.Day >= cut {
			continue
		}
		if b, ok := base[k.CaseKey]; !ok || k.Day > b.Day {
			base[k.CaseKey] = k
		}
	}
	for ck, k := range base {
		c := snaps[k]
		for d := range snaps {
			if d.CaseKey == ck && d.Day < cut {
				delete(snaps, d)
			}
		}
		snaps[DayKey{ck, BaseDay}] = c
	}
	for k, l := range last {
		if l.At.Before(before) {
			delete(last, k)
		}
	}
	for k := range snaps {
		if _, ok := last[k.CaseKey]; !ok {
			delete(snaps, k)
		}
	}
}
