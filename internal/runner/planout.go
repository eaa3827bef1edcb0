package runner

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/sanitize"
)

// PlanSchema names the shape of `zof plan --output json` (docs/plan-json.md).
// v2 bounds each case's reasons to PlanReasons and counts the rest (v1 listed
// one reason per matching file and pattern: megabytes for a large diff).
const PlanSchema = "zof.plan/v2"

// PlanReasons is how many reasons per case a plan shows unless
// PlanOutput.AllReasons asks for every one (`zof plan --all-reasons`).
const PlanReasons = 5

// PlanOutput says how much evidence a written plan carries.
type PlanOutput struct {
	// AllReasons lists every reason of every case instead of the first PlanReasons.
	AllReasons bool
}

// PlanJSON is the stable JSON form of a plan.
type PlanJSON struct {
	Schema      string           `json:"schema"`
	Suite       string           `json:"suite"`
	Project     string           `json:"project"`
	Environment string           `json:"environment"`
	TotalCases  int              `json:"total_cases"`
	Scope       string           `json:"scope"`
	Effective   string           `json:"effective"`
	Widened     *api.Reason      `json:"widened"`
	Cases       []PlanCase       `json:"cases"`
	Unmapped    []string         `json:"unmapped"`
	Ignored     []string         `json:"ignored"`
	Diff        *api.DiffSummary `json:"diff"`
	Warnings    []string         `json:"warnings"`
	// Empty is true when nothing is selected; OnEmpty says what the gate does then.
	Empty   bool   `json:"empty"`
	OnEmpty string `json:"on_empty"`
}

// PlanCase is one selected case in the plan's JSON.
type PlanCase struct {
	ID      string       `json:"id"`
	Name    string       `json:"name"`
	Tags    []string     `json:"tags"`
	Members int          `json:"members"`
	Reasons []api.Reason `json:"reasons"`
	// ReasonsTotal counts all the case's reasons: more than len(Reasons)
	// when the list was cut to PlanReasons.
	ReasonsTotal int `json:"reasons_total"`
	// Files and Patterns count the distinct changed files and patterns among
	// all the case's reasons.
	Files    int    `json:"files"`
	Patterns int    `json:"patterns"`
	Line     int    `json:"line"`
	Sequence string `json:"ordered_set,omitempty"`
}

func planJSON(p *gate.Plan, o PlanOutput) PlanJSON {
	out := PlanJSON{
		Schema:      PlanSchema,
		Suite:       p.Request.SuiteFile,
		Project:     p.Request.Project,
		Environment: p.Request.Environment.Name,
		TotalCases:  len(p.Suite.Cases),
		Scope:       p.Selection.Scope,
		Effective:   p.Selection.Effective,
		Widened:     p.Selection.Widened,
		Cases:       []PlanCase{},
		Unmapped:    nonNil(p.Selection.Unmapped),
		Ignored:     nonNil(p.Selection.Ignored),
		Diff:        p.Selection.Diff,
		Warnings:    nonNil(p.Selection.Warnings),
		Empty:       p.Empty(),
		OnEmpty:     p.Suite.Gate.OnEmpty,
	}
	byID := map[string]api.Case{}
	for _, c := range p.Request.Cases {
		byID[c.ID] = c
	}
	ordered := map[string]string{}
	for _, s := range p.Request.Sets {
		if s.Sequential {
			for _, id := range s.Cases {
				ordered[id] = s.Name
			}
		}
	}
	var ev evidence
	for _, sc := range p.Selection.Cases {
		c := byID[sc.ID]
		members := len(c.Variants)
		if members == 0 {
			members = 1
		}
		reasons := sc.Reasons
		if !o.AllReasons && len(reasons) > PlanReasons {
			reasons = reasons[:PlanReasons:PlanReasons]
		}
		files, patterns := ev.count(sc.Reasons)
		out.Cases = append(out.Cases, PlanCase{
			ID: sc.ID, Name: c.Name, Tags: nonNil(c.Tags), Members: members,
			Reasons: nonNilReasons(reasons), ReasonsTotal: len(sc.Reasons), Files: files, Patterns: patterns,
			Line: c.Line, Sequence: ordered[sc.ID],
		})
	}
	return out
}

// evidence counts distinct files and patterns, reusing its sets across cases.
type evidence struct{ files, patterns map[string]struct{} }

