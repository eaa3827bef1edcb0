// Package selection turns a scope and a diff into the cases to run, each with the reasons it was selected.
package selection

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/diff"
	"github.com/zof-ai/zof-ci/internal/pathmatch"
)

// Case is what selection needs to know about one suite case.
type Case struct {
	ID     string
	Tags   []string
	Covers []string
	Always bool
}

// Rules are the suite's selection: block. Empty modes take the defaults.
type Rules struct {
	Global, Ignore []string
	// Unmapped is all | smoke | none ("" = all).
	Unmapped string
	// MaxChangedFiles: more changed paths than this select all (0 = DefaultMaxChangedFiles).
	MaxChangedFiles int
	// OnUnknownDiff is all | smoke | fail ("" = all).
	OnUnknownDiff string
}

// Set is a named group of cases, already flattened, in order.
type Set struct {
	Name  string
	Cases []string
}

// Suite is the part of a suite selection works on.
type Suite struct {
	Cases []Case
	Sets  []Set
	Rules Rules
}

// Modes of selection.unmapped and selection.on_unknown_diff.
const (
	ModeAll   = "all"
	ModeSmoke = "smoke"
	ModeNone  = "none" // unmapped only
	ModeFail  = "fail" // on_unknown_diff only
)

// Scope names and prefixes.
const (
	ScopeAll     = "all"
	ScopeSmoke   = "smoke"
	ScopeChanged = "changed"
	prefixTag    = "tag:"
	prefixSet    = "set:"
	prefixID     = "id:"
	smokeTag     = "smoke"
)

// DefaultMaxChangedFiles applies when Rules.MaxChangedFiles is 0 (the value
// of the suite.md example).
const DefaultMaxChangedFiles = 500

// MaxFileReasons bounds the covers reasons listed per case; the rest are
// counted in one "and N more files" reason, so a large change does not make
// the explanation (printed by zof plan, carried in the run and in JUnit
// properties) grow with every file.
const MaxFileReasons = 20

// UnknownDiffError is returned for scope changed when the diff is unknown or
// incomplete and selection.on_unknown_diff is fail.
type UnknownDiffError struct {
	// Reason says why the diff is unknown.
	Reason string
}

func (e *UnknownDiffError) Error() string {
	return fmt.Sprintf("cannot select the changed cases: %s, and selection.on_unknown_diff is fail: fetch the full history (fetch-depth: 0), pass --changed-files, or run with --scope all", e.Reason)
}

// Selector selects cases of one suite. It is safe for concurrent use.
type Selector struct {
	cases   []Case
	covers  []*pathmatch.Set
	byID    map[string]int
	sets    map[string][]int
	setList []string
	tags    map[string][]int
	global  *pathmatch.Set
	ignore  *pathmatch.Set
	rules   Rules

	// globs are the distinct cover globs of all cases; users[g] are the case
	// patterns that use glob g; byPrefix indexes globs by their literal
	// directory prefix so a path only tries globs that can match it.
	globs    []pathmatch.Pattern
	users    [][]use
	byPrefix map[string][]int32
}

// use is one case pattern that uses a glob.
type use struct {
	cas    int32
	pat    int32
	negate bool
}

