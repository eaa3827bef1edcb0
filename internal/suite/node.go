package suite

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// decoder walks yaml.Node trees and collects every problem.
type decoder struct {
	file   string
	src    []byte
	lines  []int // byte offset of each line start, built lazily
	lookup func(string) (string, bool)
	probs  []Problem
	seen   map[Problem]bool
	// dropped counts problems past MaxProblems.
	dropped int

	// unset, when non-nil, receives unknown-${VAR} problems instead of
	// probs (environments: only the used one must resolve).
	unset *[]Problem
	// secrets, when non-nil, receives secret values.
	secrets *[]string
	// refs receives the ${vars.X}/${capture.X} uses of the case being
	// decoded while inSteps (elsewhere they are not allowed); its array is
	// reused from case to case, and so is expanded, expand's.
	refs     []refUse
	inSteps  bool
	expanded []runtimeRef
	step     int // index of the step being decoded, for refs

	// size bounds the nodes decoded (MaxNodes, MaxDepth, alias cycles).
	size sizeGuard
	// streaming: parse the cases one at a time where the layout allows.
	streaming bool

	// trail is the path below the value writeJSON started at.
	trail []at
	json  []byte // the chunk toJSON writes into
	// checked remembers the verdicts on path patterns and JSONPaths: a
	// suite repeats the same few (services/cart/**, $.id) in many cases.
	patternChecks  map[string]patternCheck
	jsonPathChecks map[string]jsonPathCheck
}

// refUse is a runtime placeholder used by step `step` of a case; its
// position is only computed when it is reported.
type refUse struct {
	runtimeRef
	step int
	node *yaml.Node
}

// pair is one key/value of a mapping.
type pair struct {
	key  string
	k, v *yaml.Node
}

// textMode says how a string value is expanded.
type textMode struct {
	expand   bool // ${VAR} expansion
	secretEx bool // values substituted from Lookup are secrets (headers, env)
	secret   bool // the whole value is a secret
}

var (
	expanded = textMode{expand: true}
	secretEx = textMode{expand: true, secretEx: true}
)

func (d *decoder) add(sev Severity, line, col int, msg, hint string) {
	d.push(Problem{File: d.file, Line: line, Col: col, Severity: sev, Message: msg, Hint: hint})
}

// push records a problem once. Past MaxProblems it only counts: a hostile
// file (one alias repeated 100,000 times) must not turn into a gigabyte of
// identical messages.
func (d *decoder) push(p Problem) {
	if d.full() {
		d.dropped++
		return
	}
	if d.seen == nil {
		d.seen = map[Problem]bool{}
	}
	if d.seen[p] {
		return
	}
	d.seen[p] = true
	d.probs = append(d.probs, p)
}

func (d *decoder) full() bool { return len(d.probs) >= MaxProblems }

func (d *decoder) errAt(n *yaml.Node, hint, format string, args ...any) {
	if d.full() {
		d.dropped++
		return
	}
	line, col := pos(n)
	d.add(SeverityError, line, col, fmt.Sprintf(format, args...), hint)
}

func (d *decoder) warnAt(n *yaml.Node, hint, format string, args ...any) {
	if d.full() {
		d.dropped++
		return
	}
	line, col := pos(n)
	d.add(SeverityWarning, line, col, fmt.Sprintf(format, args...), hint)
}

func pos(n *yaml.Node) (int, int) {
	if n == nil {
		return 0, 0
	}
	return n.Line, n.Column
}

// deref follows an alias to its anchored node.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// describe names what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	n = deref(n)
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "an empty value"
		case "!!bool":
			return "a boolean (" + n.Value + ")"
		case "!!int", "!!float":
			return "a number (" + n.Value + ")"
		case "!!str":
			return "a string (" + quote(n.Value) + ")"
		}
		return "a " + strings.TrimPrefix(n.Tag, "!!") + " value"
	}
	return "a value"
}

