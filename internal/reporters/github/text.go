// Package github writes a run's reports to GitHub: a check run with
// annotations on the suite file (go-github), workflow-command annotations when
// the token may not write checks, the step summary (GITHUB_STEP_SUMMARY) and
// the step's outputs (GITHUB_OUTPUT), within GitHub's documented limits
// (docs/ci.md). A report that cannot be posted degrades with a notice;
// it never changes the gate's exit code.
package github

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// FitOutput cuts s to GitHub's MaxOutputBytes for a check run's summary or text, on a
// character boundary.
func FitOutput(s string) string { return truncateBytes(s, MaxOutputBytes, "…") }

// truncateRunes shortens s to at most max characters, cutting at a line end
// when one is near and appending note (which counts toward max). s is
// returned as is when it fits.
func truncateRunes(s string, max int, note string) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	budget := max - utf8.RuneCountInString(note)
	if budget <= 0 {
		return string([]rune(note)[:max])
	}
	cut := byteIndexOfRune(s, budget)
	return cutAtLine(s[:cut]) + note
}

// truncateBytes shortens s to at most max bytes (UTF-8 kept whole), cutting at
// a line end when one is near and appending note.
func truncateBytes(s string, max int, note string) string {
	if len(s) <= max {
		return s
	}
	budget := max - len(note)
	if budget <= 0 {
		return ""
	}
	cut := budget
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return cutAtLine(s[:cut]) + note
}

// cutAtLine drops a partial last line when the last newline is within the
// final quarter, so a cut rarely splits a table row or a code line.
func cutAtLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 && i >= len(s)*3/4 {
		return s[:i+1]
	}
	return s
}

// byteIndexOfRune is the byte offset of the n-th rune of s.
func byteIndexOfRune(s string, n int) int {
	i := 0
	for pos := range s {
		if i == n {
			return pos
		}
		i++
	}
	return len(s)
}

// cell makes text safe inside a markdown table cell: pipes and markdown
// punctuation escaped, HTML special characters as entities, newlines as <br>.
func cell(s string) string {
	var b strings.Builder
	for _, r := range strings.TrimRight(s, "\n") {
		switch r {
		case '|', '\\', '`', '*', '_', '[', ']', '#', '~':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '\n':
			b.WriteString("<br>")
		case '\r', '\t':
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// fence returns a code fence longer than any run of backticks in s, so the
// text cannot close the block early.
func fence(s string) string {
	longest, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
