package coverage

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/selection"
)

func TestSummary(t *testing.T) {
	sel := selector(t, selection.Suite{
		Rules: selection.Rules{Global: []string{"go.mod"}, Ignore: []string{"docs/**"}},
		Cases: []selection.Case{{ID: "cart", Covers: []string{"services/cart/**"}}},
	})
	mods, err := NewModules([]ModuleDef{{Name: "web", Patterns: []string{"ui/**"}}})
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"go.mod", "zof.yaml", "docs/a.md", "services/cart/a.go", "ui/app.js", "ui/hunter2.js",
		"bad\x01dir/x.go", "services/" + strings.Repeat("p", api.MaxCoveragePathBytes) + ".go"}
	for i := range api.MaxCoverageUncoveredFiles + 2 {
		files = append(files, fmt.Sprintf("services/search/f%d.go", i))
	}
	r := Build(sel, files, mods)
	got := Summary(r, func(s string) bool { return strings.Contains(s, "hunter2") })
	want := &api.CoverageSummary{
		CoverageCounts: api.CoverageCounts{Files: 15, Covered: 1, Global: 1, Ignored: 1, Uncovered: 12, CoveredPercent: 7.1},
		// "bad\x01dir" cannot be a module name: omitted, its file stays in the totals.
		ModulesOmitted: 1,
		Modules: []api.ModuleCoverage{
			{Module: "(root)", CoverageCounts: api.CoverageCounts{Files: 2, Global: 1, Uncovered: 1}, UncoveredFiles: []string{"zof.yaml"}},
			{Module: "docs", CoverageCounts: api.CoverageCounts{Files: 1, Ignored: 1, CoveredPercent: 100}},
			// The first five uncovered files by path; the over-long path is counted, not listed.
			{Module: "services", CoverageCounts: api.CoverageCounts{Files: 9, Covered: 1, Uncovered: 8, CoveredPercent: 11.1},
				UncoveredFiles: []string{"services/search/f0.go", "services/search/f1.go", "services/search/f2.go", "services/search/f3.go", "services/search/f4.go"}},
			// A path holding a secret is not listed.
			{Module: "web", CoverageCounts: api.CoverageCounts{Files: 2, Uncovered: 2}, UncoveredFiles: []string{"ui/app.js"}},
		},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("summary (-want +got):\n%s", d)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("the server would refuse the summary: %v", err)
	}
}

// More modules than the server takes: the first by name are listed, the rest
// counted, and the summary still validates.
func TestSummaryBoundsModules(t *testing.T) {
	sel := selector(t, selection.Suite{Cases: []selection.Case{{ID: "a", Covers: []string{"m000/**"}}}})
	var files []string
	for i := range api.MaxCoverageModules + 20 {
		files = append(files, fmt.Sprintf("m%03d/a.go", i), fmt.Sprintf("m%03d/b.go", i))
	}
	got := Summary(Build(sel, files, nil), nil)
	if len(got.Modules) != api.MaxCoverageModules || got.ModulesOmitted != 20 || got.Modules[0].Module != "m000" || got.Files != len(files) {
		t.Fatalf("%d modules (first %q), %d omitted, %d files; want %d, m000, 20, %d", len(got.Modules), got.Modules[0].Module, got.ModulesOmitted, got.Files, api.MaxCoverageModules, len(files))
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
}
