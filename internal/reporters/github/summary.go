package github

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// MaxStepSummaryBytes is the most a step's summary may hold: GitHub refuses a
// larger GITHUB_STEP_SUMMARY ("$GITHUB_STEP_SUMMARY upload aborted, supports
// content up to a size of 1024k";
// https://docs.github.com/actions/using-workflows/workflow-commands-for-github-actions#adding-a-job-summary).
// The whole file counts, so what was written before this report is subtracted.
const MaxStepSummaryBytes = 1 << 20

// SummaryName is the step summary reporter's name, for messages.
const SummaryName = "github-summary"

// Summary appends the run's markdown summary to the step summary file.
type Summary struct {
	// Path is GITHUB_STEP_SUMMARY.
	Path string
	// Max bounds the file (0: MaxStepSummaryBytes).
	Max      int
	Markdown MarkdownOptions
}

var _ report.Reporter = (*Summary)(nil)

// NewSummary builds the reporter (a report.Factory): o.Path is GITHUB_STEP_SUMMARY.
func NewSummary(o report.Options) (report.Reporter, error) {
	if o.Path == "" {
		return nil, errors.New("GITHUB_STEP_SUMMARY is not set: the step summary is only written inside GitHub Actions")
	}
	return &Summary{Path: o.Path, Markdown: MarkdownOptions{Mask: o.Mask, Now: o.Now}}, nil
}

// Report appends the summary, truncated (with a note) to what is left of the
// step's 1 MiB.
func (s *Summary) Report(_ context.Context, res *report.Result) error {
	if s.Path == "" {
		return errors.New("no step summary path (GITHUB_STEP_SUMMARY)")
	}
	limit := s.Max
	if limit <= 0 {
		limit = MaxStepSummaryBytes
	}
	used := 0
	if fi, err := os.Stat(s.Path); err == nil {
		used = int(fi.Size())
	}
	budget := limit - used
	md := Markdown(res, s.Markdown)
	note := "\n\n> **Summary truncated** at GitHub's 1 MiB step summary limit."
	if u := runURL(res); u != "" {
		note += " The whole result: " + u
	}
	note += "\n"
	// The headline, verdict, counts and run facts come before the first
	// section: without room for them a truncated summary says nothing.
	essential := len(md)
	if i := strings.Index(md, "\n#### "); i >= 0 {
		essential = i + 1
	}
	if len(md) > budget && budget < essential+len(note) {
		return fmt.Errorf("the step summary already holds %d bytes of GitHub's %d: this run's summary does not fit (see the run or the JUnit report)", used, limit)
	}
	md = truncateBytes(md, budget, note)
	f, err := os.OpenFile(s.Path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open the step summary %s: %w", s.Path, err)
	}
	if _, err := io.WriteString(f, md); err != nil {
		f.Close()
		return fmt.Errorf("write the step summary %s: %w", s.Path, err)
	}
	return f.Close()
}

func runURL(res *report.Result) string {
	if res == nil || res.Run == nil {
		return ""
	}
	return res.Run.URL
}

// MarkdownOptions shape the summary markdown.
type MarkdownOptions struct {
	Mask *secret.Masker
	// Now is the clock for unfinished runs (nil: time.Now).
	Now func() time.Time
	// BlobBase links suite lines, e.g. https://github.com/OWNER/REPO/blob/SHA
	// ("" leaves case names unlinked).
	BlobBase string
	// SuiteFile overrides the run's repository-relative suite path.
	SuiteFile string
	// Notices are printed after the result (e.g. why there is no check run).
	Notices []string
}

