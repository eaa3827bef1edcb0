package suite

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Load reads and validates the suite file at path. On any error-severity
// problem it returns a *Error (exit code 64) listing every problem.
func Load(path string, opts Options) (*Suite, error) {
	f, err := os.Open(path)
	if err != nil {
		hint := "check the path (--suite or ZOF_SUITE)"
		msg := "cannot read suite file: " + err.Error()
		if errors.Is(err, fs.ErrNotExist) {
			msg = "suite file not found"
			hint = "create zof.yaml at the repository root, or point --suite / ZOF_SUITE at the file"
		}
		return nil, &Error{Problems: []Problem{{File: path, Message: msg, Hint: hint}}}
	}
	defer f.Close()
	var size int64
	if st, err := f.Stat(); err == nil {
		size = st.Size()
		if st.IsDir() {
			return nil, &Error{Problems: []Problem{{File: path, Message: "is a directory, not a suite file", Hint: "point --suite at the zof.yaml file inside it"}}}
		}
		if st.Mode().IsRegular() && st.Size() > MaxFileSize {
			return nil, &Error{Problems: []Problem{tooBig(path)}}
		}
	}
	return parse(path, f, size, opts)
}

func tooBig(name string) Problem {
	return Problem{File: name, Message: fmt.Sprintf("suite file is larger than %d MiB", MaxFileSize>>20),
		Hint: "a suite is a small YAML file; is --suite pointing at the right file?"}
}

// Parse reads a suite from r; name is used in problems (usually the path).
// It never reads more than MaxFileSize+1 bytes.
func Parse(name string, r io.Reader, opts Options) (*Suite, error) {
	var size int64
	if l, ok := r.(interface{ Len() int }); ok { // bytes.Reader, strings.Reader, bytes.Buffer
		size = int64(l.Len())
	}
	return parse(name, r, size, opts)
}

