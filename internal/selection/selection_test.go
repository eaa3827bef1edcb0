package selection

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/diff"
)

func testSuite() Suite {
	return Suite{
		Cases: []Case{
			{ID: "login", Tags: []string{"smoke", "auth"}, Covers: []string{"services/auth/**", "web/login/**"}},
			{ID: "checkout", Covers: []string{"services/checkout/**", "!services/checkout/legacy/**", "services/checkout/legacy/keep.go", "web/cart/**"}},
			{ID: "contract", Tags: []string{"api"}, Covers: []string{"api/**"}},
			{ID: "health", Tags: []string{"smoke"}, Covers: []string{"services/health/main.go"}},
			{ID: "audit", Always: true},
			{ID: "gofiles", Covers: []string{"**/*.go", "!services/**"}},
		},
		Sets: []Set{
			{Name: "release", Cases: []string{"checkout", "login"}},
			{Name: "nightly", Cases: []string{"audit"}},
		},
		Rules: Rules{
			Global:          []string{"go.mod", ".github/workflows/**"},
			Ignore:          []string{"docs/**", "**/*.md"},
			Unmapped:        "none",
			MaxChangedFiles: 5,
			OnUnknownDiff:   "all",
		},
	}
}

func files(paths ...string) *diff.Result {
	r := &diff.Result{Source: "git", Base: "b", Head: "h", Complete: true}
	for _, p := range paths {
		r.Files = append(r.Files, diff.Change{Status: diff.Modified, Path: p})
	}
	return r
}

func sum(n int) *api.DiffSummary {
	return &api.DiffSummary{Source: "git", Base: "b", Head: "h", Files: n, Complete: true}
}

func covers(file, pattern string) api.Reason {
	return api.Reason{Kind: api.ReasonCovers, File: file, Pattern: pattern}
}

var always = api.Reason{Kind: api.ReasonAlways}

func sc(id string, rs ...api.Reason) api.SelectedCase { return api.SelectedCase{ID: id, Reasons: rs} }

// allWith lists every case of testSuite with reason r.
func allWith(r api.Reason) []api.SelectedCase {
	var out []api.SelectedCase
	for _, c := range testSuite().Cases {
		out = append(out, sc(c.ID, r))
	}
	return out
}

