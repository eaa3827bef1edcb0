package coverage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/zof-ai/zof-ci/internal/coverage/coveragetest"
	"github.com/zof-ai/zof-ci/internal/diff"
	"github.com/zof-ai/zof-ci/internal/selection"
)

func selector(t testing.TB, s selection.Suite) *selection.Selector {
	t.Helper()
	sel, err := selection.New(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

func TestBuild(t *testing.T) {
	sel := selector(t, selection.Suite{
		Rules: selection.Rules{Global: []string{"go.mod"}, Ignore: []string{"docs/**", "**/*.md"}},
		Cases: []selection.Case{
			{ID: "cart", Covers: []string{"services/cart/**", "!services/cart/legacy/**"}},
			{ID: "auth", Covers: []string{"services/auth/**", "services/cart/session.go"}},
		},
	})
	files := []string{
		"go.mod",
		"README.md",
		"docs/guide.txt",
		"services/cart/total.go",
		"services/cart/session.go",
		"services/cart/legacy/old.go", // excluded by the negation: uncovered
		"services/auth/login.go",
		"services/search/index.go",
		"main.go",
	}
	got := Build(sel, files, nil)
	want := &Report{
		Version: Version,
		Counts:  Counts{Files: 9, Covered: 3, Global: 1, Ignored: 2, Uncovered: 3, CoveredPercent: 42.9},
		Modules: []Module{
			{Name: RootModule, Counts: Counts{Files: 3, Global: 1, Ignored: 1, Uncovered: 1, CoveredPercent: 0}},
			{Name: "docs", Counts: Counts{Files: 1, Ignored: 1, CoveredPercent: 100}},
			{Name: "services", Counts: Counts{Files: 5, Covered: 3, Uncovered: 2, CoveredPercent: 60}},
		},
		Uncovered: []string{"main.go", "services/cart/legacy/old.go", "services/search/index.go"},
	}
	if d := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Report{})); d != "" {
		t.Errorf("Build (-want +got):\n%s", d)
	}
}

// TestBuildModules: a file belongs to the first module that matches it
// (negations excluded), else to its top-level directory.
func TestBuildModules(t *testing.T) {
	sel := selector(t, selection.Suite{Cases: []selection.Case{{ID: "cart", Covers: []string{"services/cart/**"}}}})
	mods, err := NewModules([]ModuleDef{
		{Name: "cart", Patterns: []string{"services/cart/**", "!services/cart/legacy/**"}},
		{Name: "everything-go", Patterns: []string{"**/*.go"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := Build(sel, []string{"services/cart/a.go", "services/cart/legacy/b.go", "services/auth/c.txt", "README"}, mods)
	want := []Module{
		{Name: RootModule, Counts: Counts{Files: 1, Uncovered: 1}},
		{Name: "cart", Counts: Counts{Files: 1, Covered: 1, CoveredPercent: 100}},
		{Name: "everything-go", Counts: Counts{Files: 1, Covered: 1, CoveredPercent: 100}},
		{Name: "services", Counts: Counts{Files: 1, Uncovered: 1}},
	}
	if d := cmp.Diff(want, got.Modules); d != "" {
		t.Errorf("modules (-want +got):\n%s", d)
	}
	if _, err := NewModules([]ModuleDef{{Name: "x", Patterns: []string{"/abs"}}}); err == nil {
		t.Error("NewModules accepts an absolute pattern")
	}
}

// TestClassifyAgreesWithSelect: a file the map calls uncovered is exactly one
// that makes a real scope-changed selection fall back to selection.unmapped.
func TestClassifyAgreesWithSelect(t *testing.T) {
	sel := selector(t, selection.Suite{
		Rules: selection.Rules{Ignore: []string{"**/*.md"}, Unmapped: selection.ModeNone},
		Cases: []selection.Case{{ID: "a", Covers: []string{"a/**", "!a/x/**"}}},
	})
	for _, f := range []string{"a/1.go", "a/x/2.go", "b/3.go", "a/README.md"} {
		r := Build(sel, []string{f}, nil)
		got, err := sel.Select(selection.ScopeChanged, changed(f))
		if err != nil {
			t.Fatal(err)
		}
		unmapped, uncovered := len(got.Unmapped) == 1, len(r.Uncovered) == 1
		if unmapped != uncovered {
			t.Errorf("%s: select says unmapped=%v, coverage says uncovered=%v", f, unmapped, uncovered)
		}
	}
}

func changed(path string) *diff.Result {
	return &diff.Result{Source: diff.SourceOverride, Complete: true, Files: []diff.Change{{Path: path}}}
}

func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func TestTrackedFiles(t *testing.T) {
	dir := t.TempDir()
	git(t, dir, "init", "-q")
	for _, f := range []string{"a/one.go", "a/b/two.go", "spaced name.go", "ünï.go", "old.go", "untracked.go"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, dir, "add", "a", "spaced name.go", "ünï.go", "old.go")
	git(t, dir, "commit", "-qm", "x")
	git(t, dir, "mv", "old.go", "renamed.go")
	// A submodule is one path (a gitlink), not its files.
	git(t, dir, "update-index", "--add", "--cacheinfo", "160000,"+strings.Repeat("1", 40)+",vendor/sub")

	// From a subdirectory: paths are still relative to the top level.
	got, err := TrackedFiles(context.Background(), filepath.Join(dir, "a", "b"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a/b/two.go", "a/one.go", "renamed.go", "spaced name.go", "vendor/sub", "ünï.go"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("TrackedFiles (-want +got):\n%s", d)
	}
}

func TestTrackedFilesOutsideCheckout(t *testing.T) {
	dir := t.TempDir()
	_, err := TrackedFiles(context.Background(), dir, append(os.Environ(), "GIT_CEILING_DIRECTORIES="+filepath.Dir(dir)))
	if !errors.Is(err, ErrNotCheckout) {
		t.Fatalf("err = %v, want ErrNotCheckout", err)
	}
	if !strings.Contains(err.Error(), "run zof coverage inside the repository") {
		t.Errorf("the message does not say what to do: %v", err)
	}
}

// BenchmarkBuild maps N tracked files onto a 2,000-case suite: the cost of
// `zof coverage` beyond git itself (docs/benchmarks.md).
func BenchmarkBuild(b *testing.B) {
	const cases = 2000
	s := selection.Suite{Rules: selection.Rules{Global: []string{"go.mod", "build/**"}, Ignore: []string{"docs/**", "**/*.md"}}}
	for i := range cases {
		s.Cases = append(s.Cases, selection.Case{ID: fmt.Sprintf("c%d", i), Covers: []string{fmt.Sprintf("svc%d/**", i%500), fmt.Sprintf("lib/m%d/*.go", i)}})
	}
	sel := selector(b, s)
	mods, err := NewModules([]ModuleDef{{Name: "services", Patterns: []string{"svc*/**"}}, {Name: "libraries", Patterns: []string{"lib/**", "!lib/m1/**"}}})
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{10_000, 100_000} {
		files := coveragetest.FakeFiles(n)
		for _, m := range []struct {
			name string
			mods *Modules
		}{{"top-level", nil}, {"modules", mods}} {
			b.Run(fmt.Sprintf("files=%d/%s", n, m.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					Build(sel, files, m.mods)
				}
			})
		}
	}
}
