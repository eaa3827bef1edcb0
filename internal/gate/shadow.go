package gate

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/diff"
	"github.com/zof-ai/zof-ci/internal/suite"
)

// ShadowScopes are the scopes a shadow run measures: the ones that run a
// subset chosen by rules (docs/cli.md, "Shadow runs").
var ShadowScopes = []string{"changed", "smoke"}

// mostFiles bounds the files a shadow reason names; the rest are counted.
const mostFiles = 5

// PlanShadow plans a shadow run: it selects for scope as PlanSuite does, then
// plans every case of the suite, so the gate judges them all and never a
// subset. The plan's selection records the subset (Selection.Shadow) and why
// each other case was left out; ShadowOf reads it back from the finished run.
// A scope other than changed or smoke is a UsageError.
func PlanShadow(s *suite.Suite, scope, environment string, d *diff.Result, suiteFile string) (*Plan, error) {
	if !slices.Contains(ShadowScopes, scope) {
		return nil, Usagef("--shadow applies to --scope %s, not %q: a shadow run measures the subset those scopes select against a run of every case", strings.Join(ShadowScopes, " or --scope "), scope)
	}
	sub, err := PlanSuite(s, scope, environment, d, suiteFile)
	if err != nil {
		return nil, err
	}
	full, err := PlanSuite(s, "all", environment, nil, suiteFile)
	if err != nil {
		return nil, err
	}
	ss := sub.Selection
	sp := &api.ShadowPlan{Scope: scope, Effective: ss.Effective, Selected: sub.SelectedIDs()}
	inSubset := make(map[string]bool, len(sp.Selected))
	for _, id := range sp.Selected {
		inSubset[id] = true
	}
	for _, c := range s.Cases {
		if inSubset[c.ID] {
			continue
		}
		why, detail := leftOut(scope, ss, c)
		sp.Left = append(sp.Left, api.ShadowLeft{Case: c.ID, Why: why, Detail: detail})
	}
	sel := full.Selection
	sel.Scope, sel.Effective = scope, "all"
	sel.Widened = &api.Reason{Kind: api.ReasonShadow, Detail: fmt.Sprintf(
		"shadow run: every case runs and the gate judges them all; scope %s would have run %d of %d %s",
		scope, len(sp.Selected), len(s.Cases), plural(len(s.Cases), "case", "cases"))}
	sel.Unmapped, sel.Ignored, sel.Diff = ss.Unmapped, ss.Ignored, ss.Diff
	sel.Warnings = append(slices.Clone(ss.Warnings), full.Selection.Warnings...)
	sel.Shadow = sp
	full.Selection = sel
	full.Request.Selection = sel
	return full, nil
}

// leftOut says why scope did not select case c, the most telling reason first:
// changed files outside every pattern, a case with no covers, changed files
// ignored, no changed file matching its covers.
func leftOut(scope string, ss api.Selection, c suite.Case) (why, detail string) {
	if scope == "smoke" {
		return api.ShadowWhyNotSmoke, "not tagged smoke"
	}
	switch {
	case len(ss.Unmapped) > 0:
		return api.ShadowWhyUnmapped, fmt.Sprintf("changed %s outside every pattern: %s; selection.unmapped did not widen to this case",
			plural(len(ss.Unmapped), "file", "files"), fileList(ss.Unmapped))
	case len(c.Covers) == 0:
		return api.ShadowWhyNoCovers, "the case has no covers, so no change selects it: add the paths it tests"
	case len(ss.Ignored) > 0:
		return api.ShadowWhyIgnored, fmt.Sprintf("changed %s dropped by selection.ignore: %s", plural(len(ss.Ignored), "file", "files"), fileList(ss.Ignored))
	}
	n := 0
	if ss.Diff != nil {
		n = ss.Diff.Files
	}
	return api.ShadowWhyNoEdge, fmt.Sprintf("none of the %d changed %s matches its covers (%s)", n, plural(n, "file", "files"), strings.Join(c.Covers, ", "))
}

func fileList(files []string) string {
	if len(files) > mostFiles {
		return strings.Join(files[:mostFiles], ", ") + fmt.Sprintf(" and %d more", len(files)-mostFiles)
	}
	return strings.Join(files, ", ")
}

