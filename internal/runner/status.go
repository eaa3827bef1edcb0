package runner

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/sanitize"
)

// statusMembers bounds the member lines of `zof status`, so it stays one screen.
const statusMembers = 40

// StatusKind is `zof status --exit-status`: for a finished run the gate's decision with
// every outcome in fail_on (passed, failed, blocked, cancelled), for an unfinished one
// TimedOut: there is no verdict yet, as when --timeout passes.
func StatusKind(r *api.Run) gate.Kind {
	if !r.Status.Terminal() {
		return gate.TimedOut
	}
	return gate.Judge(gate.Outcome{Run: r}, gate.AllOutcomes).Kind
}

// WriteStatus prints a run on one screen: status and substate, where it came from, the
// member counts, then one line per member (failing step and message for failures).
func WriteStatus(w io.Writer, r *api.Run, now time.Time) error {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	head := fmt.Sprintf("Run %s · %s", sanitize.Line(r.ID), r.Status.Display())
	if r.Substate != api.SubstateNone {
		head += " · " + r.Substate.Display(r.Position)
	}
	line("%s", head)
	info := fmt.Sprintf("  %s on %s · created %s", sanitize.Line(r.Project), sanitize.Line(r.Environment), r.CreatedAt.UTC().Format("2006-01-02 15:04:05Z"))
	if d := r.Duration(now); d > 0 {
		info += " · " + d.Round(time.Millisecond).String()
	}
	line("%s", info)
	if r.Reason != "" {
		line("  reason: %s", sanitize.Line(r.Reason))
	}
	if w := r.Wait; w != nil {
		// Which limit holds the run (docs/agents.md, Why a run waits).
		line("  waiting: %s (since %s)", sanitize.Line(w.Message), w.Since.UTC().Format("15:04:05Z"))
	}
	if src := sourceLine(r.Source); src != "" {
		line("  source: %s", src)
	}
	if r.RerunOf != "" {
		line("  rerun of %s", sanitize.Line(r.RerunOf))
	}
	if r.URL != "" {
		line("  %s", sanitize.Line(r.URL))
	}
	c := r.Count()
	counts := []string{}
	for _, p := range []struct {
		n    int
		what string
	}{{c.Passed, "passed"}, {c.Failed, "failed"}, {c.Blocked, "blocked"}, {c.Cancelled, "cancelled"}, {c.Pending, "not finished"}, {c.Flaky, "flaky"}} {
		if p.n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	line("  members: %d (%s)", c.Total, strings.Join(counts, ", "))
	if len(r.Members) > 0 {
		b.WriteString("\n")
	}
	for i := range r.Members {
		if i == statusMembers {
			line("  … and %d more (--output json has them all)", len(r.Members)-statusMembers)
			break
		}
		line("  %s", memberStatus(&r.Members[i]))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func memberStatus(m *api.Member) string {
	id := sanitize.Line(m.ID)
	switch m.Status {
	case api.StatusPassed:
		s := "✓ " + id + " passed"
		if m.Flaky {
			s += fmt.Sprintf(" (flaky: attempt %d)", m.Attempt)
		}
		return s
	case api.StatusFailed:
		for i, st := range m.Steps {
			if st.Status == api.StepFailed {
				s := fmt.Sprintf("✗ %s failed at step %d %q", id, i+1, sanitize.Line(st.Name))
				if st.Failure != nil {
					s += ": " + sanitize.Line(firstLineOf(st.Failure.Message))
				}
				return s
			}
		}
		return "✗ " + id + " failed" + suffix(m.Reason)
	case api.StatusBlocked:
		return "✗ " + id + " Failed (Blocked)" + suffix(m.Reason)
	case api.StatusCancelled:
		return "■ " + id + " cancelled" + suffix(m.Reason)
	case api.StatusRunning:
		for i, st := range m.Steps {
			if !st.Status.Terminal() {
				return fmt.Sprintf("▸ %s running step %d/%d %q", id, i+1, len(m.Steps), sanitize.Line(st.Name))
			}
		}
		return "▸ " + id + " running"
	}
	if m.Substate != api.SubstateNone {
		return "… " + id + " " + m.Substate.Display(0)
	}
	return "… " + id + " " + m.Status.Display()
}

func sourceLine(s api.Source) string {
	var parts []string
	if s.Provider != "" {
		parts = append(parts, sanitize.Line(s.Provider))
	}
	if s.Repo != "" {
		repo := sanitize.Line(s.Repo)
		if s.SHA != "" {
			repo += "@" + sanitize.Line(shortSHA(s.SHA))
		}
		parts = append(parts, repo)
	} else if s.SHA != "" {
		parts = append(parts, "commit "+sanitize.Line(shortSHA(s.SHA)))
	}
	if s.PR > 0 {
		parts = append(parts, fmt.Sprintf("PR #%d", s.PR))
	} else if s.Ref != "" {
		parts = append(parts, sanitize.Line(s.Ref))
	}
	if s.CIRunID != "" {
		run := "CI run " + sanitize.Line(s.CIRunID)
		if s.Attempt > 0 {
			run += fmt.Sprintf(" attempt %d", s.Attempt)
		}
		parts = append(parts, run)
	}
	if s.Actor != "" {
		parts = append(parts, "by "+sanitize.Line(s.Actor))
	}
	if s.Trigger == api.TriggerWebhook || s.Trigger == api.TriggerSchedule {
		parts = append(parts, TriggerLabel(s))
	}
	return strings.Join(parts, " · ")
}

// TriggerLabel says what started a run, for `zof runs` and `zof status`:
// "ci", "api", "webhook DELIVERY-ID", "schedule NAME@TICK", or "-" when the
// run does not say (created by an older client).
func TriggerLabel(s api.Source) string {
	t := sanitize.Line(s.Trigger)
	switch {
	case t == "":
		return "-"
	case s.TriggerID != "":
		return t + " " + sanitize.Line(s.TriggerID)
	}
	return t
}

// WriteRunList prints a page of runs as the `zof runs` table, newest first as
// the server sends them, with what triggered each.
func WriteRunList(w io.Writer, list *api.RunList, now time.Time) error {
	if len(list.Runs) == 0 {
		_, err := fmt.Fprintln(w, "no runs match")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tPROJECT\tENVIRONMENT\tTRIGGER\tCREATED\tDURATION\tMEMBERS\tDETAIL")
	for i := range list.Runs {
		r := &list.Runs[i]
		cnt := r.Count()
		detail := ""
		switch {
		case r.Substate != api.SubstateNone:
			detail = r.Substate.Display(r.Position)
		case r.Reason != "":
			detail = r.Reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\n", sanitize.Line(r.ID), r.Status.Display(), sanitize.Line(r.Project), sanitize.Line(r.Environment),
			TriggerLabel(r.Source), r.CreatedAt.UTC().Format("2006-01-02 15:04:05Z"), r.Duration(now).Round(time.Second),
			cnt.Passed+cnt.Failed+cnt.Cancelled+cnt.Blocked, cnt.Total, sanitize.Line(detail))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if list.Next != "" {
		_, err := fmt.Fprintf(w, "more: add --cursor %s\n", list.Next)
		return err
	}
	return nil
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func suffix(reason string) string {
	if reason == "" {
		return ""
	}
	return ": " + sanitize.Line(reason)
}

func firstLineOf(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