// at names where a value sits, as problems write it:
// cases[3].steps[0].expect. The decoder adds one link per level as it
// descends (field, item), on its own stack: nothing is allocated or written
// for the hundreds of thousands of values of a valid file, and the text is
// only built, from the chain, when a problem is reported.
type at struct {
	up   *at
	name string // a field's key, a root's name, or a bracketed key
	i    int    // a list item's index
	kind atKind
	// trail (atTrail) is the path below up as segments, for writeJSON: a
	// recursive function cannot chain links on its stack (Go's escape
	// analysis would move every link of a recursion to the heap).
	trail []at
}

type atKind uint8

const (
	atField   atKind = iota // up.name, or name at the start
	atItem                  // up[i]
	atBracket               // up[name] (a JSONPath key)
	atTrail                 // up, then the segments of trail
)

// rootAt starts a chain: a top-level section or a fixed name ("top level").
func rootAt(name string) *at { return &at{name: name} }

func (a *at) field(key string) *at   { return &at{up: a, name: key} }
func (a *at) item(i int) *at         { return &at{up: a, i: i, kind: atItem} }
func (a *at) bracket(key string) *at { return &at{up: a, name: key, kind: atBracket} }

// String renders the chain; only problems call it.
func (a *at) String() string {
	var b []byte
	return string(a.append(b))
}

func (a *at) append(b []byte) []byte {
	if a == nil {
		return b
	}
	b = a.up.append(b)
	if a.kind == atTrail {
		for i := range a.trail {
			b = a.trail[i].piece(b)
		}
		return b
	}
	return a.piece(b)
}

// piece appends a's own segment, after the text of a.up.
func (a *at) piece(b []byte) []byte {
	switch a.kind {
	case atItem:
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(a.i), 10)
		return append(b, ']')
	case atBracket:
		b = append(b, '[')
		b = append(b, a.name...)
		return append(b, ']')
	}
	if len(b) > 0 {
		b = append(b, '.')
	}
	return append(b, a.name...)
}

// entries are a mapping's key/value pairs, in order, as one list of nodes:
// key, value, key, value... (every key a scalar, aliases followed). For the
// usual mapping (at most 16 plain string keys, no merge key, no repeat) the
// list is the node's own Content and costs nothing; otherwise it is built
// (merge keys applied, problems left out).
type entries struct {
	kv []*yaml.Node
}

// all yields the pairs in order: for p := range ps.all { ... }.
//
// It is kept out of line: inlined, Go's escape analysis moves the path
// links (at) that loop bodies chain on the stack to the heap, about 19 more
// allocations per case (measured, docs/benchmarks.md).
//
//go:noinline
func (e entries) all(yield func(pair) bool) {
	for i := 0; i+1 < len(e.kv); i += 2 {
		if !yield(pair{key: e.kv[i].Value, k: e.kv[i], v: e.kv[i+1]}) {
			return
		}
	}
}

func (e entries) len() int { return len(e.kv) / 2 }

func (e entries) has(key string) bool {
	for i := 0; i+1 < len(e.kv); i += 2 {
		if e.kv[i].Value == key {
			return true
		}
	}
	return false
}

// maxViewKeys bounds the mappings read as a view: their keys are checked for
// repeats pairwise, and bigger ones (rare: long header lists, JSON bodies)
// go through a map.
const maxViewKeys = 16

// plainKeys reports whether content's keys are plain strings, none a merge
// key or a repeat: then the mapping is read as it is, without a copy.
func plainKeys(c []*yaml.Node) bool {
	if len(c) > 2*maxViewKeys {
		return false
	}
	for i := 0; i+1 < len(c); i += 2 {
		k := c[i]
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			return false
		}
		for j := 0; j < i; j += 2 {
			if c[j].Value == k.Value {
				return false
			}
		}
	}
	return true
}

// knownKeys reports whether content's keys are plain strings, each a
// distinct field of known: the case plainKeys and an all-known check accept
// together, decided in one pass that compares each key with the field names
// once (a repeat is the same field twice) instead of with every other key.
func knownKeys(c []*yaml.Node, known []string) bool {
	if len(c) > 2*maxViewKeys || len(known) > 64 {
		return false
	}
	var seen uint64
	for i := 0; i+1 < len(c); i += 2 {
		k := c[i]
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			return false
		}
		j := slices.Index(known, k.Value)
		if j < 0 || seen&(1<<j) != 0 {
			return false
		}
		seen |= 1 << j
	}
	return true
}