// New checks and compiles the suite's patterns and references once.
func New(s Suite) (*Selector, error) {
	sel := &Selector{
		cases:    s.Cases,
		covers:   make([]*pathmatch.Set, len(s.Cases)),
		byID:     make(map[string]int, len(s.Cases)),
		sets:     make(map[string][]int, len(s.Sets)),
		tags:     map[string][]int{},
		rules:    s.Rules,
		byPrefix: map[string][]int32{},
	}
	var errs []error
	switch sel.rules.Unmapped {
	case "":
		sel.rules.Unmapped = ModeAll
	case ModeAll, ModeSmoke, ModeNone:
	default:
		errs = append(errs, fmt.Errorf("selection.unmapped %q: use all, smoke or none", s.Rules.Unmapped))
	}
	switch sel.rules.OnUnknownDiff {
	case "":
		sel.rules.OnUnknownDiff = ModeAll
	case ModeAll, ModeSmoke, ModeFail:
	default:
		errs = append(errs, fmt.Errorf("selection.on_unknown_diff %q: use all, smoke or fail", s.Rules.OnUnknownDiff))
	}
	switch {
	case sel.rules.MaxChangedFiles == 0:
		sel.rules.MaxChangedFiles = DefaultMaxChangedFiles
	case sel.rules.MaxChangedFiles < 0:
		errs = append(errs, fmt.Errorf("selection.max_changed_files %d: use a positive number", s.Rules.MaxChangedFiles))
	}
	var err error
	if sel.global, err = pathmatch.Compile(s.Rules.Global); err != nil {
		errs = append(errs, fmt.Errorf("selection.global: %w", err))
	}
	if sel.ignore, err = pathmatch.Compile(s.Rules.Ignore); err != nil {
		errs = append(errs, fmt.Errorf("selection.ignore: %w", err))
	}

	globID := map[string]int32{}
	for i, c := range s.Cases {
		if _, dup := sel.byID[c.ID]; dup {
			errs = append(errs, fmt.Errorf("case %q is defined twice: case ids must be unique", c.ID))
			continue
		}
		sel.byID[c.ID] = i
		for _, t := range c.Tags {
			if l := sel.tags[t]; len(l) == 0 || l[len(l)-1] != i {
				sel.tags[t] = append(l, i)
			}
		}
		set, err := pathmatch.Compile(c.Covers)
		if err != nil {
			errs = append(errs, fmt.Errorf("case %q covers: %w", c.ID, err))
			set, _ = pathmatch.Compile(nil)
		}
		sel.covers[i] = set
		for j, p := range set.Patterns() {
			id, ok := globID[p.Glob]
			if !ok {
				id = int32(len(sel.globs))
				globID[p.Glob] = id
				pp := p
				pp.Raw, pp.Negate = p.Glob, false
				sel.globs = append(sel.globs, pp)
				sel.users = append(sel.users, nil)
				sel.byPrefix[p.Prefix] = append(sel.byPrefix[p.Prefix], id)
			}
			sel.users[id] = append(sel.users[id], use{cas: int32(i), pat: int32(j), negate: p.Negate})
		}
	}
	for _, st := range s.Sets {
		if _, dup := sel.sets[st.Name]; dup {
			errs = append(errs, fmt.Errorf("set %q is defined twice: set names must be unique", st.Name))
			continue
		}
		members := make([]int, 0, len(st.Cases))
		for _, id := range st.Cases {
			i, ok := sel.byID[id]
			if !ok {
				errs = append(errs, fmt.Errorf("set %q: %w", st.Name, unknownError("case", id, sel.caseIDs())))
				continue
			}
			members = append(members, i)
		}
		sel.sets[st.Name] = members
		sel.setList = append(sel.setList, st.Name)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return sel, nil
}

// Select chooses the cases for scope. d is the change (used by scope
// changed only); nil means the diff could not be computed. To say why, pass
// a Result with Complete false and the reason instead of nil.
//
// An empty selection is not an error (gate.on_empty decides). An unknown
// scope, tag, set or id is; so is an unknown diff under on_unknown_diff:
// fail, as *UnknownDiffError.
func (s *Selector) Select(scope string, d *diff.Result) (api.Selection, error) {
	out := api.Selection{Scope: scope, Effective: scope, Cases: []api.SelectedCase{}}
	switch {
	case scope == ScopeAll:
		out.Cases = s.explicit(s.allIndexes(), api.Reason{Kind: api.ReasonScope, Detail: "scope all"})
	case scope == ScopeSmoke:
		out.Cases = s.explicit(s.tags[smokeTag], api.Reason{Kind: api.ReasonScope, Detail: "tagged smoke"})
	case scope == ScopeChanged:
		return s.changed(out, d)
	case strings.HasPrefix(scope, prefixTag):
		name := strings.TrimPrefix(scope, prefixTag)
		idx, ok := s.tags[name]
		if !ok {
			return api.Selection{}, fmt.Errorf("scope %s: %w", scope, unknownError("tag", name, sortedKeys(s.tags)))
		}
		out.Cases = s.explicit(idx, api.Reason{Kind: api.ReasonScope, Detail: "tagged " + name})
	case strings.HasPrefix(scope, prefixSet):
		name := strings.TrimPrefix(scope, prefixSet)
		idx, ok := s.sets[name]
		if !ok {
			return api.Selection{}, fmt.Errorf("scope %s: %w", scope, unknownError("set", name, s.setList))
		}
		out.Cases = s.explicit(idx, api.Reason{Kind: api.ReasonScope, Detail: "in set " + name})
	case strings.HasPrefix(scope, prefixID):
		var idx []int
		seen := map[int]bool{}
		for _, id := range strings.Split(strings.TrimPrefix(scope, prefixID), ",") {
			id = strings.TrimSpace(id)
			if id == "" {
				continue
			}
			i, ok := s.byID[id]
			if !ok {
				return api.Selection{}, fmt.Errorf("scope %s: %w", scope, unknownError("case", id, s.caseIDs()))
			}
			if !seen[i] {
				seen[i] = true
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			return api.Selection{}, fmt.Errorf("scope %q names no case: use id:A,B with case ids", scope)
		}
		sort.Ints(idx)
		out.Cases = s.explicit(idx, api.Reason{Kind: api.ReasonScope, Detail: "listed in " + scope})
	default:
		return api.Selection{}, fmt.Errorf("unknown scope %q: use all, smoke, changed, tag:NAME, set:NAME or id:A,B", scope)
	}
	return out, nil
}

func (s *Selector) explicit(idx []int, r api.Reason) []api.SelectedCase {
	out := make([]api.SelectedCase, 0, len(idx))
	for _, i := range idx {
		out = append(out, api.SelectedCase{ID: s.cases[i].ID, Reasons: []api.Reason{r}})
	}
	return out
}

func (s *Selector) allIndexes() []int {
	idx := make([]int, len(s.cases))
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// changed applies the rules of suite.md "Selection (scoping)" in order.
func (s *Selector) changed(out api.Selection, d *diff.Result) (api.Selection, error) {
	out.Diff = d.Summary()

	// 1. Unknown or incomplete diff.
	if d == nil || !d.Complete {
		why := "the diff could not be computed"
		if d != nil {
			why = "the diff is incomplete"
		}
		// The widening's detail says why in full; the warning says what runs instead,
		// without repeating the reason (each fact once per report, docs/cli.md).
		detail := why
		if d != nil && d.Reason != "" {
			detail += ": " + d.Reason
		}
		mode := s.rules.OnUnknownDiff
		if mode == ModeFail {
			return api.Selection{}, &UnknownDiffError{Reason: detail}
		}
		r := api.Reason{Kind: api.ReasonUnknownDiff, Detail: detail + " (selection.on_unknown_diff: " + mode + ")"}
		out.Widened = &r
		out.Effective = mode
		if mode == ModeAll {
			out.Warnings = append(out.Warnings, why+"; running all cases (selection.on_unknown_diff: all)")
			out.Cases = s.explicit(s.allIndexes(), r)
			return out, nil
		}
		out.Warnings = append(out.Warnings, why+"; running the smoke cases and always cases (selection.on_unknown_diff: smoke)")
		reasons := make([][]api.Reason, len(s.cases))
		for _, i := range s.tags[smokeTag] {
			reasons[i] = append(reasons[i], r)
		}
		s.addAlways(reasons)
		out.Cases = s.collect(reasons)
		return out, nil
	}

	paths := d.Paths()

	// 2. Too many files.
	if len(paths) > s.rules.MaxChangedFiles {
		r := api.Reason{Kind: api.ReasonTooManyFiles, Detail: fmt.Sprintf("%d changed files, more than selection.max_changed_files (%d): all cases", len(paths), s.rules.MaxChangedFiles)}
		return s.widenAll(out, r), nil
	}

	// 3. A global file.
	for _, p := range paths {
		if ok, pat := s.global.Match(p); ok {
			return s.widenAll(out, api.Reason{Kind: api.ReasonGlobal, File: p, Pattern: pat}), nil
		}
	}

	// 4. Ignored files are dropped; 5. covered and unmapped files.
	m := s.newMatcher()
	reasons := make([][]api.Reason, len(s.cases))
	extra := make([]int, len(s.cases)) // covers reasons beyond MaxFileReasons
	for _, p := range paths {
		if ok, _ := s.ignore.Match(p); ok {
			out.Ignored = append(out.Ignored, p)
			continue
		}
		covered := false
		m.match(p, func(c int, pattern string) {
			covered = true
			if len(reasons[c]) < MaxFileReasons {
				reasons[c] = append(reasons[c], api.Reason{Kind: api.ReasonCovers, File: p, Pattern: pattern})
			} else {
				extra[c]++
			}
		})
		if !covered {
			out.Unmapped = append(out.Unmapped, p)
		}
	}
	for c, n := range extra {
		if n > 0 {
			reasons[c] = append(reasons[c], api.Reason{Kind: api.ReasonCovers, Detail: fmt.Sprintf("and %d more files", n)})
		}
	}
	s.addAlways(reasons)

	if len(out.Unmapped) > 0 {
		first := out.Unmapped[0]
		more := ""
		if n := len(out.Unmapped) - 1; n > 0 {
			more = fmt.Sprintf(" (and %d more unmapped files)", n)
		}
		switch s.rules.Unmapped {
		case ModeAll:
			r := api.Reason{Kind: api.ReasonUnmapped, File: first, Detail: "no case covers it" + more + "; selection.unmapped: all runs every case"}
			out.Widened = &r
			out.Effective = ScopeAll
			for i := range reasons {
				reasons[i] = append(reasons[i], r)
			}
		case ModeSmoke:
			r := api.Reason{Kind: api.ReasonUnmapped, File: first, Detail: "no case covers it" + more + "; selection.unmapped: smoke adds the smoke cases"}
			for _, i := range s.tags[smokeTag] {
				reasons[i] = append(reasons[i], r)
			}
		case ModeNone:
			n := len(out.Unmapped)
			files, verb := "files are", "select"
			if n == 1 {
				files, verb = "file is", "selects"
			}
			out.Warnings = append(out.Warnings, fmt.Sprintf("%d changed %s covered by no case and %s nothing (selection.unmapped: none)", n, files, verb))
		}
	}

	// 6. Covered + always + what step 5 added, in suite order.
	out.Cases = s.collect(reasons)
	return out, nil
}

func (s *Selector) widenAll(out api.Selection, r api.Reason) api.Selection {
	out.Widened = &r
	out.Effective = ScopeAll
	out.Cases = s.explicit(s.allIndexes(), r)
	return out
}

func (s *Selector) addAlways(reasons [][]api.Reason) {
	for i, c := range s.cases {
		if c.Always {
			reasons[i] = append(reasons[i], api.Reason{Kind: api.ReasonAlways})
		}
	}
}

func (s *Selector) collect(reasons [][]api.Reason) []api.SelectedCase {
	out := []api.SelectedCase{}
	for i, rs := range reasons {
		if len(rs) > 0 {
			out = append(out, api.SelectedCase{ID: s.cases[i].ID, Reasons: rs})
		}
	}
	return out
}

// matcher holds the scratch state of one Select call: per path, each
// distinct glob is matched at most once, and per case the highest matching
// positive and negative pattern indexes decide (the last match wins).
type matcher struct {
	s       *Selector
	pos     []int32 // per case: highest matching positive pattern, -1 none
	neg     []int32 // per case: highest matching negative pattern, -1 none
	touched []int32
}

func (s *Selector) newMatcher() *matcher {
	m := &matcher{s: s, pos: make([]int32, len(s.cases)), neg: make([]int32, len(s.cases))}
	for i := range m.pos {
		m.pos[i], m.neg[i] = -1, -1
	}
	return m
}

// match calls hit for every case that covers path, in suite order, with the
// winning pattern. Only globs whose literal prefix is path or one of its
// ancestor directories (or empty) can match, so only those are tried.
func (m *matcher) match(path string, hit func(c int, pattern string)) {
	s := m.s
	m.try(s.byPrefix[""], path)
	for i := 0; i < len(path); i++ {
		if path[i] == '/' {
			m.try(s.byPrefix[path[:i]], path)
		}
	}
	if path != "" {
		m.try(s.byPrefix[path], path)
	}
	if len(m.touched) == 0 {
		return
	}
	slices.Sort(m.touched)
	for _, c := range m.touched {
		if m.pos[c] > m.neg[c] {
			hit(int(c), s.cases[c].Covers[m.pos[c]])
		}
		m.pos[c], m.neg[c] = -1, -1
	}
	m.touched = m.touched[:0]
}

func (m *matcher) try(ids []int32, path string) {
	for _, id := range ids {
		if !m.s.globs[id].Match(path) {
			continue
		}
		for _, u := range m.s.users[id] {
			if m.pos[u.cas] < 0 && m.neg[u.cas] < 0 {
				m.touched = append(m.touched, u.cas)
			}
			if u.negate {
				m.neg[u.cas] = max(m.neg[u.cas], u.pat)
			} else {
				m.pos[u.cas] = max(m.pos[u.cas], u.pat)
			}
		}
	}
}

func (s *Selector) caseIDs() []string {
	ids := make([]string, len(s.cases))
	for i, c := range s.cases {
		ids[i] = c.ID
	}
	return ids
}

func sortedKeys(m map[string][]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// maxHintNames bounds how many existing names an "unknown" error lists.
const maxHintNames = 20

func unknownError(kind, name string, existing []string) error {
	plural := kind + "s"
	if kind == "case" {
		plural = "case ids"
	}
	if len(existing) == 0 {
		return fmt.Errorf("unknown %s %q: the suite defines no %s", kind, name, plural)
	}
	list := existing
	more := ""
	if len(list) > maxHintNames {
		list = list[:maxHintNames]
		more = fmt.Sprintf(" and %d more", len(existing)-maxHintNames)
	}
	return fmt.Errorf("unknown %s %q: %s are %s%s", kind, name, plural, strings.Join(list, ", "), more)
}
