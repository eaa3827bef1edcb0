package suite

// stream.go parses a suite's cases one at a time, so the decoder reads each
// case's nodes right after the parser made them. docs/benchmarks.md ("Suite
// load") has the figures; the whole-file parse in load.go stays the reference
// every streamed load must equal (FuzzStream).

import (
	"bytes"
	"errors"
	"io"

	"go.yaml.in/yaml/v3"
)

// caseLayout is where a suite file's top-level cases list lies, found from
// its lines alone: a `cases:` line at column 1 ends the head; the list's
// items start at lines of one indentation beginning with "- "; the tail, if
// any, starts at the first line back at column 1. Only a file laid out
// exactly so is streamed; anything else is parsed whole.
type caseLayout struct {
	headEnd   int   // offset just past the `cases:` line
	headLines int   // lines of the head, the `cases:` line being the last
	items     []int // offset of each item's first line
	indent    int   // spaces before each item's "-"
	tail      int   // offset of the first line after the list, or len(body)
	tailLine  int   // the 1-based line of tail, when there is one
}

// item is the span of item k: its lines, and the blank and comment lines
// after them; the first item's also the ones before it.
func (l *caseLayout) item(k int) (start, end int) {
	start, end = l.items[k], l.tail
	if k == 0 {
		start = l.headEnd
	}
	if k+1 < len(l.items) {
		end = l.items[k+1]
	}
	return start, end
}

// layoutCases finds the cases list of body. It refuses (false) anything it
// cannot be sure of: a line break other than "\n" or "\r\n" (YAML also
// breaks lines at a lone \r, U+0085, U+2028 and U+2029), a directive or
// document marker, a `cases:` line with a value, an item list at a column
// other than its first item's.
func layoutCases(b []byte) (l caseLayout, ok bool) {
	if loneCR(b) || otherBreak(b) {
		return l, false
	}
	const (
		head = iota
		first
		items
		tail
	)
	state := head
	line := 0
	for pos := 0; pos < len(b); {
		end := len(b)
		next := len(b)
		if i := bytes.IndexByte(b[pos:], '\n'); i >= 0 {
			end, next = pos+i, pos+i+1
		}
		s := bytes.TrimSuffix(b[pos:end], []byte{'\r'}) // a file saved on Windows
		line++
		if len(s) > 0 {
			switch c := s[0]; c {
			case '%':
				return l, false // a directive: parse it whole
			case '-', '.':
				if len(s) >= 3 && s[1] == c && s[2] == c {
					return l, false // a document marker
				}
			}
		}
		switch state {
		case head:
			if casesLine(s) {
				l.headEnd, l.headLines, state = next, line, first
			}
		case first, items:
			if state == items && deeper(s, l.indent) {
				break // most lines: inside the item above (the only deeper ones)
			}
			indent := 0
			for indent < len(s) && s[indent] == ' ' {
				indent++
			}
			rest := s[indent:]
			if len(rest) == 0 || rest[0] == '#' {
				break // a blank or comment line belongs to the item above it
			}
			item := rest[0] == '-' && (len(rest) == 1 || rest[1] == ' ')
			switch {
			case state == first && item:
				l.indent, state = indent, items
				l.items = append(l.items, pos)
			case state == first:
				return l, false // cases: is not followed by a block list
			case indent == l.indent && item:
				l.items = append(l.items, pos)
			case indent == 0 && plainStart(rest[0]):
				// The file goes on with a key of the top-level mapping. Not
				// with a tag or an anchor: parsed on its own, the tail's first
				// line would give it to the tail's mapping.
				l.tail, l.tailLine, state = pos, line, tail
			default:
				return l, false
			}
		}
		pos = next
	}
	if state == head || len(l.items) == 0 {
		return l, false
	}
	if state != tail {
		l.tail = len(b)
	}
	return l, true
}

// plainStart reports whether c starts a plain key a suite uses (version,
// x-anything); a tag, an anchor, a quote or any other indicator does not.
func plainStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
}

// deeper reports whether line s starts with more than n spaces.
func deeper(s []byte, n int) bool {
	if len(s) <= n {
		return false
	}
	for _, c := range s[:n+1] {
		if c != ' ' {
			return false
		}
	}
	return true
}

// casesLine reports whether s is `cases:` with nothing after it but spaces
// and a comment.
func casesLine(s []byte) bool {
	rest, ok := bytes.CutPrefix(s, []byte("cases:"))
	if !ok {
		return false
	}
	t := bytes.TrimLeft(rest, " ")
	return len(t) == 0 || (t[0] == '#' && len(t) < len(rest))
}

// loneCR reports whether b holds a \r that does not start a "\r\n".
func loneCR(b []byte) bool {
	for i := 0; i < len(b); i++ {
		j := bytes.IndexByte(b[i:], '\r')
		if j < 0 {
			return false
		}
		i += j
		if i+1 >= len(b) || b[i+1] != '\n' {
			return true
		}
	}
	return false
}

// otherBreak reports whether b holds U+0085, U+2028 or U+2029, which YAML
// 1.1 (and so yaml.v3) reads as line breaks.
func otherBreak(b []byte) bool {
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], 0xc2)
		k := bytes.IndexByte(b[i:], 0xe2)
		switch {
		case j < 0 && k < 0:
			return false
		case j >= 0 && (k < 0 || j < k):
			i += j
			if i+1 < len(b) && b[i+1] == 0x85 {
				return true
			}
		default:
			i += k
			if i+2 < len(b) && b[i+1] == 0x80 && (b[i+2] == 0xa8 || b[i+2] == 0xa9) {
				return true
			}
		}
		i++
	}
	return false
}