// pairs returns a mapping's entries with merge keys (<<: *anchor) applied,
// reporting duplicate keys. ok is false when n is not a mapping.
func (d *decoder) pairs(n *yaml.Node, path *at, want string) (entries, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		if want == "" {
			want = "a mapping"
		}
		d.errAt(n, "", "%s: expected %s, got %s", path.String(), want, describe(n))
		return entries{}, false
	}
	if plainKeys(n.Content) {
		return entries{kv: n.Content}, true
	}
	out := make([]*yaml.Node, 0, len(n.Content))
	var merged []*yaml.Node
	var seen map[string]*yaml.Node
	if len(n.Content) > 2*maxViewKeys {
		seen = make(map[string]*yaml.Node, len(n.Content)/2)
	}
	find := func(key string) *yaml.Node {
		if seen != nil {
			return seen[key]
		}
		for i := 0; i < len(out); i += 2 {
			if out[i].Value == key {
				return out[i]
			}
		}
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merged = append(merged, d.merge(v, path)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.errAt(k, "keys are plain names", "%s: a key must be a string, got %s", path.String(), describe(k))
			continue
		}
		if first := find(k.Value); first != nil {
			d.errAt(k, fmt.Sprintf("remove one; the first is at line %d", first.Line), "%s: duplicate key %q", path.String(), k.Value)
			continue
		}
		if seen != nil {
			seen[k.Value] = k
		}
		out = append(out, k, v)
	}
	if len(merged) > 0 {
		var keep []*yaml.Node
		have := map[string]bool{}
		for i := 0; i < len(out); i += 2 {
			have[out[i].Value] = true
		}
		for i := 0; i+1 < len(merged); i += 2 {
			if k := merged[i]; !have[k.Value] {
				have[k.Value] = true
				keep = append(keep, k, merged[i+1])
			}
		}
		out = append(keep, out...)
	}
	return entries{kv: out}, true
}

// merge returns the entries a merge key brings in, key, value, key,
// value...: from one mapping or a list of them.
func (d *decoder) merge(v *yaml.Node, path *at) []*yaml.Node {
	v = deref(v)
	var maps []*yaml.Node
	switch v.Kind {
	case yaml.MappingNode:
		maps = []*yaml.Node{v}
	case yaml.SequenceNode:
		maps = v.Content
	default:
		d.errAt(v, "merge a mapping: <<: *anchor", "%s: << expects a mapping or a list of mappings, got %s", path.String(), describe(v))
		return nil
	}
	var out []*yaml.Node
	for _, m := range maps {
		// pairs and merge call each other: a link chained on the stack
		// here would make every path escape (see at.trail); merge keys are
		// rare, so this one path is written out.
		ps, ok := d.pairs(m, rootAt(path.String()+".<<"), "")
		if ok {
			out = append(out, ps.kv...)
		}
	}
	return out
}

// object is pairs plus a check that every key is a field of ctx.
func (d *decoder) object(n *yaml.Node, path *at, ctx string) (entries, bool) {
	known := fields[ctx]
	m := deref(n)
	if m != nil && m.Kind == yaml.MappingNode && knownKeys(m.Content, known) {
		return entries{kv: m.Content}, true // the usual mapping, read in place
	}
	want := "a mapping" // the context is only named when it is not one
	if m == nil || m.Kind != yaml.MappingNode {
		want = "a mapping (" + ctx + ")"
	}
	ps, ok := d.pairs(n, path, want)
	if !ok {
		return entries{}, false
	}
	all := true
	for p := range ps.all {
		if !slices.Contains(known, p.key) {
			all = false
			break
		}
	}
	if all {
		return ps, true
	}
	out := make([]*yaml.Node, 0, len(ps.kv))
	for p := range ps.all {
		if slices.Contains(known, p.key) {
			out = append(out, p.k, p.v)
			continue
		}
		if ctx == "suite" && strings.HasPrefix(p.key, "x-") {
			continue // extension keys hold anchors to reuse (<<: *x or *x)
		}
		d.errAt(p.k, unknownHint(p.key, ctx), "%s: unknown field %q in %s", path.String(), p.key, ctxName[ctx])
	}
	return entries{kv: out}, true
}