func (e *evidence) count(rs []api.Reason) (files, patterns int) {
	if e.files == nil {
		e.files, e.patterns = map[string]struct{}{}, map[string]struct{}{}
	}
	clear(e.files)
	clear(e.patterns)
	for _, r := range rs {
		if r.File != "" {
			e.files[r.File] = struct{}{}
		}
		if r.Pattern != "" {
			e.patterns[r.Pattern] = struct{}{}
		}
	}
	return len(e.files), len(e.patterns)
}

func nonNilReasons(rs []api.Reason) []api.Reason {
	if rs == nil {
		return []api.Reason{}
	}
	return rs
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

// WritePlanJSON writes the plan as indented, stable JSON (schema PlanSchema).
func WritePlanJSON(w io.Writer, p *gate.Plan, o PlanOutput) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(planJSON(p, o))
}

// WritePlanText writes the plan as a table for a person: the scope and any
// widening first, then each selected case with its reasons, then the changed
// files that selected nothing.
func WritePlanText(w io.Writer, p *gate.Plan, o PlanOutput) error {
	j := planJSON(p, o)
	var b strings.Builder
	fmt.Fprintf(&b, "Suite %s · project %s · environment %s\n", j.Suite, j.Project, j.Environment)
	scope := "Scope: " + j.Scope
	if d := j.Diff; d != nil {
		if d.Files == 0 && !d.Complete {
			scope += " (change unknown, from " + d.Source // not "0 changed files": the reason follows
		} else {
			scope += fmt.Sprintf(" (%d changed %s from %s", d.Files, plural(d.Files, "file", "files"), d.Source)
		}
		if d.Base != "" {
			scope += fmt.Sprintf(", %s...%s", short(d.Base), short(d.Head))
		}
		scope += ")"
	}
	b.WriteString(scope + "\n")
	if j.Widened != nil {
		fmt.Fprintf(&b, "Widened to %s: %s\n", j.Effective, j.Widened.String())
	}
	for _, warn := range j.Warnings {
		fmt.Fprintf(&b, "Warning: %s\n", warn)
	}
	b.WriteString("\n")
	if j.Empty {
		fmt.Fprintf(&b, "No cases selected (of %d). ", j.TotalCases)
		if j.OnEmpty == "pass" {
			b.WriteString("gate.on_empty is pass: a run would pass with nothing to do.\n")
		} else {
			b.WriteString("gate.on_empty is fail: a run would exit 5 (nothing to run).\n")
		}
	} else {
		fmt.Fprintf(&b, "Selected %d of %d %s:\n", len(j.Cases), j.TotalCases, plural(j.TotalCases, "case", "cases"))
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  CASE\tNAME\tWHY")
		for _, c := range j.Cases {
			id := c.ID
			if c.Members > 1 {
				id += fmt.Sprintf(" (×%d)", c.Members)
			}
			name := c.Name
			if c.Sequence != "" {
				name += " [ordered set " + c.Sequence + "]"
			}
			for i, r := range c.Reasons {
				if i == 0 {
					fmt.Fprintf(tw, "  %s\t%s\t%s\n", id, sanitize.Line(name), sanitize.Line(r.String()))
				} else {
					fmt.Fprintf(tw, "  \t\t%s\n", sanitize.Line(r.String()))
				}
			}
			if len(c.Reasons) == 0 {
				fmt.Fprintf(tw, "  %s\t%s\t\n", id, sanitize.Line(name))
			}
			if more := c.ReasonsTotal - len(c.Reasons); more > 0 {
				fmt.Fprintf(tw, "  \t\t… %d more %s (%d %s, %d %s in all; --all-reasons lists them)\n", more, plural(more, "reason", "reasons"),
					c.Files, plural(c.Files, "file", "files"), c.Patterns, plural(c.Patterns, "pattern", "patterns"))
			}
		}
		tw.Flush()
	}
	if len(j.Unmapped) > 0 || len(j.Ignored) > 0 {
		b.WriteString("\nChanged files that selected nothing:\n")
		for _, f := range j.Unmapped {
			fmt.Fprintf(&b, "  %s  (no case covers it)\n", quoteIfOdd(f))
		}
		for _, f := range j.Ignored {
			fmt.Fprintf(&b, "  %s  (ignored by selection.ignore)\n", quoteIfOdd(f))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func short(sha string) string {
	if len(sha) == 40 {
		return sha[:12]
	}
	return sha
}

// quoteIfOdd quotes file names with spaces, control characters or invalid UTF-8,
// so that what a person copies from the log is the real name.
func quoteIfOdd(s string) string {
	for _, r := range s {
		if r <= ' ' || r == '"' || r == 0x7f || r == '\uFFFD' {
			return fmt.Sprintf("%q", s)
		}
	}
	return s
}
