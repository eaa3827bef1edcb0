package health

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

// MaxCurvePoints bounds the widened points of the recall curve (the most
// often missed cases added one at a time); the curve ends with every case.
const MaxCurvePoints = 20

// maxMissedFiles bounds the files a missed case names.
const maxMissedFiles = 10

// Selection judges recs, a project's shadow runs over q's window, oldest
// first (docs/health.md, "Selection safety").
func Selection(q Query, recs []engine.ShadowRecord) api.SelectionHealth {
	h := api.SelectionHealth{Project: q.Project, Environment: q.Environment, Since: q.Since, Until: q.Now,
		Curve: []api.RecallPoint{}, Missed: []api.MissedCase{}}
	var members, selected int
	var total, subset time.Duration
	type ck struct{ c, v string }
	missed := map[ck]*api.MissedCase{}
	leftOut := map[ck]int{}
	for _, r := range recs {
		if r.FinishedAt.Before(q.Since) {
			continue
		}
		h.ShadowRuns++
		members += r.Members
		selected += r.Selected
		total += r.Duration
		subset += r.SubsetDuration
		h.Failures += r.Failures
		h.CaughtFailures += r.Caught
		if r.Failures > 0 {
			h.FaultyRuns++
			if r.Caught > 0 {
				h.CaughtRuns++
			}
		}
		for _, l := range r.Left {
			leftOut[ck{l.Case, l.Variant}]++
		}
		for _, m := range r.Missed {
			k := ck{m.Case, m.Variant}
			mc := missed[k]
			if mc == nil {
				mc = &api.MissedCase{Case: m.Case, Variant: m.Variant, Reasons: map[string]int{}}
				missed[k] = mc
			}
			mc.Missed++
			mc.Reasons[m.Why]++
			mc.Detail, mc.LastRun = m.Detail, r.RunID
			for _, f := range m.Files {
				if !slices.Contains(mc.Files, f) && len(mc.Files) < maxMissedFiles {
					mc.Files = append(mc.Files, f)
				}
			}
		}
	}
	if h.ShadowRuns == 0 {
		return h
	}
	h.FaultyRunRecall = ratio(h.CaughtRuns, h.FaultyRuns)
	h.FailureRecall = ratio(h.CaughtFailures, h.Failures)
	if members > 0 {
		h.CaseShare = round(float64(selected) / float64(members))
	}
	h.TimeShare = 1
	if total > 0 {
		h.TimeShare = round(float64(subset) / float64(total))
	}
	for k, m := range missed {
		m.Runs = leftOut[k]
		m.Why = mostFrequent(m.Reasons)
		m.Hint = hint(m)
		h.Missed = append(h.Missed, *m)
	}
	slices.SortFunc(h.Missed, func(a, b api.MissedCase) int {
		return cmp.Or(cmp.Compare(b.Missed, a.Missed), cmp.Compare(a.Case, b.Case), cmp.Compare(a.Variant, b.Variant))
	})
	h.Curve = curve(q, recs, h.Missed)
	return h
}

// curve widens every run's subset by the most often missed cases, one at a
// time, and says what each step would have caught and cost.
func curve(q Query, recs []engine.ShadowRecord, missed []api.MissedCase) []api.RecallPoint {
	added := map[string]bool{}
	point := func(n int, id string) api.RecallPoint {
		var faulty, caughtRuns, failures, caught int
		var total, ran time.Duration
		for _, r := range recs {
			if r.FinishedAt.Before(q.Since) {
				continue
			}
			total += r.Duration
			ran += r.SubsetDuration
			for _, l := range r.Left {
				if added[api.MemberID(l.Case, l.Variant)] {
					ran += l.Duration
				}
			}
			c := r.Caught
			for _, m := range r.Missed {
				if added[api.MemberID(m.Case, m.Variant)] {
					c++
				}
			}
			failures += r.Failures
			caught += c
			if r.Failures > 0 {
				faulty++
				if c > 0 {
					caughtRuns++
				}
			}
		}
		p := api.RecallPoint{Added: n, Case: id, FaultyRunRecall: ratio(caughtRuns, faulty), FailureRecall: ratio(caught, failures)}
		if total > 0 {
			p.TimeSaved = round(1 - float64(ran)/float64(total))
		}
		return p
	}
	out := []api.RecallPoint{point(0, "")}
	for i, m := range missed {
		if i == MaxCurvePoints {
			break
		}
		id := api.MemberID(m.Case, m.Variant)
		added[id] = true
		out = append(out, point(i+1, id))
	}
	one := 1.0
	out = append(out, api.RecallPoint{Added: len(missed), All: true, FaultyRunRecall: &one, FailureRecall: &one})
	if f := out[0].FaultyRunRecall; f == nil {
		last := &out[len(out)-1]
		last.FaultyRunRecall, last.FailureRecall = nil, nil
	}
	return out
}

func ratio(n, d int) *float64 {
	if d == 0 {
		return nil
	}
	r := round(float64(n) / float64(d))
	return &r
}

// mostFrequent is the reason given most often (ties: by name).
func mostFrequent(reasons map[string]int) string {
	best, n := "", -1
	for why, k := range reasons {
		if k > n || (k == n && why < best) {
			best, n = why, k
		}
	}
	return best
}

// hint says how to make the subset select m next time.
func hint(m *api.MissedCase) string {
	id := api.MemberID(m.Case, m.Variant)
	files := strings.Join(m.Files, ", ")
	switch m.Why {
	case api.ShadowWhyUnmapped:
		return fmt.Sprintf("add the changed files outside every pattern (%s) to the covers of %s, or to selection.global if every case depends on them", files, m.Case)
	case api.ShadowWhyNoCovers:
		return fmt.Sprintf("give %s covers (the paths it tests): without them no change selects it", m.Case)
	case api.ShadowWhyIgnored:
		return fmt.Sprintf("%s failed when only ignored files changed (%s): narrow selection.ignore, or add them to its covers", id, files)
	case api.ShadowWhyNotSmoke:
		return fmt.Sprintf("tag %s smoke if the smoke scope must catch it", m.Case)
	case api.ShadowWhyNoEdge:
		return fmt.Sprintf("widen the covers of %s to the paths whose changes broke it (see its runs' changed files)", m.Case)
	}
	return fmt.Sprintf("check the covers of %s", m.Case)
}