// Markdown is the run's summary: status, counts, failed and flaky cases with
// links, the selection and why, queue time and duration, notices. It is the
// step summary and the check run's summary.
func Markdown(res *report.Result, o MarkdownOptions) string {
	now := time.Now()
	if o.Now != nil {
		now = o.Now()
	}
	m := o.Mask
	var b strings.Builder
	run := (*api.Run)(nil)
	if res != nil {
		run = res.Run
	}
	icon, status := headline(res)
	title := "Zof"
	if run != nil {
		title = CheckName(m, run)
	}
	fmt.Fprintf(&b, "### %s %s: %s\n\n", icon, cell(title), status)
	if res != nil && res.Verdict != "" {
		fmt.Fprintf(&b, "%s\n\n", cell(report.Line(m, res.Verdict)))
	}
	if run == nil {
		b.WriteString("No run was made.\n")
		writeNotices(&b, m, res, o.Notices)
		return b.String()
	}
	c := report.Tally(run)
	b.WriteString("| total | passed | failed | blocked | cancelled | skipped | flaky |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| %d | %d | %d | %d | %d | %d | %d |\n\n", c.Total, c.Passed, c.Failed, c.Blocked, c.Cancelled, c.Skipped+c.Unfinished, c.Flaky)

	var facts []string
	if run.ID != "" {
		id := "`" + strings.ReplaceAll(report.Line(m, run.ID), "`", "'") + "`"
		if u := report.Line(m, run.URL); isHTTP(u) {
			id = fmt.Sprintf("[%s](%s)", cell(report.Line(m, run.ID)), u)
		}
		facts = append(facts, "Run "+id)
	}
	switch {
	case run.CreatedAt.IsZero():
	case !run.StartedAt.IsZero():
		facts = append(facts, "queued "+report.FormatDuration(run.StartedAt.Sub(run.CreatedAt)))
	case !run.FinishedAt.IsZero():
		facts = append(facts, "queued "+report.FormatDuration(run.FinishedAt.Sub(run.CreatedAt))+", never started")
	}
	if d := run.Duration(now); d > 0 {
		facts = append(facts, "ran "+report.FormatDuration(d))
	}
	if sha := report.Line(m, run.Source.SHA); sha != "" {
		facts = append(facts, "commit `"+strings.ReplaceAll(short(sha), "`", "'")+"`")
	}
	if len(facts) > 0 {
		b.WriteString(strings.Join(facts, " · ") + "\n\n")
	}
	if r := report.Line(m, run.Reason); r != "" {
		fmt.Fprintf(&b, "%s: %s\n\n", run.Status.Display(), cell(r))
	}

	suite := o.SuiteFile
	if suite == "" {
		suite = run.SuiteFile
	}
	suite = report.Line(m, suite)
	link := func(name string, line int) string {
		if o.BlobBase == "" || suite == "" || line <= 0 {
			return cell(name)
		}
		return fmt.Sprintf("[%s](%s/%s#L%d)", cell(name), strings.TrimRight(o.BlobBase, "/"), escapePath(suite), line)
	}

	if fs := failures(run, m); len(fs) > 0 {
		fmt.Fprintf(&b, "#### Not passed (%d)\n\n| case | status | where | what |\n|---|---|---|---|\n", len(fs))
		for _, f := range fs {
			where := ""
			if w := report.Where(suite, f.Line); w != "" {
				where = cell(w)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", link(f.Title, f.Line), f.Outcome, where, cell(f.Message))
		}
		b.WriteString("\n")
	}
	writeEvidence(&b, m, res)
	var flaky []*api.Member
	for i := range run.Members {
		if run.Members[i].Flaky {
			flaky = append(flaky, &run.Members[i])
		}
	}
	if len(flaky) > 0 {
		fmt.Fprintf(&b, "#### Flaky (%d)\n\nPassed after a failed attempt.\n\n| case | attempts | earlier failures |\n|---|---:|---|\n", len(flaky))
		for _, fm := range flaky {
			fails := make([]string, 0, len(fm.FailedAttempts))
			for _, f := range fm.FailedAttempts {
				fails = append(fails, report.Line(m, f))
			}
			fmt.Fprintf(&b, "| %s | %d | %s |\n", link(report.Line(m, report.DisplayName(fm)), fm.Line), fm.Attempt, cell(strings.Join(fails, "\n")))
		}
		b.WriteString("\n")
	}
	writeSelection(&b, m, &run.Selection)
	writeShadow(&b, m, res.Shadow)
	writeNotices(&b, m, res, o.Notices)
	return b.String()
}

// maxShadowMissed bounds the missed failures the summary lists; the JSON
// result lists every one.
const maxShadowMissed = 50

// writeShadow is a shadow run's subset result: what the subset would have
// concluded and the failures it would have missed, with why.
func writeShadow(b *strings.Builder, m *secret.Masker, sh *api.ShadowResult) {
	if sh == nil {
		return
	}
	b.WriteString("#### Shadow run\n\n")
	fmt.Fprintf(b, "%s\n\nThe gate above judged every case; this is what scope %s alone would have concluded.\n",
		cell(report.Line(m, gate.ShadowLine(sh))), cell(report.Line(m, sh.Scope)))
	if len(sh.Missed) > 0 {
		b.WriteString("\n| missed | status | not selected because |\n|---|---|---|\n")
		for i, x := range sh.Missed {
			if i == maxShadowMissed {
				fmt.Fprintf(b, "\nand %d more (the JSON result lists every one)\n", len(sh.Missed)-i)
				break
			}
			id := x.Case
			if x.Variant != "" {
				id += "/" + x.Variant
			}
			fmt.Fprintf(b, "| %s | %s | %s |\n", cell(report.Line(m, id)), x.Status.Display(), cell(report.Line(m, x.Why+": "+x.Detail)))
		}
	}
	b.WriteString("\n")
}

func writeSelection(b *strings.Builder, m *secret.Masker, sel *api.Selection) {
	b.WriteString("#### Selection\n\n")
	fmt.Fprintf(b, "%s\n", cell(report.ScopeLine(m, sel)))
	if d := sel.Diff; d != nil {
		line := fmt.Sprintf("Change: %s from %s", plural(d.Files, "file", "files"), report.Line(m, d.Source))
		if d.Base != "" || d.Head != "" {
			line += fmt.Sprintf(" (%s..%s)", short(report.Line(m, d.Base)), short(report.Line(m, d.Head)))
		}
		if !d.Complete {
			line += ", incomplete"
			if d.Reason != "" && !wideningSaysWhy(sel) {
				line += ": " + report.Line(m, d.Reason)
			}
		}
		fmt.Fprintf(b, "\n%s\n", cell(line))
	}
	if len(sel.Cases) > 0 {
		fmt.Fprintf(b, "\n<details><summary>Why each case runs (%d)</summary>\n\n| case | why |\n|---|---|\n", len(sel.Cases))
		for i := range sel.Cases {
			fmt.Fprintf(b, "| %s | %s |\n", cell(report.Line(m, sel.Cases[i].ID)), cell(report.CaseReasonsUnder(m, sel, &sel.Cases[i])))
		}
		b.WriteString("\n</details>\n")
	}
	for _, l := range []struct {
		what  string
		files []string
	}{{"Changed files no case covers", sel.Unmapped}, {"Ignored changed files", sel.Ignored}} {
		if len(l.files) == 0 {
			continue
		}
		shown := l.files
		if len(shown) > 50 {
			shown = shown[:50]
		}
		parts := make([]string, len(shown))
		for i, f := range shown {
			parts[i] = cell(report.Line(m, f))
		}
		more := ""
		if len(l.files) > len(shown) {
			more = fmt.Sprintf(" and %d more", len(l.files)-len(shown))
		}
		fmt.Fprintf(b, "\n%s: %s%s\n", l.what, strings.Join(parts, ", "), more)
	}
	for _, w := range sel.Warnings {
		fmt.Fprintf(b, "\n> ⚠ %s\n", cell(report.Line(m, w)))
	}
	b.WriteString("\n")
}

// wideningSaysWhy reports whether the scope line's widening already gives the incomplete
// change's reason (on_unknown_diff widened the scope because of it).
func wideningSaysWhy(sel *api.Selection) bool {
	return sel.Widened != nil && sel.Widened.Kind == api.ReasonUnknownDiff
}

func writeNotices(b *strings.Builder, m *secret.Masker, res *report.Result, extra []string) {
	var all []string
	if res != nil {
		all = append(all, res.Notices...)
	}
	all = append(all, extra...)
	for _, n := range all {
		fmt.Fprintf(b, "> %s\n\n", cell(report.Line(m, n)))
	}
}

// headline is the status icon and words for the result. The icons are in
// the Basic Multilingual Plane, so the check run summary keeps them.
func headline(res *report.Result) (string, string) {
	if res == nil {
		return "❔", "unknown"
	}
	switch res.Gate {
	case gate.TimedOut:
		return "⏱", "Timed out"
	case gate.Interrupted:
		return "⚪", "Interrupted"
	case gate.Empty:
		return "❌", "Nothing to run"
	case gate.NoVerdict:
		return "❌", "Error"
	}
	if res.Run == nil {
		if res.Gate == gate.Passed {
			return "✅", "Passed"
		}
		return "❌", "Failed"
	}
	s := res.Run.Status
	switch s {
	case api.StatusPassed:
		return "✅", s.Display()
	case api.StatusFailed, api.StatusBlocked:
		if res.Gate == gate.Passed {
			return "⚠", s.Display() + " (gate passed)"
		}
		return "❌", s.Display()
	case api.StatusCancelled:
		if res.Gate == gate.Passed {
			return "⚠", s.Display() + " (gate passed)"
		}
		return "⚪", s.Display()
	}
	return "⏳", s.Display()
}

func short(sha string) string {
	if len(sha) == 40 && strings.Trim(sha, "0123456789abcdef") == "" {
		return sha[:7]
	}
	return sha
}

func isHTTP(u string) bool {
	return (strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://")) && !strings.ContainsAny(u, " ()<>\n")
}

// escapePath percent-encodes what a markdown link target cannot hold.
func escapePath(p string) string {
	r := strings.NewReplacer("%", "%25", " ", "%20", "(", "%28", ")", "%29", "<", "%3C", ">", "%3E", "#", "%23", "?", "%3F")
	return r.Replace(p)
}
