package coverage

import (
	"context"
	"fmt"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/suite"
)

// Of is the coverage map of a loaded suite over the files git tracks in the
// checkout that contains dir: what zof coverage prints, and what zof run
// --server sums up for the server (Summary). env is the environment of the
// git processes. Outside a checkout the error wraps ErrNotCheckout; an invalid
// selection or selection.modules is a gate.UsageError.
func Of(ctx context.Context, s *suite.Suite, dir string, env []string) (*Report, error) {
	sel, err := gate.Selector(s)
	if err != nil {
		return nil, err
	}
	defs := make([]ModuleDef, len(s.Selection.Modules))
	for i, m := range s.Selection.Modules {
		defs[i] = ModuleDef{Name: m.Name}
		for _, p := range m.Patterns {
			defs[i].Patterns = append(defs[i].Patterns, p.Value)
		}
	}
	mods, err := NewModules(defs)
	if err != nil {
		return nil, gate.Usage(fmt.Errorf("%s: %w", s.File, err))
	}
	files, err := TrackedFiles(ctx, dir, env)
	if err != nil {
		return nil, err
	}
	return Build(sel, files, mods), nil
}

// Summary sums the report up for the server (api.RunRequest.Coverage,
// docs/coverage.md "On the server"), within api's bounds: the totals, the
// first api.MaxCoverageModules modules by name (the rest counted in
// ModulesOmitted) and each module's first api.MaxCoverageUncoveredFiles
// uncovered files. hidden reports a text that must not leave the machine
// (a secret of the run); a module whose name is hidden or not a valid name
// is omitted, a file whose path is hidden or not valid is not listed.
// The result passes api.CoverageSummary.Validate.
func Summary(r *Report, hidden func(string) bool) *api.CoverageSummary {
	out := &api.CoverageSummary{CoverageCounts: wire(r.Counts), Modules: []api.ModuleCoverage{}}
	index := map[string]int{}
	for _, m := range r.Modules {
		if len(out.Modules) == api.MaxCoverageModules || !listable(m.Name, api.MaxCoverageNameBytes, hidden) {
			out.ModulesOmitted++
			continue
		}
		index[m.Name] = len(out.Modules)
		out.Modules = append(out.Modules, api.ModuleCoverage{Module: m.Name, CoverageCounts: wire(m.Counts)})
	}
	// Uncovered is sorted, so each module's first files come first.
	for _, f := range r.Uncovered {
		i, ok := index[r.mods.Of(f)]
		if !ok {
			continue
		}
		m := &out.Modules[i]
		if len(m.UncoveredFiles) < api.MaxCoverageUncoveredFiles && listable(f, api.MaxCoveragePathBytes, hidden) {
			m.UncoveredFiles = append(m.UncoveredFiles, f)
		}
	}
	return out
}

func wire(c Counts) api.CoverageCounts {
	return api.CoverageCounts{Files: c.Files, Covered: c.Covered, Global: c.Global, Ignored: c.Ignored, Uncovered: c.Uncovered, CoveredPercent: c.CoveredPercent}
}

// listable: the text passes the server's checks and is not hidden.
func listable(s string, max int, hidden func(string) bool) bool {
	return api.CheckCoverageText(s, max) == nil && (hidden == nil || !hidden(s))
}