// require reports fields of ctx that ps lacks.
func (d *decoder) require(n *yaml.Node, ps entries, path *at, hint string, names ...string) {
	for _, name := range names {
		if !ps.has(name) {
			d.errAt(deref(n), hint, "%s: missing required field %q", path.String(), name)
		}
	}
}

// unknownHint suggests the closest field of ctx, or where the field belongs.
func unknownHint(key, ctx string) string {
	if s := closest(key, fields[ctx]); s != "" {
		return fmt.Sprintf("did you mean %q?", s)
	}
	for _, other := range ctxOrder {
		if other != ctx && slices.Contains(fields[other], key) {
			return fmt.Sprintf("%q is a field of %s, not of %s", key, ctxName[other], ctxName[ctx])
		}
	}
	return "valid fields: " + strings.Join(fields[ctx], ", ")
}

// closest returns the candidate nearest to s by edit distance, if near enough
// to be a typo (at most a third of the word, and at least one edit allowed).
func closest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	ls := strings.ToLower(s)
	for _, c := range candidates {
		if ls == c {
			return c
		}
		dist := levenshtein(ls, c)
		if dist < bestD {
			best, bestD = c, dist
		}
	}
	max := utf8.RuneCountInString(s) / 3
	if max < 1 {
		max = 1
	}
	if max > 3 {
		max = 3
	}
	if bestD <= max {
		return best
	}
	return ""
}

// levenshtein is the optimal-string-alignment distance: insertions,
// deletions, substitutions and swaps of neighbours ("stpes") count one each.
func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return 1 << 20
	}
	m := make([][]int, len(ra)+1)
	for i := range m {
		m[i] = make([]int, len(rb)+1)
		m[i][0] = i
	}
	for j := range m[0] {
		m[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			m[i][j] = min(m[i-1][j]+1, m[i][j-1]+1, m[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				m[i][j] = min(m[i][j], m[i-2][j-2]+1)
			}
		}
	}
	return m[len(ra)][len(rb)]
}

// seq returns a list's items.
func (d *decoder) seq(n *yaml.Node, path *at, hint string) ([]*yaml.Node, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		d.errAt(n, hint, "%s: expected a list, got %s", path.String(), describe(n))
		return nil, false
	}
	return n.Content, true
}

// scalar returns a scalar's text; any non-null scalar is accepted as text.
func (d *decoder) scalar(n *yaml.Node, path *at, what string) (string, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errAt(n, "", "%s: expected %s, got %s", path.String(), what, describe(n))
		return "", false
	}
	return n.Value, true
}

// text returns a string value, expanded according to mode.
func (d *decoder) text(n *yaml.Node, path *at, mode textMode) (string, bool) {
	s, ok := d.scalar(n, path, "a string")
	if !ok {
		return "", false
	}
	if mode.secret && s != "" && !mode.expand {
		d.secret(s)
	}
	if !mode.expand {
		return s, true
	}
	x := expand(s, d.lookup, d.expanded[:0])
	d.expanded = x.refs[:0]
	n = deref(n)
	ok = true
	for _, e := range x.errs {
		line, col := d.posAt(n, e.off)
		p := Problem{File: d.file, Line: line, Col: col, Severity: SeverityError, Message: path.String() + ": " + e.msg, Hint: e.hint}
		if e.unset && d.unset != nil {
			if len(*d.unset) < MaxProblems {
				*d.unset = append(*d.unset, p)
			}
		} else {
			d.push(p)
		}
		ok = false
	}
	for _, r := range x.refs {
		if !d.inSteps {
			line, col := d.posAt(n, r.off)
			d.add(SeverityError, line, col, fmt.Sprintf("%s: ${%s.%s} is only available inside a case's steps", path.String(), r.kind, r.name),
				"use ${VAR} from the environment here")
			ok = false
			continue
		}
		d.refs = append(d.refs, refUse{runtimeRef: r, step: d.step, node: n})
	}
	if mode.secret {
		d.secret(x.out)
	} else if mode.secretEx {
		for _, v := range x.subs {
			d.secret(v)
		}
	}
	return x.out, ok
}

