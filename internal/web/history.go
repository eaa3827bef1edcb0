package web

import (
	"context"
	"fmt"
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
	recs, err := h.History(ctx, run.Tenant, engine.HistoryFilter{Project: run.Project, Environment: run.Environment, Since: now.AddDate(0, 0, -StripDays)})
	if err != nil {
		return nil, err
	}
	type key struct{ c, v string }
	want := make(map[key]string, len(members))
	for _, mv := range members {
		want[key{mv.M.Case, mv.M.Variant}] = mv.M.ID
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
