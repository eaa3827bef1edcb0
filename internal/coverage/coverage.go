// Package coverage maps a repository's tracked files onto a suite's selection
// rules: which files some case covers, which are global or ignored, and which
// no case covers — the files a change-aware run falls back to
// selection.unmapped for (docs/coverage.md).
package coverage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"

	"github.com/zof-ai/zof-ci/internal/pathmatch"
	"github.com/zof-ai/zof-ci/internal/selection"
)

// Version is the version of the JSON report (docs/coverage.md); it changes
// when a field changes meaning or goes away.
const Version = 1

// RootModule is the module of files at the top of the repository.
const RootModule = "(root)"

// Counts are the files of one class each, and their total.
type Counts struct {
	Files     int `json:"files"`
	Covered   int `json:"covered"`
	Global    int `json:"global"`
	Ignored   int `json:"ignored"`
	Uncovered int `json:"uncovered"`
	// CoveredPercent is covered ÷ (files − ignored), in percent with one
	// decimal: ignored files never select anything, so they are left out of
	// the share; global files count as not covered by a case. 100 when every
	// counted file is covered or there is none.
	CoveredPercent float64 `json:"covered_percent"`
}

// Module is the counts of one module: a selection.modules entry, or a
// top-level directory for files that match none.
type Module struct {
	Name string `json:"module"`
	Counts
}

// Report is the coverage map of one suite over one file list.
type Report struct {
	Version int `json:"version"`
	Counts
	Modules []Module `json:"modules"`
	// Uncovered lists every file no case covers, sorted.
	Uncovered []string `json:"uncovered"`

	mods *Modules // what the files were grouped by (Summary groups Uncovered again)
}

// ModuleDef is one selection.modules entry: a name and its path patterns
// (a leading ! excludes, the last matching pattern decides).
type ModuleDef struct {
	Name     string
	Patterns []string
}

// Modules groups files into modules: the first definition whose patterns
// match a file, else the file's top-level directory. The zero value (and nil)
// groups by top-level directory only.
type Modules struct {
	names []string
	sets  []*pathmatch.Set
}

// NewModules compiles defs, in order.
func NewModules(defs []ModuleDef) (*Modules, error) {
	m := &Modules{}
	for _, d := range defs {
		set, err := pathmatch.Compile(d.Patterns)
		if err != nil {
			return nil, fmt.Errorf("selection.modules.%s: %w", d.Name, err)
		}
		m.names = append(m.names, d.Name)
		m.sets = append(m.sets, set)
	}
	return m, nil
}

// Of is the module of a file.
func (m *Modules) Of(path string) string {
	if m != nil {
		for i, set := range m.sets {
			if ok, _ := set.Match(path); ok {
				return m.names[i]
			}
		}
	}
	return moduleOf(path)
}

// Build classifies files (repository-relative, /-separated) with sel and
// groups them by mods (nil: by top-level directory).
func Build(sel *selection.Selector, files []string, mods *Modules) *Report {
	classes, _ := sel.Classify(files)
	r := &Report{Version: Version, Uncovered: []string{}, mods: mods}
	byName := map[string]*Counts{}
	for i, f := range files {
		name := mods.Of(f)
		m := byName[name]
		if m == nil {
			m = &Counts{}
			byName[name] = m
		}
		for _, c := range []*Counts{&r.Counts, m} {
			c.add(classes[i])
		}
		if classes[i] == selection.Uncovered {
			r.Uncovered = append(r.Uncovered, f)
		}
	}
	r.finish()
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	r.Modules = make([]Module, 0, len(names))
	for _, n := range names {
		byName[n].finish()
		r.Modules = append(r.Modules, Module{Name: n, Counts: *byName[n]})
	}
	sort.Strings(r.Uncovered)
	return r
}

func (c *Counts) add(cl selection.Class) {
	c.Files++
	switch cl {
	case selection.Covered:
		c.Covered++
	case selection.Global:
		c.Global++
	case selection.Ignored:
		c.Ignored++
	default:
		c.Uncovered++
	}
}

func (c *Counts) finish() {
	counted := c.Files - c.Ignored
	if counted == 0 {
		c.CoveredPercent = 100
		return
	}
	// One decimal, rounded half up, so the JSON does not carry float noise.
	c.CoveredPercent = float64(int64(float64(c.Covered)*1000/float64(counted)+0.5)) / 10
}

// moduleOf is a file's top-level directory, or RootModule.
func moduleOf(path string) string {
	if i := strings.IndexByte(path, '/'); i > 0 {
		return path[:i]
	}
	return RootModule
}

// ErrNotCheckout is returned by TrackedFiles outside a git checkout.
var ErrNotCheckout = errors.New("not inside a git checkout")

// TrackedFiles lists the files git tracks in the checkout that contains dir
// ("" is the current directory), relative to its top level, /-separated, byte
// for byte (-z: no quoting), each once (a merge conflict's stages are one
// file), in index order. A submodule is one path, as git lists it. env is the
// environment of the git processes (nil inherits this process's). Without
// git installed it reads the checkout's index file itself (gitindex.go) and
// lists the same paths, or refuses what it cannot list exactly.
func TrackedFiles(ctx context.Context, dir string, env []string) ([]string, error) {
	git := func(args ...string) ([]byte, error) {
		if dir != "" {
			args = append([]string{"-C", dir}, args...)
		}
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("git %s: %w: %s", args[len(args)-1], err, strings.TrimSpace(stderr.String()))
		}
		return out, nil
	}
	top, err := git("rev-parse", "--show-toplevel")
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			// No git (zof's Action image): the checkout still has its index.
			files, err := indexFiles(dir, env)
			if err != nil && !errors.Is(err, ErrNotCheckout) {
				return nil, fmt.Errorf("git is not installed and %w", err)
			}
			return files, err
		}
		return nil, fmt.Errorf("%w (%v): run zof coverage inside the repository the suite belongs to", ErrNotCheckout, err)
	}
	dir = strings.TrimRight(string(top), "\n")
	out, err := git("ls-files", "-z", "--full-name")
	if err != nil {
		return nil, err
	}
	var files []string
	for _, f := range bytes.Split(out, []byte{0}) {
		// A conflict lists its path once a stage; it is one file.
		if len(f) > 0 && (len(files) == 0 || files[len(files)-1] != string(f)) {
			files = append(files, string(f))
		}
	}
	return files, nil
}
