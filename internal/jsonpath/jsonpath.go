// Package jsonpath is the one JSONPath parser and evaluator of Zof: the
// suite validates `expect.json` keys and `capture` values with Parse, and the
// http step evaluates the same parsed Path, so what loads is what runs.
//
// The grammar (docs/suite.md, "JSONPath") is a subset of RFC 9535 with
// single-value segments only:
//
//	path    = "$" *segment
//	segment = "." name / "[" index "]" / "[" quoted "]"
//	name    = 1*( ALPHA / DIGIT / "_" / "-" / non-ASCII )
//	index   = [ "-" ] 1*DIGIT           ; -1 is the last element
//	quoted  = "'" *char "'" / DQUOTE *char DQUOTE   ; \ escapes the next byte
//
// Recursive descent (..), wildcards (*), slices and filters are rejected with
// a hint, not silently misread.
package jsonpath

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Segment is one step of a path: an object key or an array index.
type Segment struct {
	Key     string
	Index   int // negative counts from the end: -1 is the last element
	IsIndex bool
}

// Path is a parsed JSONPath; the empty Path is "$", the whole document.
type Path []Segment

// SyntaxError says why and where a path does not parse.
type SyntaxError struct {
	Path   string // the text given to Parse
	Offset int    // byte offset of the problem in Path
	Reason string // what is wrong and what to write instead
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("JSONPath %q: %s", e.Path, e.Reason)
}

// Parse parses p, naming the offset of the first problem in a *SyntaxError.
func Parse(p string) (Path, error) {
	fail := func(off int, format string, args ...any) (Path, error) {
		return nil, &SyntaxError{Path: p, Offset: off, Reason: fmt.Sprintf(format, args...)}
	}
	if !strings.HasPrefix(p, "$") {
		return fail(0, "must start with $, e.g. $.token or $.items[0].id")
	}
	var out Path
	for i := 1; i < len(p); {
		switch p[i] {
		case '.':
			j := i + 1
			for j < len(p) && isNameByte(p[j]) {
				j++
			}
			if j == i+1 {
				switch {
				case j < len(p) && p[j] == '.':
					return fail(i, "recursive descent (..) is not supported; write the full path")
				case j < len(p) && p[j] == '*':
					return fail(i, "wildcards are not supported; index the element, e.g. [0]")
				}
				return fail(i, "empty name after . at offset %d; use ['name'] for names with other characters", i)
			}
			out = append(out, Segment{Key: p[i+1 : j]})
			i = j
		case '[':
			if i+1 < len(p) && (p[i+1] == '\'' || p[i+1] == '"') {
				key, next, ok := quoted(p, i+1)
				if !ok {
					return fail(i+1, "unterminated quote at offset %d", i+1)
				}
				if next >= len(p) || p[next] != ']' {
					return fail(next, "missing ] at offset %d", next)
				}
				out = append(out, Segment{Key: key})
				i = next + 1
				continue
			}
			end := strings.IndexByte(p[i:], ']')
			if end < 0 {
				return fail(i, "unclosed [ at offset %d", i)
			}
			in := p[i+1 : i+end]
			if in == "*" {
				return fail(i, "wildcards are not supported; index the element, e.g. [0]")
			}
			n, ok := index(in)
			if !ok {
				return fail(i, "[%s] at offset %d is neither an index [N] or [-N] (from the end) nor a quoted name ['name']; filters and slices are not supported", in, i)
			}
			out = append(out, Segment{Index: n, IsIndex: true})
			i += end + 1
		default:
			return fail(i, "unexpected %q at offset %d; segments are .name, ['name'] or [N]", p[i], i)
		}
	}
	return out, nil
}

// index reads [-]digits, nothing else (no +, spaces or underscores), within int.
func index(s string) (int, bool) {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// quoted reads a quoted key starting at the quote at p[i]; a backslash
// escapes the next byte. It returns the key and the offset after the quote.
func quoted(p string, i int) (string, int, bool) {
	q := p[i]
	var b strings.Builder
	for j := i + 1; j < len(p); j++ {
		switch c := p[j]; {
		case c == '\\' && j+1 < len(p):
			j++
			b.WriteByte(p[j])
		case c == q:
			return b.String(), j + 1, true
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, false
}

// isNameByte: ASCII letters, digits, _ and -, and any byte of a non-ASCII
// UTF-8 character (RFC 9535 member-name-shorthand, plus -).
func isNameByte(c byte) bool {
	return c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// String writes the path back in canonical form, which Parse reads back to
// the same Path.
func (p Path) String() string {
	var b strings.Builder
	b.WriteByte('$')
	for _, s := range p {
		switch {
		case s.IsIndex:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.Index))
			b.WriteByte(']')
		case plainName(s.Key):
			b.WriteByte('.')
			b.WriteString(s.Key)
		default:
			b.WriteString("['")
			b.WriteString(strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s.Key))
			b.WriteString("']")
		}
	}
	return b.String()
}

func plainName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return true
}

// Lookup resolves the path in a document decoded by encoding/json (objects
// as map[string]any, arrays as []any). When it does not resolve, the error
// says where and why ("$.items has 2 elements, no [5]").
func (p Path) Lookup(doc any) (any, error) {
	cur := doc
	for i, s := range p {
		if s.IsIndex {
			arr, ok := cur.([]any)
			if !ok {
				return nil, fmt.Errorf("%s is %s, not an array", p[:i], KindOf(cur))
			}
			n := s.Index
			if n < 0 {
				n += len(arr)
			}
			if n < 0 || n >= len(arr) {
				return nil, fmt.Errorf("%s has %d elements, no [%d]", p[:i], len(arr), s.Index)
			}
			cur = arr[n]
			continue
		}
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s is %s, not an object", p[:i], KindOf(cur))
		}
		v, ok := obj[s.Key]
		if !ok {
			return nil, fmt.Errorf("%s has no key %q", p[:i], s.Key)
		}
		cur = v
	}
	return cur, nil
}

// KindOf names the JSON kind of a decoded value for messages ("an array").
func KindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