func (d *decoder) secret(v string) {
	if d.secrets != nil && v != "" {
		*d.secrets = append(*d.secrets, v)
	}
}

// posAt is the position of byte offset off inside scalar n's value, when the
// source shows the value verbatim on one line; otherwise the scalar's position.
func (d *decoder) posAt(n *yaml.Node, off int) (int, int) {
	line, col := pos(n)
	if n == nil || off == 0 && n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) == 0 {
		return line, col
	}
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 || strings.ContainsAny(n.Value[:off], "\n\\\"'") {
		return line, col
	}
	src := d.line(line)
	start := runeOffset(src, col-1)
	if start < 0 {
		return line, col
	}
	want := n.Value[:off]
	quoted := 0
	if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0 {
		quoted = 1
	}
	if start+quoted+len(want) > len(src) || string(src[start+quoted:start+quoted+len(want)]) != want {
		return line, col
	}
	return line, col + quoted + utf8.RuneCountInString(want)
}

// line returns the bytes of 1-based line l of the source.
func (d *decoder) line(l int) []byte {
	if d.lines == nil {
		d.lines = []int{0}
		for i, c := range d.src {
			if c == '\n' {
				d.lines = append(d.lines, i+1)
			}
		}
	}
	if l < 1 || l > len(d.lines) {
		return nil
	}
	start := d.lines[l-1]
	end := len(d.src)
	if l < len(d.lines) {
		end = d.lines[l] - 1
	}
	return d.src[start:end]
}

// runeOffset is the byte offset of rune index r in b, or -1.
func runeOffset(b []byte, r int) int {
	off := 0
	for i := 0; i < r; i++ {
		if off >= len(b) {
			return -1
		}
		_, size := utf8.DecodeRune(b[off:])
		off += size
	}
	return off
}

// boolean reads true/false.
func (d *decoder) boolean(n *yaml.Node, path *at) (bool, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		d.errAt(n, "write true or false", "%s: expected a boolean, got %s", path.String(), describe(n))
		return false, false
	}
	switch n.Value {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		d.errAt(n, "write true or false", "%s: expected a boolean, got %s", path.String(), describe(n))
		return false, false
	}
	return b, true
}

// integer reads a whole number in [lo, hi].
func (d *decoder) integer(n *yaml.Node, path *at, lo, hi int) (int, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		hint := ""
		if n != nil && n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
			if _, err := strconv.Atoi(strings.TrimSpace(n.Value)); err == nil {
				hint = "remove the quotes"
			}
		}
		d.errAt(n, hint, "%s: expected a whole number, got %s", path.String(), describe(n))
		return 0, false
	}
	var v int64
	var err error
	if isDecimal(n.Value) {
		v, err = strconv.ParseInt(n.Value, 10, 64)
	} else { // 0x10, 1_000, 0o7, +1: as the YAML library reads them
		err = n.Decode(&v)
	}
	if err != nil || v < int64(lo) || v > int64(hi) {
		d.errAt(n, "", "%s: %s is out of range: use %d to %d", path.String(), n.Value, lo, hi)
		return 0, false
	}
	return int(v), true
}

// duration reads a positive Go duration ("500ms", "30s", "5m").
func (d *decoder) duration(n *yaml.Node, path *at) (time.Duration, bool) {
	const hint = "use a number with a unit: 500ms, 30s, 5m, 1h30m"
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errAt(n, hint, "%s: expected a duration, got %s", path.String(), describe(n))
		return 0, false
	}
	if n.Tag == "!!int" || n.Tag == "!!float" {
		d.errAt(n, fmt.Sprintf("write %q for seconds", n.Value+"s"), "%s: duration %s has no unit", path.String(), n.Value)
		return 0, false
	}
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		h := hint
		s := strings.TrimSpace(n.Value)
		switch {
		case strings.HasSuffix(s, "d"):
			h = "there is no d unit; write hours, e.g. 24h"
		case strings.ContainsAny(s, " "):
			h = "no spaces: write 5m, not 5 m"
		case strings.HasSuffix(s, "sec") || strings.HasSuffix(s, "min") || strings.HasSuffix(s, "mins") || strings.HasSuffix(s, "secs"):
			h = "units are ns, us, ms, s, m, h: write 30s or 5m"
		}
		d.errAt(n, h, "%s: invalid duration %s", path.String(), quote(n.Value))
		return 0, false
	}
	if v <= 0 {
		d.errAt(n, hint, "%s: duration must be positive, got %s", path.String(), n.Value)
		return 0, false
	}
	return v, true
}

