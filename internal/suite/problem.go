package suite

import (
	"sort"
	"strconv"
	"strings"
)

// Severity says whether a problem makes the suite unusable.
type Severity int

// Severities. An Error stops the run; a Warning is printed and the run goes on.
const (
	SeverityError Severity = iota
	SeverityWarning
)

func (s Severity) String() string {
	if s == SeverityWarning {
		return "warning"
	}
	return "error"
}

// Problem is one thing wrong with a suite file, at a position a person (or a
// GitHub annotation) can jump to. Line and Col are 1-based; 0 means the
// problem concerns the whole file (or a command-line option).
type Problem struct {
	File     string
	Line     int
	Col      int
	Severity Severity
	Message  string
	Hint     string
}

// String renders the problem as `FILE:LINE:COL: message — hint`; warnings
// carry a "warning: " prefix before the message.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(p.Line))
		if p.Col > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(p.Col))
		}
	}
	b.WriteString(": ")
	if p.Severity == SeverityWarning {
		b.WriteString("warning: ")
	}
	b.WriteString(p.Message)
	if p.Hint != "" {
		b.WriteString(" — ")
		b.WriteString(p.Hint)
	}
	return b.String()
}

// Error is returned by Load and Parse when the suite has at least one
// error-severity problem. It holds every problem found (errors and
// warnings), sorted by position. The suite is invalid: nothing was submitted.
type Error struct {
	Problems []Problem
}

// Error renders every problem, one per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Errors counts the error-severity problems.
func (e *Error) Errors() int {
	n := 0
	for _, p := range e.Problems {
		if p.Severity == SeverityError {
			n++
		}
	}
	return n
}

// sortProblems orders problems by position (whole-file problems first) and
// drops exact duplicates, which alias expansion can produce.
func sortProblems(ps []Problem) []Problem {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return a.Severity < b.Severity
	})
	out := ps[:0]
	for _, p := range ps {
		if len(out) > 0 && p == out[len(out)-1] {
			continue
		}
		out = append(out, p)
	}
	return out
}

func hasErrors(ps []Problem) bool {
	for _, p := range ps {
		if p.Severity == SeverityError {
			return true
		}
	}
	return false
}
