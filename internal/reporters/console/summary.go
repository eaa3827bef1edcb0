package console

import (
	"fmt"
	"strings"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// summary renders the final report (see the package doc).
func (r *Reporter) summary(res *report.Result) string {
	s := &summaryWriter{r: r}
	run := res.Run
	if run == nil {
		run = &api.Run{}
	}
	line := func(t string) string { return report.Line(r.mask, t) }
	now := r.opts.Clock()

	s.blank()
	head := fmt.Sprintf("Run %s %s · %s on %s · %s", line(run.ID), run.Status.Display(), line(run.Project), line(run.Environment), report.FormatDuration(run.Duration(now)))

	var failed, blocked, cancelled, skipped, unfinished, flaky []*api.Member
	for i := range run.Members {
		m := &run.Members[i]
		switch report.OutcomeOf(m) {
		case report.OutcomeFailed:
			failed = append(failed, m)
		case report.OutcomeBlocked:
			blocked = append(blocked, m)
		case report.OutcomeCancelled:
			cancelled = append(cancelled, m)
		case report.OutcomeSkipped:
			skipped = append(skipped, m)
		case report.OutcomeUnfinished:
			unfinished = append(unfinished, m)
		}
		if m.Flaky {
			flaky = append(flaky, m)
		}
	}

	// The run's reason is said by the member sections when there are some (a blocked
	// run's reason is each blocked member's): then the run line does not repeat it.
	if run.Reason != "" && len(failed)+len(blocked)+len(cancelled) == 0 {
		head += " · " + line(run.Reason)
	}
	s.text(head)
	if run.URL != "" {
		s.text("  " + line(run.URL))
	}

	if len(failed) > 0 {
		s.blank()
		s.text(fmt.Sprintf("Failed (%d):", len(failed)))
		for i, m := range failed {
			if i < maxDetailed {
				r.failedDetail(s, run, m)
			} else {
				s.text(fmt.Sprintf("%s %s failed: %s", r.sym("✗"), line(m.ID), report.FailureHeadline(r.mask, m)))
			}
		}
	}
	// Members blocked for the same reason (an exclusive environment held, a queue timeout)
	// are listed under it once, not with it on every line.
	blockedTitle, common := "Failed (Blocked)", sharedReason(blocked)
	if common != "" {
		blockedTitle += ": " + line(common) + ";"
	}
	s.list(blockedTitle, blocked, func(m *api.Member) string {
		if common != "" {
			return fmt.Sprintf("%s %s", r.sym("✗"), line(m.ID))
		}
		return fmt.Sprintf("%s %s%s", r.sym("✗"), line(m.ID), reasonSuffix(line(m.Reason)))
	})
	s.list("Cancelled", cancelled, func(m *api.Member) string {
		return fmt.Sprintf("%s %s %s%s", r.sym("■"), line(m.ID), cancelledHow(m, line), reasonSuffix(line(m.Reason)))
	})
	s.list("Unfinished", unfinished, func(m *api.Member) string {
		l := fmt.Sprintf("%s %s still %s", r.sym("▸"), line(m.ID), strings.ToLower(m.Status.Display()))
		for j := range m.Steps {
			if !m.Steps[j].Status.Terminal() {
				l += fmt.Sprintf(" at step %d %q", j+1, line(m.Steps[j].Name))
				break
			}
		}
		return l
	})
	s.list("Not run", skipped, func(m *api.Member) string {
		how := "cancelled before it started"
		if !m.Status.Terminal() {
			how = "not started (" + strings.ToLower(m.Status.Display()) + ")"
		}
		return fmt.Sprintf("- %s %s%s", line(m.ID), how, reasonSuffix(line(m.Reason)))
	})
	s.list("Flaky", flaky, func(m *api.Member) string {
		l := fmt.Sprintf("%s %s passed on attempt %d", r.sym("~"), line(m.ID), m.Attempt)
		for k, f := range m.FailedAttempts {
			l += fmt.Sprintf("; attempt %d failed: %s", k+1, line(f))
		}
		return l
	})

	c := report.Tally(run)
	s.blank()
	counts := fmt.Sprintf("Members: %d total, %d passed, %d failed, %d cancelled, %d skipped, %d flaky", c.Total, c.Passed, c.Failed, c.Cancelled, c.Skipped, c.Flaky)
	if c.Blocked > 0 {
		counts += fmt.Sprintf(", %d blocked", c.Blocked)
	}
	if c.Unfinished > 0 {
		counts += fmt.Sprintf(", %d unfinished", c.Unfinished)
	}
	s.text(counts)
	s.text("Duration: " + report.FormatDuration(run.Duration(now)))
	r.selection(s, &run.Selection)
	if sh := res.Shadow; sh != nil {
		s.blank()
		s.text(line(gate.ShadowLine(sh)))
		for _, m := range sh.Missed {
			id := m.Case
			if m.Variant != "" {
				id += "/" + m.Variant
			}
			s.text(line(fmt.Sprintf("  missed %s (%s): not selected: %s: %s", id, strings.ToLower(m.Status.Display()), m.Why, m.Detail)))
		}
	}

	if len(res.Notices) > 0 {
		s.blank()
		for _, n := range res.Notices {
			s.text(r.sym("!") + " " + line(n))
		}
	}
	s.blank()
	s.text(line(res.Verdict))
	return s.b.String()
}

// failedDetail is the full account of one failed member.
func (r *Reporter) failedDetail(s *summaryWriter, run *api.Run, m *api.Member) {
	line := func(t string) string { return report.Line(r.mask, t) }
	n, st := report.FailingStep(m)
	head := fmt.Sprintf("%s %s failed", r.sym("✗"), line(m.ID))
	if st != nil {
		head += fmt.Sprintf(" at step %d %q", n, line(st.Name))
		if w := report.Where(run.SuiteFile, st.Line); w != "" {
			head += " (" + line(w) + ")"
		}
	}
	s.text(head)
	c := "    case:     " + line(m.Case)
	if m.Variant != "" {
		c += ", variant " + line(m.Variant)
	}
	if m.Name != "" {
		c += " · " + line(m.Name)
	}
	if w := report.Where(run.SuiteFile, m.Line); w != "" {
		c += " (" + line(w) + ")"
	}
	s.text(c)
	if m.Attempt > 1 {
		s.text(fmt.Sprintf("    attempts: %d", m.Attempt))
	}
	// In GitHub Actions the folded step log below has the expected and actual values and
	// the output: the block keeps the failure line, so each is printed once.
	folded := r.opts.GitHubActions
	if st != nil && st.Failure != nil {
		s.text("    failure:  " + hang(report.Clean(r.mask, st.Failure.Message)))
		if !folded && st.Failure.Expected != "" {
			s.text("    expected: " + hang(report.Clean(r.mask, st.Failure.Expected)))
		}
		if !folded && st.Failure.Actual != "" {
			s.text("    got:      " + hang(report.Clean(r.mask, st.Failure.Actual)))
		}
	} else if m.Reason != "" {
		s.text("    reason:   " + hang(report.Clean(r.mask, m.Reason)))
	}
	if st != nil && !folded {
		if tail, cut := report.Tail(report.Clean(r.mask, st.Output), outputTailLines); tail != "" {
			if cut > 0 {
				s.text(fmt.Sprintf("    output (last %d lines of %d):", outputTailLines, outputTailLines+cut))
			} else {
				s.text("    output:")
			}
			s.text(report.Indent(tail, "    "+report.OutputPrefix))
		}
	}
	if r.opts.GitHubActions {
		s.command("::group::" + line(m.ID) + ": step log")
		s.text(strings.TrimRight(report.StepLog(r.mask, m, run.SuiteFile), "\n"))
		s.command("::endgroup::")
	}
}

// hang indents continuation lines under the value of a "    label:    " line.
func hang(t string) string {
	return strings.ReplaceAll(strings.TrimRight(t, "\n"), "\n", "\n              ")
}

// selection explains the scope and why each case is in.
func (r *Reporter) selection(s *summaryWriter, sel *api.Selection) {
	line := func(t string) string { return report.Line(r.mask, t) }
	s.text("Selection: " + report.ScopeLine(r.mask, sel))
	if why, same := sameReasons(r.mask, sel); same && len(sel.Cases) > 1 {
		// An explicit scope or a widening gives every case the same reason:
		// one line says it, instead of one line per case.
		s.text(fmt.Sprintf("  all %d cases: %s", len(sel.Cases), why))
	} else {
		r.caseReasons(s, sel)
	}
	if n := len(sel.Unmapped); n > 0 {
		s.text(fmt.Sprintf("  unmapped files (%d): %s", n, joinCapped(sel.Unmapped, line)))
	}
	for _, w := range sel.Warnings {
		s.text("  warning: " + line(w))
	}
}

// sameReasons reports whether every case was selected for the same reasons.
func sameReasons(mask *secret.Masker, sel *api.Selection) (string, bool) {
	cases := sel.Cases
	if len(cases) == 0 {
		return "", false
	}
	first := report.CaseReasonsUnder(mask, sel, &cases[0])
	for i := range cases[1:] {
		if report.CaseReasonsUnder(mask, sel, &cases[i+1]) != first {
			return "", false
		}
	}
	return first, true
}

// caseReasons lists each case with its reasons, capped.
func (r *Reporter) caseReasons(s *summaryWriter, sel *api.Selection) {
	line := func(t string) string { return report.Line(r.mask, t) }
	for i := range sel.Cases {
		if i == maxListed {
			s.text(fmt.Sprintf("  … and %d more cases (zof plan explains every one)", len(sel.Cases)-maxListed))
			break
		}
		c := &sel.Cases[i]
		s.text(fmt.Sprintf("  %s: %s", line(c.ID), report.CaseReasonsUnder(r.mask, sel, c)))
	}
}

func joinCapped(items []string, line func(string) string) string {
	parts := make([]string, 0, maxListed+1)
	for i, it := range items {
		if i == maxListed {
			parts = append(parts, fmt.Sprintf("… and %d more", len(items)-maxListed))
			break
		}
		parts = append(parts, line(it))
	}
	return strings.Join(parts, ", ")
}

// summaryWriter collects the summary's lines, quoting any line of text that
// GitHub Actions would read as a workflow command.
type summaryWriter struct {
	r *Reporter
	b strings.Builder
}

func (s *summaryWriter) blank() { s.b.WriteString("\n") }

// command writes one of our own workflow commands.
func (s *summaryWriter) command(c string) { s.b.WriteString(c + "\n") }

// text writes lines of text, quoting those that would start a workflow command.
func (s *summaryWriter) text(t string) {
	if t == "" {
		return
	}
	for _, l := range strings.Split(t, "\n") {
		if strings.HasPrefix(strings.TrimLeft(l, " \t"), "::") {
			l = report.OutputPrefix[2:] + l
		}
		s.b.WriteString(l + "\n")
	}
}

// list writes a titled list of one line per member, capped at maxListed.
// sharedReason is the reason every member has, when there are several and it is the same.
func sharedReason(ms []*api.Member) string {
	if len(ms) < 2 || ms[0].Reason == "" {
		return ""
	}
	for _, m := range ms[1:] {
		if m.Reason != ms[0].Reason {
			return ""
		}
	}
	return ms[0].Reason
}

func (s *summaryWriter) list(title string, ms []*api.Member, f func(*api.Member) string) {
	if len(ms) == 0 {
		return
	}
	s.blank()
	s.text(fmt.Sprintf("%s (%d):", title, len(ms)))
	for i, m := range ms {
		if i == maxListed {
			s.text(fmt.Sprintf("… and %d more", len(ms)-maxListed))
			return
		}
		s.text(f(m))
	}
}