// enum reads one of the allowed values.
func (d *decoder) enum(n *yaml.Node, path *at, allowed ...string) (string, bool) {
	s, ok := d.scalar(n, path, "one of "+strings.Join(allowed, ", "))
	if !ok {
		return "", false
	}
	if !slices.Contains(allowed, s) {
		hint := "use one of: " + strings.Join(allowed, ", ")
		if c := closest(s, allowed); c != "" {
			hint = fmt.Sprintf("did you mean %q?", c)
		}
		d.errAt(n, hint, "%s: invalid value %s", path.String(), quote(s))
		return "", false
	}
	return s, true
}

// id reads a value that must follow the id rule.
func (d *decoder) id(n *yaml.Node, path *at, what string) (string, bool) {
	s, ok := d.scalar(n, path, what)
	if !ok {
		return "", false
	}
	if !d.checkID(n, s, path, what) {
		return s, false
	}
	return s, true
}

func (d *decoder) checkID(n *yaml.Node, s string, path *at, what string) bool {
	if isID(s) {
		return true
	}
	if len(s) > MaxIDLength {
		d.errAt(n, "", "%s: %s is longer than %d characters", path.String(), what, MaxIDLength)
		return false
	}
	d.errAt(n, fmt.Sprintf("use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit, e.g. %q", suggestID(s)),
		"%s: invalid %s %s", path.String(), what, quote(s))
	return false
}

// idList reads a list of ids (tags, references).
func (d *decoder) idList(n *yaml.Node, path *at, what string) ([]string, []*yaml.Node) {
	items, ok := d.seq(n, path, "write a list: [a, b]")
	if !ok {
		return nil, nil
	}
	out := make([]string, 0, len(items))
	nodes := make([]*yaml.Node, 0, len(items))
	for i, it := range items {
		s, ok := d.id(it, path.item(i), what)
		if ok {
			out = append(out, s)
			nodes = append(nodes, deref(it))
		}
	}
	return out, nodes
}

// stringMap reads a map of string values; each value may also be written as
// {value: "...", secret: true}. header validates keys as HTTP header names and
// refuses keys that differ only in case.
func (d *decoder) stringMap(n *yaml.Node, path *at, mode textMode, header bool) map[string]string {
	ps, ok := d.pairs(n, path, "a mapping of names to values")
	if !ok || ps.len() == 0 {
		return nil
	}
	out := make(map[string]string, ps.len())
	var lower map[string]*yaml.Node
	if header {
		lower = map[string]*yaml.Node{}
	}
	for p := range ps.all {
		kp := path.field(p.key)
		if header {
			if !isToken(p.key) {
				d.errAt(p.k, "header names use letters, digits and -", "%s: invalid header name %s", path.String(), quote(p.key))
				continue
			}
			l := strings.ToLower(p.key)
			if first, dup := lower[l]; dup {
				d.errAt(p.k, fmt.Sprintf("header names are case-insensitive; the first is at line %d", first.Line), "%s: duplicate header %q", path.String(), p.key)
				continue
			}
			lower[l] = p.k
		}
		m := mode
		v := deref(p.v)
		if v != nil && v.Kind == yaml.MappingNode {
			sp, ok := d.object(v, kp, "secret_value")
			if !ok {
				continue
			}
			d.require(v, sp, kp, "write {value: \"...\", secret: true}", "value")
			var valNode *yaml.Node
			for q := range sp.all {
				switch q.key {
				case "value":
					valNode = q.v
				case "secret":
					if b, ok := d.boolean(q.v, kp.field("secret")); ok && b {
						m.secret = true
					}
				}
			}
			if valNode == nil {
				continue
			}
			v = valNode
			kp = kp.field("value")
		}
		if s, ok := d.text(v, kp, m); ok {
			out[p.key] = s
		}
	}
	return out
}

// isToken reports whether s is an RFC 9110 token (header names, methods).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}