// parse reads r into one buffer sized by size (the file's size, when known)
// instead of growing it by doubling.
func parse(name string, r io.Reader, size int64, opts Options) (*Suite, error) {
	var buf bytes.Buffer
	if size > 0 && size <= MaxFileSize {
		buf.Grow(int(size) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(io.LimitReader(r, MaxFileSize+1))
	src := buf.Bytes()
	if err != nil {
		return nil, &Error{Problems: []Problem{{File: name, Message: "cannot read suite file: " + err.Error()}}}
	}
	if len(src) > MaxFileSize {
		return nil, &Error{Problems: []Problem{tooBig(name)}}
	}
	return parseBytes(name, src, opts)
}

// streamCases turns on parsing the cases one at a time (stream.go); the
// tests turn it off to compare with the whole-file parse.
var streamCases = true

func parseBytes(name string, src []byte, opts Options) (*Suite, error) {
	s, how, err := parseOnce(name, src, opts, streamCases)
	if how == gaveUp {
		// The stream met something it does not read exactly as the whole
		// parse does (or a problem the whole parse words): parse it whole.
		s, _, err = parseOnce(name, src, opts, false)
	}
	return s, err
}

// How parseOnce read a file.
type parsed int

const (
	whole    parsed = iota // the file was parsed whole
	streamed               // its cases were parsed one at a time (stream.go)
	gaveUp                 // the stream gave up: parse it whole
)

// parseOnce loads src, streaming its cases if stream is set and the file's
// layout allows.
func parseOnce(name string, src []byte, opts Options, stream bool) (*Suite, parsed, error) {
	d := &decoder{file: name, src: src, lookup: opts.Lookup, streaming: stream}
	root := d.parseYAML(src)
	if root == nil {
		return nil, whole, &Error{Problems: sortProblems(d.probs)}
	}
	s := d.decodeSuite(root, opts)
	within := d.size.finish()
	how := whole
	if st := d.size.stream; st != nil {
		if !within || !st.end() {
			return nil, gaveUp, nil
		}
		how = streamed
	}
	if !within {
		// Decoding stopped at the item that broke a limit; what it found
		// before does not matter: the file is refused as a whole, exactly
		// as the walk over the whole tree reports it.
		d.probs, d.seen, d.dropped = nil, nil, 0
		d.checkSize(root)
		return nil, how, &Error{Problems: d.probs}
	}
	s.File = name
	sum := sha256.Sum256(src)
	s.Digest = hex.EncodeToString(sum[:])
	probs := sortProblems(d.probs)
	if d.dropped > 0 {
		probs = append(probs, Problem{File: name, Severity: SeverityWarning, Message: fmt.Sprintf("%d more problems not shown", d.dropped),
			Hint: "fix the ones above and run again"})
	}
	if hasErrors(probs) {
		return nil, how, &Error{Problems: probs}
	}
	s.Warnings = probs
	return s, how, nil
}

// parseYAML checks the bytes and parses them into the top-level mapping
// node, and starts bounding its size; nil means problems were recorded and
// decoding cannot go on.
func (d *decoder) parseYAML(src []byte) *yaml.Node {
	root := d.parseTree(src)
	if root == nil {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		if d.checkSize(root) {
			d.errAt(root, "the file is a mapping of fields: version: 1, project: ..., cases: [...]", "top level: expected a mapping, got %s", describe(root))
		}
		return nil
	}
	if !d.size.start(root) {
		d.checkSize(root)
		return nil
	}
	return root
}

// parseTree checks the bytes and parses them into the root node of the
// file's one document; nil means problems were recorded.
func (d *decoder) parseTree(src []byte) *yaml.Node {
	if p, ok := d.checkText(src); !ok {
		d.probs = append(d.probs, p)
		return nil
	}
	body := bytes.TrimPrefix(src, []byte("\xef\xbb\xbf"))
	if countStructure(body) > MaxNodes/2 {
		d.add(SeverityError, 0, 0, fmt.Sprintf("suite file has more than %d YAML values", MaxNodes/2),
			"a suite is a small YAML file; is --suite pointing at the right file?")
		return nil
	}
	if d.streaming {
		if l, ok := layoutCases(body); ok {
			if root, s := d.streamRoot(body, &l); root != nil {
				d.size.stream = s
				return root
			}
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(body))
	var doc yaml.Node
	if err := safeDecode(dec, &doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.empty()
			return nil
		}
		d.yamlError(err)
		return nil
	}
	var next yaml.Node
	if err := safeDecode(dec, &next); err == nil {
		d.add(SeverityError, next.Line, 1, "suite file has more than one YAML document", "remove the `---` separator: everything belongs in one document")
		return nil
	} else if !errors.Is(err, io.EOF) {
		d.yamlError(err)
		return nil
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			d.empty()
			return nil
		}
		root = root.Content[0]
	}
	if isNull(root) {
		d.empty()
		return nil
	}
	return root
}

func (d *decoder) empty() {
	d.add(SeverityError, 0, 0, "suite file is empty: start with `version: 1`", "then add `cases:`, a list of cases, each with an `id` and `steps`")
}

// checkText refuses input that is not UTF-8 text before YAML sees it.
func (d *decoder) checkText(src []byte) (Problem, bool) {
	if bytes.HasPrefix(src, []byte{0xff, 0xfe}) || bytes.HasPrefix(src, []byte{0xfe, 0xff}) {
		return Problem{File: d.file, Message: "suite file is UTF-16 encoded", Hint: "save it as UTF-8"}, false
	}
	bad := -1
	if i := bytes.IndexByte(src, 0); i >= 0 {
		bad = i
	}
	if !utf8.Valid(src) {
		for i := 0; i < len(src); {
			r, size := utf8.DecodeRune(src[i:])
			if r == utf8.RuneError && size == 1 {
				if bad < 0 || i < bad {
					bad = i
				}
				break
			}
			i += size
		}
	}
	if bad < 0 {
		return Problem{}, true
	}
	line := 1 + bytes.Count(src[:bad], []byte("\n"))
	col := 1 + utf8.RuneCount(src[bytes.LastIndexByte(src[:bad], '\n')+1:bad])
	return Problem{File: d.file, Line: line, Col: col,
		Message: fmt.Sprintf("suite file is not UTF-8 text (byte 0x%02x): is this a binary file?", src[bad]),
		Hint:    "a suite file is YAML text saved as UTF-8; check that --suite points at zof.yaml"}, false
}

// countStructure is a cheap upper-bound estimate of a YAML file's values
// (about one per line, comma or bracket), checked before parsing so a huge
// file of tiny values cannot make the parser allocate gigabytes.
func countStructure(b []byte) int {
	// One vectorised count per byte value is several times faster than one
	// loop over the bytes testing all four.
	return bytes.Count(b, []byte{'\n'}) + bytes.Count(b, []byte{','}) + bytes.Count(b, []byte{'['}) + bytes.Count(b, []byte{'{'})
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns a yaml.v3 syntax error into problems; tabs used for
// indentation are reported line by line instead, since they are the cause.
func (d *decoder) yamlError(err error) {
	if d.tabs() {
		return
	}
	msg := err.Error()
	line := 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	hint := "check the indentation and quoting of this line and the one above"
	switch {
	case strings.Contains(msg, "mapping values are not allowed"):
		hint = "a value containing \": \" must be quoted, or the indentation is off"
	case strings.Contains(msg, "could not find expected ':'"):
		hint = "a key needs a colon; a multi-line string needs | or quotes"
	case strings.Contains(msg, "found character that cannot start any token"):
		hint = "quote values that start with @, ` or %"
	case strings.Contains(msg, "did not find expected"):
		hint = "check the indentation: items of one list or mapping line up"
	case strings.Contains(msg, "unknown anchor"):
		hint = "define the anchor (&name) before using the alias (*name)"
	case strings.Contains(msg, "exceeded max depth"):
		hint = fmt.Sprintf("a suite is nested at most %d levels deep", MaxDepth)
	}
	col := 0
	if line > 0 {
		col = 1
	}
	d.add(SeverityError, line, col, "invalid YAML: "+msg, hint)
}

// maxTabProblems bounds tab reports: after a few lines the point is made.
const maxTabProblems = 20

// tabs reports lines indented with tabs; it returns whether it found any.
func (d *decoder) tabs() bool {
	found := 0
	line := 0
	for _, l := range bytes.Split(d.src, []byte("\n")) {
		line++
		for i, c := range l {
			if c == ' ' {
				continue
			}
			if c == '\t' {
				if found < maxTabProblems {
					d.add(SeverityError, line, i+1, "tab character used for indentation: YAML allows only spaces",
						"replace the tabs with spaces (2 per level is usual); most editors can show and convert them")
				}
				found++
			}
			break
		}
	}
	if found > maxTabProblems {
		d.add(SeverityError, line, 1, fmt.Sprintf("%d more lines are indented with tabs", found-maxTabProblems), "replace every tab used for indentation with spaces")
	}
	return found > 0
}

// checkSize walks the whole tree as a decoder would (following aliases), in
// document order, and refuses it when it is too deep, contains itself or
// expands to more than MaxNodes nodes, reporting the first offending node.
// A normal load does not call it: sizeGuard makes the same decision in the
// decoder's own pass, and checkSize only words the refusal.
func (d *decoder) checkSize(root *yaml.Node) bool {
	w := sizeWalker{budget: MaxNodes}
	if w.walk(root, 0) {
		return true
	}
	d.sizeProblem(&w)
	return false
}

func (d *decoder) sizeProblem(w *sizeWalker) {
	switch {
	case w.cycle != nil:
		d.errAt(w.at, "an anchored value cannot contain an alias to itself", "alias *%s refers to the value that contains it", w.cycle.Anchor)
	case w.tooDeep:
		d.errAt(w.at, "flatten the structure", "suite file is nested more than %d levels deep", MaxDepth)
	default:
		d.errAt(w.at, "aliases (*name) that repeat large anchors multiply the file's size; this looks like a YAML bomb",
			"suite file expands to more than %d YAML values", MaxNodes)
	}
}

// sizeGuard bounds the tree the decoder walks (MaxNodes after alias
// expansion, MaxDepth, no alias inside its own anchor) without a separate
// pass over it. start walks everything but the items of the top-level cases
// list, which is nearly the whole file; the decoder walks each case item just
// before it decodes it (walkItem), while the item's nodes are in the CPU's
// cache, instead of a pass over a tree of a million cold nodes and then
// another. It counts the same nodes in the same contexts (depth, aliases
// being expanded) as checkSize, so it refuses exactly the same files, and
// the decoder never sees a node the guard has not counted: its work stays
// bounded by MaxNodes whatever the file.
type sizeGuard struct {
	w      sizeWalker
	failed bool
	// cases is the top-level cases list whose items are counted one by one
	// (nil: none, everything was counted by start); walked of them so far.
	cases  *yaml.Node
	walked int
	// stream, when not nil, parses the items of cases as they are walked.
	stream *caseStream
}

// start counts the top-level mapping root and everything under it except the
// items of its cases list, and reports whether no limit was broken.
func (g *sizeGuard) start(root *yaml.Node) bool {
	g.w = sizeWalker{budget: MaxNodes - 1} // root itself, at depth 0
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag != "!!merge" && k.Value == "cases" {
			if v.Kind == yaml.SequenceNode {
				g.cases = v
			}
			break // the decoder reads the first cases key; any other is counted here
		}
	}
	for _, c := range root.Content {
		if c == g.cases {
			g.w.budget-- // the list itself, at depth 1; its items come later
			if g.w.budget < 0 {
				g.failed = true
				return false
			}
			continue
		}
		if !g.w.walk(c, 1) {
			g.failed = true
			return false
		}
	}
	return true
}

// walkItem counts the items of list n up to item i, in order, before the
// decoder reads item i; false means a limit is broken and decoding must
// stop. Items of any other list were counted by start.
func (g *sizeGuard) walkItem(n *yaml.Node, i int) bool {
	if n != g.cases {
		return !g.failed
	}
	for !g.failed && g.walked <= i && g.walked < len(n.Content) {
		if n.Content[g.walked] == nil {
			// A streamed item (stream.go), parsed now: nil stops decoding
			// and the file is parsed whole.
			it := g.stream.item()
			if it == nil {
				g.failed = true
				break
			}
			n.Content[g.walked] = it
		}
		g.failed = !g.w.walk(n.Content[g.walked], 2)
		g.walked++
	}
	return !g.failed
}

// finish counts the items the decoder did not read (after a refusal it stops
// early; a second cases key is not read at all) and reports whether the
// whole file stayed within the limits.
func (g *sizeGuard) finish() bool {
	if g.cases != nil {
		g.walkItem(g.cases, len(g.cases.Content)-1)
	}
	return !g.failed
}

type sizeWalker struct {
	budget  int
	tooDeep bool
	at      *yaml.Node
	cycle   *yaml.Node
	active  []*yaml.Node // anchors being expanded
}

func (w *sizeWalker) walk(n *yaml.Node, depth int) bool {
	if n == nil {
		return true
	}
	w.budget--
	if w.budget < 0 {
		w.at = n
		return false
	}
	if depth > MaxDepth {
		w.tooDeep, w.at = true, n
		return false
	}
	if n.Kind == yaml.AliasNode {
		for _, a := range w.active {
			if a == n.Alias {
				w.cycle, w.at = n.Alias, n
				return false
			}
		}
		w.active = append(w.active, n.Alias)
		ok := w.walk(n.Alias, depth+1)
		w.active = w.active[:len(w.active)-1]
		if !ok {
			w.at = n // report the outermost alias: that is the line to fix
		}
		return ok
	}
	for _, c := range n.Content {
		if c != nil && c.Kind == yaml.ScalarNode {
			// A leaf: the checks a call would make, without the call. The
			// loop's loads do not depend on each other, so the CPU fetches
			// several of these cold nodes at once.
			w.budget--
			if w.budget < 0 {
				w.at = c
				return false
			}
			if depth+1 > MaxDepth {
				w.tooDeep, w.at = true, c
				return false
			}
			continue
		}
		if !w.walk(c, depth+1) {
			return false
		}
	}
	return true
}

// safeDecode turns a panic inside the YAML library into an error: whatever
// the input, loading a suite reports a problem and never crashes the job.
func safeDecode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: the YAML parser failed on this file (%v)", r)
		}
	}()
	return dec.Decode(n)
}