func TestSelectChanged(t *testing.T) {
	tooMany := api.Reason{Kind: api.ReasonTooManyFiles, Detail: "6 changed files, more than selection.max_changed_files (5): all cases"}
	globalGoMod := api.Reason{Kind: api.ReasonGlobal, File: "go.mod", Pattern: "go.mod"}
	tests := []struct {
		name  string
		rules func(*Rules)
		diff  *diff.Result
		want  api.Selection
	}{
		{
			name: "covered file selects its case, plus always",
			diff: files("services/auth/login.go"),
			want: api.Selection{Scope: "changed", Effective: "changed", Diff: sum(1), Cases: []api.SelectedCase{
				sc("login", covers("services/auth/login.go", "services/auth/**")),
				sc("audit", always),
			}},
		},
		{
			name: "a/** matches a itself",
			diff: files("api"),
			want: api.Selection{Scope: "changed", Effective: "changed", Diff: sum(1), Cases: []api.SelectedCase{
				sc("contract", covers("api", "api/**")),
				sc("audit", always),
			}},
		},
		{
			name: "every matching file is a reason; suite order",
			diff: files("web/cart/x.js", "services/auth/a.go", "services/checkout/b.go", "cmd/zof/main.go"),
			want: api.Selection{Scope: "changed", Effective: "changed", Diff: sum(4), Cases: []api.SelectedCase{
				sc("login", covers("services/auth/a.go", "services/auth/**")),
				sc("checkout", covers("web/cart/x.js", "web/cart/**"), covers("services/checkout/b.go", "services/checkout/**")),
				sc("audit", always),
				sc("gofiles", covers("cmd/zof/main.go", "**/*.go")),
			}},
		},
		{
			name: "! excludes, a later pattern re-includes: last match wins",
			diff: files("services/checkout/legacy/old.go", "services/checkout/legacy/keep.go"),
			want: api.Selection{Scope: "changed", Effective: "changed", Diff: sum(2),
				Unmapped: []string{"services/checkout/legacy/old.go"},
				Warnings: []string{"1 changed file is covered by no case and selects nothing (selection.unmapped: none)"},
				Cases: []api.SelectedCase{
					sc("checkout", covers("services/checkout/legacy/keep.go", "services/checkout/legacy/keep.go")),
					sc("audit", always),
				}},
		},
		{
			name: "rename counts under old and new path",
			diff: &diff.Result{Source: "git", Base: "b", Head: "h", Complete: true, Files: []diff.Change{
				{Status: diff.Renamed, OldPath: "services/auth/old.txt", Path: "api/new.txt"},
			}},
			want: api.Selection{Scope: "changed", Effective: "changed", Diff: sum(1), Cases: []api.SelectedCase{
				sc("login", covers("services/auth/old.txt", "services/auth/**")),
				sc("contract", covers("api/new.txt", "api/**")),
				sc("audit", always),
			}},
		},
		{
			name: "deleted files count",
			diff: &diff.Result{Source: "git", Base: "b", Head: "h", Complete: true, Files: []diff.Change{
				{Status: diff.Deleted, Path: "services/health/main.go"},
			}},
			want: api.Selection{Scope: "changed", Effective: "changed", Diff: sum(1), Cases: []api.SelectedCase{
				sc("health", covers("services/health/main.go", "services/health/main.go")),
				sc("audit", always),
			}},
		},
		{
			name: "ignored files are dropped and listed",
			diff: files("docs/guide.txt", "services/auth/README.md", "api/x.json"),
			want: api.Selection{Scope: "changed", Effective: "changed", Diff: sum(3),
				Ignored: []string{"docs/guide.txt", "services/auth/README.md"},
				Cases: []api.SelectedCase{
					sc("contract", covers("api/x.json", "api/**")),
					sc("audit", always),
				}},
		},
		{
			name: "only ignored files: always cases only",
			diff: files("docs/a.txt"),
			want: api.Selection{Scope: "changed", Effective: "changed", Diff: sum(1), Ignored: []string{"docs/a.txt"},
				Cases: []api.SelectedCase{sc("audit", always)}},
		},
		{
			name:  "empty result is not an error",
			rules: func(r *Rules) {},
			diff:  files(),
			want:  api.Selection{Scope: "changed", Effective: "changed", Diff: sum(0), Cases: []api.SelectedCase{sc("audit", always)}},
		},
		{
			name: "global file: all",
			diff: files("services/auth/a.go", "go.mod"),
			want: api.Selection{Scope: "changed", Effective: "all", Diff: sum(2), Widened: &globalGoMod, Cases: allWith(globalGoMod)},
		},
		{
			name:  "global wins over ignore (rule 3 before 4)",
			rules: func(r *Rules) { r.Ignore = append(r.Ignore, ".github/**") },
			diff:  files(".github/workflows/ci.yml"),
			want: api.Selection{Scope: "changed", Effective: "all", Diff: sum(1),
				Widened: &api.Reason{Kind: api.ReasonGlobal, File: ".github/workflows/ci.yml", Pattern: ".github/workflows/**"},
				Cases:   allWith(api.Reason{Kind: api.ReasonGlobal, File: ".github/workflows/ci.yml", Pattern: ".github/workflows/**"})},
		},
		{
			name: "exactly max_changed_files: rules go on",
			diff: files("api/1", "api/2", "api/3", "api/4", "api/5"),
			want: api.Selection{Scope: "changed", Effective: "changed", Diff: sum(5), Cases: []api.SelectedCase{
				sc("contract", covers("api/1", "api/**"), covers("api/2", "api/**"), covers("api/3", "api/**"), covers("api/4", "api/**"), covers("api/5", "api/**")),
				sc("audit", always),
			}},
		},
		{
			name: "over max_changed_files: all, before global",
			diff: files("api/1", "api/2", "api/3", "api/4", "api/5", "go.mod"),
			want: api.Selection{Scope: "changed", Effective: "all", Diff: sum(6), Widened: &tooMany, Cases: allWith(tooMany)},
		},
		{
			name: "a rename counts twice toward max_changed_files",
			diff: &diff.Result{Source: "git", Base: "b", Head: "h", Complete: true, Files: []diff.Change{
				{Status: diff.Modified, Path: "api/1"}, {Status: diff.Modified, Path: "api/2"},
				{Status: diff.Renamed, OldPath: "api/3", Path: "api/4"}, {Status: diff.Renamed, OldPath: "api/5", Path: "api/6"},
			}},
			want: api.Selection{Scope: "changed", Effective: "all", Diff: sum(4), Widened: &tooMany, Cases: allWith(tooMany)},
		},
		{
			name:  "unmapped all widens, keeping the covers reasons",
			rules: func(r *Rules) { r.Unmapped = "all" },
			diff:  files("api/x", "Makefile", "tools/gen.sh"),
			want: func() api.Selection {
				w := api.Reason{Kind: api.ReasonUnmapped, File: "Makefile", Detail: "no case covers it (and 1 more unmapped files); selection.unmapped: all runs every case"}
				return api.Selection{Scope: "changed", Effective: "all", Diff: sum(3), Widened: &w,
					Unmapped: []string{"Makefile", "tools/gen.sh"},
					Cases: []api.SelectedCase{
						sc("login", w), sc("checkout", w), sc("contract", covers("api/x", "api/**"), w),
						sc("health", w), sc("audit", always, w), sc("gofiles", w),
					}}
			}(),
		},
		{
			name:  "unmapped smoke adds the smoke cases",
			rules: func(r *Rules) { r.Unmapped = "smoke" },
			diff:  files("api/x", "Makefile"),
			want: func() api.Selection {
				u := api.Reason{Kind: api.ReasonUnmapped, File: "Makefile", Detail: "no case covers it; selection.unmapped: smoke adds the smoke cases"}
				return api.Selection{Scope: "changed", Effective: "changed", Diff: sum(2),
					Unmapped: []string{"Makefile"},
					Cases: []api.SelectedCase{
						sc("login", u), sc("contract", covers("api/x", "api/**")), sc("health", u), sc("audit", always),
					}}
			}(),
		},
		{
			name:  "unmapped none lists the files only",
			rules: func(r *Rules) { r.Unmapped = "none" },
			diff:  files("Makefile"),
			want: api.Selection{Scope: "changed", Effective: "changed", Diff: sum(1),
				Unmapped: []string{"Makefile"},
				Warnings: []string{"1 changed file is covered by no case and selects nothing (selection.unmapped: none)"},
				Cases:    []api.SelectedCase{sc("audit", always)}},
		},
		{
			name:  "unmapped defaults to all",
			rules: func(r *Rules) { r.Unmapped = "" },
			diff:  files("Makefile"),
			want: func() api.Selection {
				w := api.Reason{Kind: api.ReasonUnmapped, File: "Makefile", Detail: "no case covers it; selection.unmapped: all runs every case"}
				return api.Selection{Scope: "changed", Effective: "all", Diff: sum(1), Widened: &w, Unmapped: []string{"Makefile"},
					Cases: []api.SelectedCase{sc("login", w), sc("checkout", w), sc("contract", w), sc("health", w), sc("audit", always, w), sc("gofiles", w)}}
			}(),
		},
		{
			name: "unknown diff (nil): on_unknown_diff all",
			diff: nil,
			want: func() api.Selection {
				w := api.Reason{Kind: api.ReasonUnknownDiff, Detail: "the diff could not be computed (selection.on_unknown_diff: all)"}
				return api.Selection{Scope: "changed", Effective: "all", Widened: &w, Cases: allWith(w),
					Warnings: []string{"the diff could not be computed; running all cases (selection.on_unknown_diff: all)"}}
			}(),
		},
		{
			name:  "incomplete diff: on_unknown_diff smoke runs smoke and always cases",
			rules: func(r *Rules) { r.OnUnknownDiff = "smoke" },
			diff:  &diff.Result{Source: "api", Files: []diff.Change{{Status: diff.Added, Path: "api/x"}}, Complete: false, Reason: "3000 files: the API's cap"},
			want: func() api.Selection {
				w := api.Reason{Kind: api.ReasonUnknownDiff, Detail: "the diff is incomplete: 3000 files: the API's cap (selection.on_unknown_diff: smoke)"}
				return api.Selection{Scope: "changed", Effective: "smoke", Widened: &w,
					Diff:     &api.DiffSummary{Source: "api", Files: 1, Reason: "3000 files: the API's cap"},
					Cases:    []api.SelectedCase{sc("login", w), sc("health", w), sc("audit", always)},
					Warnings: []string{"the diff is incomplete; running the smoke cases and always cases (selection.on_unknown_diff: smoke)"}}
			}(),
		},
		{
			name:  "on_unknown_diff defaults to all",
			rules: func(r *Rules) { r.OnUnknownDiff = "" },
			diff:  &diff.Result{Source: "git", Complete: false},
			want: func() api.Selection {
				w := api.Reason{Kind: api.ReasonUnknownDiff, Detail: "the diff is incomplete (selection.on_unknown_diff: all)"}
				return api.Selection{Scope: "changed", Effective: "all", Widened: &w, Cases: allWith(w),
					Diff:     &api.DiffSummary{Source: "git"},
					Warnings: []string{"the diff is incomplete; running all cases (selection.on_unknown_diff: all)"}}
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSuite()
			if tt.rules != nil {
				tt.rules(&s.Rules)
			}
			sel, err := New(s)
			if err != nil {
				t.Fatal(err)
			}
			got, err := sel.Select("changed", tt.diff)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSelectUnknownDiffFail(t *testing.T) {
	s := testSuite()
	s.Rules.OnUnknownDiff = "fail"
	sel, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		d    *diff.Result
		want string
	}{
		{nil, "cannot select the changed cases: the diff could not be computed, and selection.on_unknown_diff is fail: fetch the full history (fetch-depth: 0), pass --changed-files, or run with --scope all"},
		{&diff.Result{Reason: "shallow clone: no merge base"}, "cannot select the changed cases: the diff is incomplete: shallow clone: no merge base, and selection.on_unknown_diff is fail"},
	} {
		_, err := sel.Select("changed", tt.d)
		var ude *UnknownDiffError
		if !errors.As(err, &ude) {
			t.Fatalf("err = %v, want *UnknownDiffError", err)
		}
		if !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("err = %q, want prefix %q", err, tt.want)
		}
	}
	// A complete diff is unaffected by on_unknown_diff: fail.
	if _, err := sel.Select("changed", files("api/x")); err != nil {
		t.Fatal(err)
	}
}

func TestCoversReasonsCapped(t *testing.T) {
	s := testSuite()
	s.Rules.MaxChangedFiles = 1000
	sel, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for i := range MaxFileReasons + 3 {
		paths = append(paths, fmt.Sprintf("api/f%02d", i))
	}
	got, err := sel.Select("changed", files(paths...))
	if err != nil {
		t.Fatal(err)
	}
	var want []api.Reason
	for _, p := range paths[:MaxFileReasons] {
		want = append(want, covers(p, "api/**"))
	}
	want = append(want, api.Reason{Kind: api.ReasonCovers, Detail: "and 3 more files"})
	if diff := cmp.Diff([]api.SelectedCase{sc("contract", want...), sc("audit", always)}, got.Cases); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}

	// Exactly at the cap: no "more" reason.
	got, _ = sel.Select("changed", files(paths[:MaxFileReasons]...))
	if n := len(got.Cases[0].Reasons); n != MaxFileReasons {
		t.Errorf("%d reasons at the cap, want %d", n, MaxFileReasons)
	}
}

func TestSelectExplicit(t *testing.T) {
	sel, err := New(testSuite())
	if err != nil {
		t.Fatal(err)
	}
	scope := func(d string) api.Reason { return api.Reason{Kind: api.ReasonScope, Detail: d} }
	tests := []struct {
		scope string
		want  []api.SelectedCase
		err   string
	}{
		{scope: "all", want: allWith(scope("scope all"))},
		{scope: "smoke", want: []api.SelectedCase{sc("login", scope("tagged smoke")), sc("health", scope("tagged smoke"))}},
		{scope: "tag:api", want: []api.SelectedCase{sc("contract", scope("tagged api"))}},
		{scope: "set:release", want: []api.SelectedCase{sc("checkout", scope("in set release")), sc("login", scope("in set release"))}},
		{scope: "id:gofiles,login,login", want: []api.SelectedCase{sc("login", scope("listed in id:gofiles,login,login")), sc("gofiles", scope("listed in id:gofiles,login,login"))}},
		{scope: "set:relase", err: `scope set:relase: unknown set "relase": sets are release, nightly`},
		{scope: "tag:nope", err: `scope tag:nope: unknown tag "nope": tags are api, auth, smoke`},
		{scope: "id:login,nope", err: `scope id:login,nope: unknown case "nope": case ids are login, checkout, contract, health, audit, gofiles`},
		{scope: "id:", err: `scope "id:" names no case: use id:A,B with case ids`},
		{scope: "everything", err: `unknown scope "everything": use all, smoke, changed, tag:NAME, set:NAME or id:A,B`},
	}
	for _, tt := range tests {
		t.Run(tt.scope, func(t *testing.T) {
			got, err := sel.Select(tt.scope, files("go.mod"))
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := api.Selection{Scope: tt.scope, Effective: tt.scope, Cases: tt.want}
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSmokeWithoutSmokeCases(t *testing.T) {
	sel, err := New(Suite{Cases: []Case{{ID: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := sel.Select("smoke", nil)
	if err != nil || got.Cases == nil || len(got.Cases) != 0 {
		t.Fatalf("got %+v, %v; want an empty, non-nil selection", got, err)
	}
}

func TestNewErrors(t *testing.T) {
	s := Suite{
		Cases: []Case{{ID: "a", Covers: []string{"/abs"}}, {ID: "a"}},
		Sets:  []Set{{Name: "s", Cases: []string{"zz"}}},
		Rules: Rules{Global: []string{"x/[y"}, Ignore: []string{"../z"}, Unmapped: "some", OnUnknownDiff: "maybe", MaxChangedFiles: -1},
	}
	_, err := New(s)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`selection.unmapped "some": use all, smoke or none`,
		`selection.on_unknown_diff "maybe": use all, smoke or fail`,
		`selection.max_changed_files -1`,
		`selection.global: pattern 1: invalid path pattern "x/[y"`,
		`selection.ignore: pattern 1: invalid path pattern "../z"`,
		`case "a" covers: pattern 1: invalid path pattern "/abs"`,
		`case "a" is defined twice`,
		`set "s": unknown case "zz": case ids are a, a`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestIndexAgreesWithSets checks the prefix index against plain per-case
// last-match-wins matching on a mix of patterns.
func TestIndexAgreesWithSets(t *testing.T) {
	s := Suite{Cases: []Case{
		{ID: "a", Covers: []string{"**/*.go", "!**/*_test.go", "pkg/x/x_test.go"}},
		{ID: "b", Covers: []string{"pkg/**", "!pkg/x/**", "pkg/x/*.md"}},
		{ID: "c", Covers: []string{"pkg/x", "{pkg,cmd}/*/main.go"}},
		{ID: "d", Covers: []string{"!pkg/**"}},
		{ID: "e", Covers: []string{"p*/**/*.go", "pkg/x/x.go/**"}},
	}, Rules: Rules{MaxChangedFiles: 100, Unmapped: "none"}}
	sel, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{"main.go", "pkg/x/x.go", "pkg/x/x_test.go", "pkg/y/y_test.go", "pkg/x/README.md", "pkg/x", "cmd/zof/main.go", "pkg/x/x.go", "pkg/x/x.go/inner", "pkgs/a.go", "pkg", "other"}
	for _, p := range paths {
		got, err := sel.Select("changed", files(p))
		if err != nil {
			t.Fatal(err)
		}
		var gotIDs, wantIDs []string
		for _, c := range got.Cases {
			gotIDs = append(gotIDs, c.ID)
		}
		for i, c := range s.Cases {
			if ok, _ := sel.covers[i].Match(p); ok {
				wantIDs = append(wantIDs, c.ID)
			}
		}
		if diff := cmp.Diff(wantIDs, gotIDs); diff != "" {
			t.Errorf("%s: mismatch (-want +got):\n%s", p, diff)
		}
	}
}

func FuzzSelect(f *testing.F) {
	f.Add("services/auth/a.go", "api", "x/../y", true)
	f.Add("bad\xff\xfe/a.go", "", "docs/README.md", true)
	f.Add("", "/", "a//b", false)
	f.Add("go.mod", "new\nline", "services/checkout/legacy/keep.go", true)
	s := testSuite()
	s.Rules.Unmapped = "smoke"
	sel, err := New(s)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, a, b, c string, complete bool) {
		d := &diff.Result{Complete: complete, Files: []diff.Change{{Path: a}, {Path: b, OldPath: c}}}
		got, err := sel.Select("changed", d)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, sc := range got.Cases {
			if seen[sc.ID] || len(sc.Reasons) == 0 {
				t.Fatalf("case %q repeated or without reason: %+v", sc.ID, got)
			}
			seen[sc.ID] = true
		}
		if !seen["audit"] {
			t.Fatalf("always case missing: %+v", got)
		}
	})
}