// ShadowOf is what a shadow run's subset would have concluded: the failures
// outside it (with why each case was left out), its verdict on its own members
// under failOn, and its share of the members' time. nil when the run is not a
// shadow run.
func ShadowOf(r *api.Run, failOn []string) *api.ShadowResult {
	if r == nil || r.Selection.Shadow == nil {
		return nil
	}
	sp := r.Selection.Shadow
	res := &api.ShadowResult{Scope: sp.Scope, Selected: slices.Clone(sp.Selected), Missed: []api.ShadowMiss{}}
	if res.Selected == nil {
		res.Selected = []string{}
	}
	left := make(map[string]api.ShadowLeft, len(sp.Left))
	for _, l := range sp.Left {
		left[l.Case] = l
	}
	inSubset := make(map[string]bool, len(sp.Selected))
	for _, id := range sp.Selected {
		inSubset[id] = true
	}
	var all, subset time.Duration
	failed, blocked := false, false
	for _, m := range r.Members {
		in := inSubset[m.Case]
		d := time.Duration(0)
		if !m.StartedAt.IsZero() && m.FinishedAt.After(m.StartedAt) {
			d = m.FinishedAt.Sub(m.StartedAt)
		}
		all += d
		bad := m.Status == api.StatusFailed || m.Status == api.StatusBlocked
		if in {
			res.SelectedMembers++
			subset += d
			failed = failed || m.Status == api.StatusFailed
			blocked = blocked || m.Status == api.StatusBlocked
			continue
		}
		if bad {
			l := left[m.Case]
			res.Missed = append(res.Missed, api.ShadowMiss{Case: m.Case, Variant: m.Variant, Status: m.Status, Why: l.Why, Detail: l.Detail})
		}
	}
	res.Members = len(r.Members)
	res.TimeShare = 1
	if all > 0 {
		res.TimeShare = float64(int64(float64(subset)/float64(all)*1000+0.5)) / 1000
	}
	switch {
	case failed && slices.Contains(failOn, OutcomeFailed):
		res.Verdict = OutcomeFailed
	case blocked && slices.Contains(failOn, OutcomeBlocked):
		res.Verdict = OutcomeBlocked
	case r.Status == api.StatusPassed || r.Status == api.StatusFailed:
		res.Verdict = "passed"
	case r.Status == "":
		res.Verdict = "unknown"
	default:
		res.Verdict = strings.ToLower(r.Status.Display())
	}
	return res
}

// ShadowLine is the shadow result in one plain line, for logs and summaries.
func ShadowLine(s *api.ShadowResult) string {
	line := fmt.Sprintf("shadow: scope %s would have run %d of %d %s (%.0f%% of the time) and %s",
		s.Scope, s.SelectedMembers, s.Members, plural(s.Members, "member", "members"), s.TimeShare*100, s.Verdict)
	if len(s.Missed) == 0 {
		return line + "; it missed no failure"
	}
	names := make([]string, 0, len(s.Missed))
	for _, m := range s.Missed {
		id := m.Case
		if m.Variant != "" {
			id += "/" + m.Variant
		}
		names = append(names, id)
	}
	return line + fmt.Sprintf("; it missed %d %s: %s", len(s.Missed), plural(len(s.Missed), "failure", "failures"), fileList(names))
}

// ShadowSampled decides --shadow=sample:N for one pipeline: true for one in n
// pull requests, by the PR number (pr % n == 0) when there is one, else by a
// hash of the branch or ref (FNV-1a), so every retry and every job of the same
// pull request or branch decides alike. n ≤ 1 always samples.
func ShadowSampled(pr int, ref string, n int) bool {
	if n <= 1 {
		return true
	}
	if pr > 0 {
		return pr%n == 0
	}
	h := fnv.New32a()
	h.Write([]byte(ref))
	return h.Sum32()%uint32(n) == 0
}

// PlanTrigger plans a run a server trigger creates: a shadow run
// (PlanShadow) when shadow is set, else PlanSuite.
func PlanTrigger(s *suite.Suite, scope, environment string, d *diff.Result, suiteFile string, shadow bool) (*Plan, error) {
	if shadow {
		return PlanShadow(s, scope, environment, d, suiteFile)
	}
	return PlanSuite(s, scope, environment, d, suiteFile)
}
