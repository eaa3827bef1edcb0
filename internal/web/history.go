package web

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

// History is what the run page reads of test history (engine.HistoryStore).
type History interface {
	History(ctx context.Context, tenant string, f engine.HistoryFilter) ([]engine.HistoryRecord, error)
}

var _ History = (engine.HistoryStore)(nil)

// Strip sizes: how many outcomes a case's strip shows, over how many days.
const (
	StripOutcomes = 30
	StripDays     = 14
)

// strips are the last StripOutcomes outcomes in the last StripDays days of
// each case of members, in the run's project and environment, by member id.
func strips(ctx context.Context, h History, run *api.Run, members []MemberView, now time.Time) (map[string]*Strip, error) {
	if len(members) == 0 {
		return nil, nil
	}
	since := now.AddDate(0, 0, -StripDays)
	type key struct{ c, v string }
	want := make(map[key]string, len(members))
	var cases []string
	for _, mv := range members {
		want[key{mv.M.Case, mv.M.Variant}] = mv.M.ID
		if !slices.Contains(cases, mv.M.Case) {
			cases = append(cases, mv.M.Case)
		}
	}
	var recs []engine.HistoryRecord
	full := map[string]bool{} // cases whose last StripOutcomes records may not be all of the 14 days
	if or, ok := h.(engine.OutcomeReader); ok {
		// Per case from an index: the cost is the strips', not the project's history.
		newest, err := or.RecentOutcomes(ctx, run.Tenant, engine.OutcomeFilter{Project: run.Project, Environment: run.Environment, Cases: cases, Since: since, PerCase: StripOutcomes})
		if err != nil {
			return nil, err
		}
		n := map[string]int{}
		for _, r := range newest {
			n[r.Case]++
		}
		for c, k := range n {
			full[c] = k >= StripOutcomes
		}
		slices.Reverse(newest) // oldest first, as History answers
		recs = newest
	} else {
		var err error
		recs, err = h.History(ctx, run.Tenant, engine.HistoryFilter{Project: run.Project, Environment: run.Environment, Since: since})
		if err != nil {
			return nil, err
		}
	}
	caseOf := map[string]string{}
	for k, id := range want {
		caseOf[id] = k.c
	}
	out := map[string]*Strip{}
	failed := map[string]int{}
	for _, r := range recs { // oldest first
		id, ok := want[key{r.Case, r.Variant}]
		if !ok {
			continue
		}
		st := out[id]
		if st == nil {
			st = &Strip{}
			out[id] = st
		}
		tag := statusTag(r.Status)
		if r.Flaky {
			tag.Label += " (flaky)"
		}
		st.Outcomes = append(st.Outcomes, Outcome{Tag: tag, RunID: r.RunID, When: r.FinishedAt.UTC().Format("2006-01-02 15:04")})
		if r.Status == api.StatusFailed {
			failed[id]++
		}
	}
	for id, st := range out {
		if n := len(st.Outcomes); n > StripOutcomes {
			st.Outcomes = st.Outcomes[n-StripOutcomes:]
		}
		if full[caseOf[id]] {
			// Only the newest runs were read: say of how many.
			st.Text = fmt.Sprintf("failed %d of the last %d runs", failed[id], len(st.Outcomes))
			continue
		}
		switch f := failed[id]; f {
		case 0:
			st.Text = fmt.Sprintf("never failed in %d days", StripDays)
		case 1:
			st.Text = fmt.Sprintf("failed once in %d days", StripDays)
		default:
			st.Text = fmt.Sprintf("failed %d times in %d days", f, StripDays)
		}
	}
	return out, nil
}
