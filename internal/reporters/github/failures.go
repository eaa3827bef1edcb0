package github

import (
	"fmt"
	"sort"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// failure is one member that did not pass, as annotations show it.
type failure struct {
	Outcome report.Outcome
	// Title is the case and variant ("checkout [eur]").
	Title string
	// Line is the suite file line of the failing step, else of the case; 0 unknown.
	Line int
	// Message is the failed expectation (or why the member was blocked or cancelled).
	Message string
	// Details is the failing step's output, masked and sanitised.
	Details string
}

// rank orders annotations by use to the reader: a failed expectation says
// what to fix; blocked and cancelled say what happened to the run.
var rank = map[report.Outcome]int{report.OutcomeFailed: 0, report.OutcomeBlocked: 1, report.OutcomeCancelled: 2}

// failures lists the members that failed, were blocked or cancelled after
// starting, most useful first (failed, blocked, cancelled), in member order
// within each. Every text is masked and sanitised.
func failures(run *api.Run, mask *secret.Masker) []failure {
	if run == nil {
		return nil
	}
	var out []failure
	for i := range run.Members {
		m := &run.Members[i]
		o := report.OutcomeOf(m)
		if _, ok := rank[o]; !ok {
			continue
		}
		f := failure{Outcome: o, Title: report.Line(mask, report.DisplayName(m)), Line: m.Line}
		n, step := report.FailingStep(m)
		if step != nil && step.Line > 0 {
			f.Line = step.Line
		}
		switch {
		case o == report.OutcomeFailed && step != nil && step.Failure != nil:
			f.Message = fmt.Sprintf("step %d %q failed: %s", n, report.Line(mask, step.Name), report.FailureText(mask, step.Failure))
		case o == report.OutcomeFailed && step != nil:
			f.Message = fmt.Sprintf("step %d %q failed", n, report.Line(mask, step.Name))
		case o == report.OutcomeFailed:
			f.Message = "failed"
		case o == report.OutcomeBlocked:
			f.Message = api.StatusBlocked.Display()
		case o == report.OutcomeCancelled:
			f.Message = "Cancelled"
			if step != nil {
				f.Message += fmt.Sprintf(" during step %d %q", n, report.Line(mask, step.Name))
			}
		}
		if r := report.Clean(mask, m.Reason); r != "" && (o != report.OutcomeFailed || step == nil || step.Failure == nil) {
			f.Message += ": " + r
		}
		if step != nil && step.Output != "" {
			f.Details = report.Clean(mask, step.Output)
		}
		out = append(out, f)
	}
	sort.SliceStable(out, func(i, j int) bool { return rank[out[i].Outcome] < rank[out[j].Outcome] })
	return out
}
