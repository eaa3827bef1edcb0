package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/sanitize"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// Clean is the one way reporters turn outside text into printable text: mask,
// sanitise, mask again. The second mask catches a secret that an escape
// sequence or an invalid byte had split; the first one a secret containing a
// character that sanitising removes.
func Clean(m *secret.Masker, s string) string {
	return m.String(sanitize.Text(m.String(s)))
}

// Line is Clean for one-line slots (names, attribute-like fields): newlines and
// tabs become spaces, so a name cannot forge another log line.
func Line(m *secret.Masker, s string) string {
	return sanitize.Line(Clean(m, s))
}

// Tail returns the last n lines of s (without a trailing newline) and how many
// lines were left out.
func Tail(s string, n int) (string, int) {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "", 0
	}
	lines := strings.Split(s, "\n")
	if len(lines) <= n {
		return s, 0
	}
	return strings.Join(lines[len(lines)-n:], "\n"), len(lines) - n
}

// Indent prefixes every line of s with prefix. Output is shown as "  | line" in
// every report: the "|" keeps a line of output from starting with "::", which
// GitHub Actions would run as a workflow command.
func Indent(s, prefix string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(prefix+l, " ")
	}
	return strings.Join(lines, "\n")
}

// OutputPrefix is the prefix of every line of step output in reports.
const OutputPrefix = "  | "

// FormatDuration rounds a duration for people: ms below a second, then
// tenths of seconds below a minute, then seconds.
func FormatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// Where is "file:line" for a line of the suite file, "line N" without a file
// name, or "" without a line.
func Where(suiteFile string, line int) string {
	switch {
	case line <= 0:
		return ""
	case suiteFile == "":
		return fmt.Sprintf("line %d", line)
	}
	return fmt.Sprintf("%s:%d", suiteFile, line)
}

// StepLog renders a member's steps for a person: one header line per step
// (number, status, name, duration, suite line), its failure, and its output
// as "  | " lines. Every text is cleaned with m.
func StepLog(mask *secret.Masker, mem *api.Member, suiteFile string) string {
	var b strings.Builder
	for i := range mem.Steps {
		s := &mem.Steps[i]
		fmt.Fprintf(&b, "step %d %s: %s", i+1, s.Status, Line(mask, s.Name))
		if s.Duration > 0 {
			fmt.Fprintf(&b, " (%s)", FormatDuration(s.Duration.D()))
		}
		if w := Where(suiteFile, s.Line); w != "" {
			fmt.Fprintf(&b, " [%s]", Line(mask, w))
		}
		b.WriteByte('\n')
		if s.Failure != nil {
			b.WriteString(Indent(FailureText(mask, s.Failure), "  "))
			b.WriteByte('\n')
		}
		if s.Output != "" {
			b.WriteString(Indent(Clean(mask, s.Output), OutputPrefix))
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// FailureText is a step failure for a person: the message, then
// "expected:" and "got:" lines when known. Every text is cleaned with m.
func FailureText(m *secret.Masker, f *api.Failure) string {
	if f == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(Clean(m, f.Message))
	if f.Expected != "" {
		b.WriteString("\nexpected: " + hang(Clean(m, f.Expected)))
	}
	if f.Actual != "" {
		b.WriteString("\ngot:      " + hang(Clean(m, f.Actual)))
	}
	return b.String()
}

// FailureHeadline is the one-line summary of why a member did not pass, e.g.
// `step 2 "create cart": status: expected 201, got 500`; it falls back to the
// member's reason. Every text is cleaned with mask.
func FailureHeadline(mask *secret.Masker, m *api.Member) string {
	n, s := FailingStep(m)
	var msg string
	if s != nil && s.Failure != nil {
		msg = Line(mask, firstLine(Clean(mask, s.Failure.Message)))
	}
	if msg == "" {
		msg = Line(mask, m.Reason)
	}
	if s == nil {
		return msg
	}
	head := fmt.Sprintf("step %d %q", n, Line(mask, s.Name))
	if msg == "" {
		return head
	}
	return head + ": " + msg
}

// hang indents continuation lines under the value of a "label:    " line.
func hang(s string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n          ")
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// ScopeLine explains a run's scope in one line: `scope changed`,
// `scope changed, effective all (widened: global file go.mod matches "go.mod": all cases)`.
func ScopeLine(mask *secret.Masker, sel *api.Selection) string {
	s := "scope " + orDash(Line(mask, sel.Scope))
	if sel.Effective != "" && sel.Effective != sel.Scope {
		s += ", effective " + Line(mask, sel.Effective)
	}
	if sel.Widened != nil {
		s += " (widened: " + Line(mask, sel.Widened.String()) + ")"
	}
	return s
}

// CaseReasons is why a case was selected, its reasons joined by "; ".
func CaseReasons(mask *secret.Masker, c *api.SelectedCase) string {
	return caseReasons(mask, c, nil)
}

// WideningAbove stands for the selection's widening in a case's reasons under a ScopeLine,
// which says it in full: a report says each fact once.
const WideningAbove = "widened (above)"

// CaseReasonsUnder is CaseReasons for a report that printed ScopeLine(sel) above: a reason
// that is sel's widening reads WideningAbove.
func CaseReasonsUnder(mask *secret.Masker, sel *api.Selection, c *api.SelectedCase) string {
	return caseReasons(mask, c, sel.Widened)
}

func caseReasons(mask *secret.Masker, c *api.SelectedCase, widened *api.Reason) string {
	parts := make([]string, 0, len(c.Reasons))
	for _, r := range c.Reasons {
		if widened != nil && r == *widened {
			parts = append(parts, WideningAbove)
			continue
		}
		parts = append(parts, Line(mask, r.String()))
	}
	return strings.Join(parts, "; ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
