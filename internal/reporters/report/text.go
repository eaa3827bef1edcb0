package report

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// Sanitize makes text from outside (command output, response bodies, names)
// safe to print in a CI log and to put in XML 1.0:
//   - ANSI escape sequences (CSI, OSC, and two-byte ESC sequences) are removed;
//   - "\r\n" and a lone "\r" become "\n" (a "\r" would let output overwrite log lines);
//   - other C0 controls, DEL and C1 controls are removed; "\t" and "\n" stay;
//   - U+FFFE and U+FFFF (not characters in XML 1.0) are removed;
//   - each byte of invalid UTF-8 becomes U+FFFD, so a reader sees something was there.
//
// The result is valid UTF-8 made only of characters XML 1.0 allows.
func Sanitize(s string) string {
	if isClean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c == 0x1b { // ESC
			i = skipEscape(s, i)
			continue
		}
		if c == '\r' {
			b.WriteByte('\n')
			i++
			if i < len(s) && s[i] == '\n' {
				i++
			}
			continue
		}
		if c < utf8.RuneSelf {
			if c == '\t' || c == '\n' || (c >= 0x20 && c != 0x7f) {
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteRune(utf8.RuneError)
		case r == 0x9b: // C1 CSI: same as ESC [
			i = skipCSI(s, i+size)
			continue
		case r >= 0x80 && r <= 0x9f, r == 0xfffe, r == 0xffff:
			// C1 controls and XML non-characters: dropped.
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// isClean is the fast path: plain printable ASCII, tabs and newlines.
func isClean(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || c == 0x7f || (c < 0x20 && c != '\t' && c != '\n') {
			return false
		}
	}
	return true
}

// skipEscape returns the index after the escape sequence that starts at s[i] == ESC.
func skipEscape(s string, i int) int {
	i++ // ESC
	if i >= len(s) {
		return i
	}
	switch c := s[i]; {
	case c == '[':
		return skipCSI(s, i+1)
	case c == ']' || c == 'P' || c == '^' || c == '_' || c == 'X':
		// OSC, DCS, PM, APC, SOS: a string ended by BEL or ST (ESC \).
		for j := i + 1; j < len(s); j++ {
			if s[j] == 0x07 {
				return j + 1
			}
			if s[j] == 0x1b && j+1 < len(s) && s[j+1] == '\\' {
				return j + 2
			}
		}
		return len(s)
	case c >= 0x20 && c <= 0x2f:
		// nF: intermediates, then one final byte (e.g. ESC ( B).
		j := i
		for j < len(s) && s[j] >= 0x20 && s[j] <= 0x2f {
			j++
		}
		if j < len(s) && s[j] >= 0x30 && s[j] <= 0x7e {
			j++
		}
		return j
	case c >= 0x30 && c <= 0x7e:
		return i + 1 // Fp, Fe, Fs: one byte
	}
	return i // a lone ESC: drop just it
}

// skipCSI returns the index after a CSI sequence whose parameters start at s[i]:
// parameter bytes 0x30–0x3F, intermediates 0x20–0x2F, one final byte 0x40–0x7E.
func skipCSI(s string, i int) int {
	for i < len(s) && s[i] >= 0x30 && s[i] <= 0x3f {
		i++
	}
	for i < len(s) && s[i] >= 0x20 && s[i] <= 0x2f {
		i++
	}
	if i < len(s) && s[i] >= 0x40 && s[i] <= 0x7e {
		i++
	}
	return i
}

// Clean is the one way reporters turn outside text into printable text: mask,
// sanitise, mask again. The second mask catches a secret that an escape
// sequence or an invalid byte had split; the first one a secret containing a
// character that sanitising removes.
func Clean(m *secret.Masker, s string) string {
	return m.String(Sanitize(m.String(s)))
}

// Line is Clean for one-line slots (names, attribute-like fields): newlines and
// tabs become spaces, so a name cannot forge another log line.
func Line(m *secret.Masker, s string) string {
	s = Clean(m, s)
	if strings.ContainsAny(s, "\n\t") {
		s = strings.Join(strings.Fields(strings.ReplaceAll(s, "\t", " ")), " ")
	}
	return s
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
	parts := make([]string, 0, len(c.Reasons))
	for _, r := range c.Reasons {
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