// caseStream parses the head of a file, then each item of its cases list as
// a YAML document of its own, all through one parser: one parser keeps the
// anchors of every document it read, so an alias resolves to the node it
// resolves to in the file. The stream is the file's own bytes with a "---"
// line before each item, which the nodes' lines are corrected for.
type caseStream struct {
	l   *caseLayout
	dec *yaml.Decoder
	// the reader's state: part is the next part to serve (0 the head, then a
	// "---" line and an item for each item); buf what is left of the current.
	b    []byte
	part int
	buf  []byte
	// read counts the items parsed so far.
	read int
}

var docStart = []byte("---\n")

// Read fills p from as many parts as it holds.
func (s *caseStream) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(s.buf) == 0 {
			k := (s.part - 1) / 2 // the item of parts 2k+1 (its "---") and 2k+2
			switch {
			case s.part == 0:
				s.buf = s.b[:s.l.headEnd]
			case k >= len(s.l.items):
				if n == 0 {
					return 0, io.EOF
				}
				return n, nil
			case s.part%2 == 1:
				s.buf = docStart
			default:
				start, end := s.l.item(k)
				s.buf = s.b[start:end]
			}
			s.part++
		}
		c := copy(p[n:], s.buf)
		s.buf = s.buf[c:]
		n += c
	}
	return n, nil
}

// streamRoot parses the head and the tail of body and returns the top-level
// mapping, whose cases list has one nil item per item of the file for item
// to fill; nil means the file is not what the stream can read exactly, and
// must be parsed whole.
func (d *decoder) streamRoot(body []byte, l *caseLayout) (*yaml.Node, *caseStream) {
	s := &caseStream{l: l, b: body}
	s.dec = yaml.NewDecoder(s)
	var doc yaml.Node
	if safeDecode(s.dec, &doc) != nil {
		return nil, nil
	}
	root := topMapping(&doc, 1)
	if root == nil || len(root.Content) < 2 {
		return nil, nil
	}
	at := len(root.Content) - 1 // the cases list's value
	k, v := root.Content[at-1], root.Content[at]
	if k.Value != "cases" || k.Line != l.headLines || v.Kind != yaml.ScalarNode || v.Tag != "!!null" || v.Value != "" {
		return nil, nil
	}
	if l.tail < len(body) {
		// The tail is read by a parser of its own before the cases: an alias
		// in it to an anchor above it fails, and the file is parsed whole.
		dec := yaml.NewDecoder(bytes.NewReader(body[l.tail:]))
		var tdoc, next yaml.Node
		if safeDecode(dec, &tdoc) != nil || !errors.Is(safeDecode(dec, &next), io.EOF) {
			return nil, nil
		}
		t := topMapping(&tdoc, 0)
		if t == nil {
			return nil, nil
		}
		shiftLines(t, 1-l.tailLine) // its first line is line tailLine of the file
		root.Content = append(root.Content, t.Content...)
	}
	root.Content[at] = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq",
		Line: l.headLines + 1 + bytes.Count(body[l.headEnd:l.items[0]], []byte("\n")), Column: l.indent + 1,
		Content: make([]*yaml.Node, len(l.items))}
	return root, s
}

// topMapping returns the block mapping at column 1 a document holds, if its
// keys are plain scalars other than the merge key and at most cases of them
// are cases keys: what the stream's head (1) and tail (0) must be.
func topMapping(doc *yaml.Node, cases int) *yaml.Node {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode || m.Style != 0 || m.Column != 1 || m.Anchor != "" || m.Tag != "!!map" {
		return nil
	}
	for i := 0; i < len(m.Content); i += 2 {
		k := m.Content[i]
		if k.Kind != yaml.ScalarNode || k.Style != 0 || k.Tag != "!!str" || k.Anchor != "" {
			return nil
		}
		if k.Value == "cases" {
			cases--
		}
		if k.Value == "<<" || cases < 0 {
			return nil
		}
	}
	return m
}

// item parses the next item of the cases list; nil means it is not the one
// item of a block list at the layout's column, or the YAML is invalid, and
// the file must be parsed whole.
func (s *caseStream) item() *yaml.Node {
	var doc yaml.Node
	if safeDecode(s.dec, &doc) != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil
	}
	seq := doc.Content[0]
	if seq.Kind != yaml.SequenceNode || seq.Style != 0 || seq.Column != s.l.indent+1 || seq.Anchor != "" || seq.Tag != "!!seq" || len(seq.Content) != 1 {
		return nil
	}
	s.read++
	it := seq.Content[0]
	shiftLines(it, s.read) // one "---" line before each item
	return it
}

// end reports whether the stream held nothing after the last item.
func (s *caseStream) end() bool {
	var doc yaml.Node
	return s.read == len(s.l.items) && errors.Is(safeDecode(s.dec, &doc), io.EOF)
}

// shiftLines moves the nodes of the tree n up by k lines; aliases are not
// followed, so each node is moved once.
func shiftLines(n *yaml.Node, k int) {
	n.Line -= k
	for _, c := range n.Content {
		shiftLines(c, k)
	}
}
