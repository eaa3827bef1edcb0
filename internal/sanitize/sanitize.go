// Package sanitize is zof's one way to make text from outside (command
// output, response bodies, names, server problem details) safe to print: in
// a CI log, a terminal, a table or XML. The public client uses it too: it is
// an implementation detail, not part of any API.
package sanitize

import (
	"strings"
	"unicode/utf8"
)

// Text makes text from outside (command output, response bodies, names)
// safe to print in a CI log and to put in XML 1.0:
//   - ANSI escape sequences (CSI, OSC, and two-byte ESC sequences) are removed;
//   - "\r\n" and a lone "\r" become "\n" (a "\r" would let output overwrite log lines);
//   - other C0 controls, DEL and C1 controls are removed; "\t" and "\n" stay;
//   - U+FFFE and U+FFFF (not characters in XML 1.0) are removed;
//   - each byte of invalid UTF-8 becomes U+FFFD, so a reader sees something was there.
//
// The result is valid UTF-8 made only of characters XML 1.0 allows.
func Text(s string) string {
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

// Line is Text for one-line slots (names, ids, reasons, a server's detail in
// an error message): tabs and line breaks become single spaces, so outside
// text cannot forge another log line or break a table's columns.
func Line(s string) string {
	s = Text(s)
	if strings.ContainsAny(s, "\n\t") {
		s = strings.Join(strings.Fields(strings.ReplaceAll(s, "\t", " ")), " ")
	}
	return s
}
