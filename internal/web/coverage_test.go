package web

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// fakeCoverage holds summaries per tenant and project and counts the
// single-project reads.
type fakeCoverage struct {
	mu    sync.Mutex
	byKey map[[2]string]*api.ProjectCoverage
	gets  int
	err   error
}

var _ Coverage = (*fakeCoverage)(nil)

func (f *fakeCoverage) Coverage(_ context.Context, tenant, project string) (*api.ProjectCoverage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	return f.byKey[[2]string{tenant, project}], f.err
}

func (f *fakeCoverage) ListCoverage(_ context.Context, tenant string, limit int) ([]*api.ProjectCoverage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*api.ProjectCoverage
	for k, c := range f.byKey {
		if k[0] == tenant {
			out = append(out, c)
		}
	}
	sortCoverage(out)
	return out[:min(len(out), limit)], f.err
}

func sortCoverage(l []*api.ProjectCoverage) {
	for i := range l {
		for j := i + 1; j < len(l); j++ {
			if l[j].Project < l[i].Project {
				l[i], l[j] = l[j], l[i]
			}
		}
	}
}

func projectCoverage(project string, at time.Time) *api.ProjectCoverage {
	s := api.CoverageSummary{
		CoverageCounts: api.CoverageCounts{Files: 9, Covered: 3, Global: 1, Ignored: 2, Uncovered: 3},
		Modules: []api.ModuleCoverage{
			{Module: "(root)", CoverageCounts: api.CoverageCounts{Files: 3, Global: 1, Ignored: 1, Uncovered: 1}, UncoveredFiles: []string{"main.go"}},
			{Module: hostile, CoverageCounts: api.CoverageCounts{Files: 5, Covered: 3, Uncovered: 2}, UncoveredFiles: []string{"services/" + hostile + ".go"}},
			{Module: "docs", CoverageCounts: api.CoverageCounts{Files: 1, Ignored: 1}},
		},
		ModulesOmitted: 0,
	}
	if err := s.Validate(); err != nil {
		panic(err)
	}
	return &api.ProjectCoverage{Project: project, RunID: "run_cov", Commit: "0123456789abcdef0123", Ref: "refs/heads/main", ReceivedAt: at, Summary: s}
}

// coverageSection is the home page's coverage section.
func coverageSection(t *testing.T, body string) string {
	t.Helper()
	i := strings.Index(body, `<h2 id="coverage">`)
	j := strings.Index(body, "<h2>Upcoming schedules</h2>")
	if i < 0 || j < i {
		t.Fatalf("the home page has no coverage section:\n%s", body)
	}
	return body[i:j]
}

// TestHomeCoverage: the home page shows each project's latest coverage by
// module (percentages, uncovered counts, the run, commit and when), escaped;
// a project of the day's runs without any says how to get one; another
// tenant's coverage never shows. The section is golden
// (testdata/home-coverage.golden.html; go test -update rewrites it).
func TestHomeCoverage(t *testing.T) {
	f := newConsole(t)
	now := time.Date(2026, 12, 6, 11, 0, 0, 0, time.UTC) // the fixture's clock
	cov := &fakeCoverage{byKey: map[[2]string]*api.ProjectCoverage{
		{"payments", "billing"}:         projectCoverage("billing", now.Add(-90*time.Minute)),
		{"search", "secret-project"}:    projectCoverage("secret-project", now),
		{"payments", "<b>bold</b>-app"}: projectCoverage("<b>bold</b>-app", now.Add(-25*time.Hour)),
	}}
	c, err := New(Options{Runs: f.runs, Actions: f.runs, Auth: f.auth, Now: func() time.Time { return now }, Coverage: cov})
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Config.Handler = c
	_, body := do(t, f.login(t, "tok-pay"), "GET", f.srv.URL+"/", nil)
	got := coverageSection(t, body)
	for _, want := range []string{
		"<h3>billing</h3>", "9 files, <strong>42.9%</strong> covered by a case, <strong>3</strong> uncovered",
		`from run <a href="/runs/run_cov">run_cov</a> at commit <code>0123456789ab</code> (main), 2026-12-06 09:30 UTC (1h30m ago)`,
		`<td>docs</td><td>1</td><td><meter min="0" max="100" value="100">100.0%</meter> 100.0%</td><td>0</td>`,
		"<td>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;",
		"<h3>&lt;b&gt;bold&lt;/b&gt;-app</h3>",
		// checkout ran today and has no summary.
		"No coverage yet for <strong>checkout</strong>: run <code>zof run --server</code> in a git checkout",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("coverage section lacks %q", want)
		}
	}
	for _, bad := range []string{"secret-project", "<script>alert", "<b>bold"} {
		if strings.Contains(body, bad) {
			t.Errorf("home shows %q (another tenant's, or unescaped)", bad)
		}
	}
	golden := filepath.Join("testdata", "home-coverage.golden.html")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/web -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("the coverage section differs from %s; if intended, run go test ./internal/web -update and review the diff\n%s", golden, got)
	}
}

// TestHomeCoverageNone: no summary at all says how to get one; a failing
// store leaves the rest of the page; without a store the section is absent.
func TestHomeCoverageNone(t *testing.T) {
	f := newConsole(t)
	f.runs.runs = map[string]*api.Run{} // no run today: no project is known
	cov := &fakeCoverage{}
	c, err := New(Options{Runs: f.runs, Actions: f.runs, Auth: f.auth, Coverage: cov})
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Config.Handler = c
	_, body := do(t, f.login(t, "tok-pay"), "GET", f.srv.URL+"/", nil)
	if got := coverageSection(t, body); !strings.Contains(got, "No coverage yet: run <code>zof run --server</code> in a git checkout of a project") {
		t.Errorf("coverage section %s", got)
	}
	cov.err = errors.New("database down")
	resp, body := do(t, f.login(t, "tok-pay"), "GET", f.srv.URL+"/", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "<h2>Needs attention</h2>") {
		t.Errorf("a failing coverage store broke the home page: %d", resp.StatusCode)
	}
	c, err = New(Options{Runs: f.runs, Actions: f.runs, Auth: f.auth})
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Config.Handler = c
	if _, body := do(t, f.login(t, "tok-pay"), "GET", f.srv.URL+"/", nil); strings.Contains(body, `id="coverage"`) {
		t.Errorf("a console without a coverage store shows the section")
	}
}

// A project past the bounded list is read on its own rather than said to
// have no coverage.
func TestCoverageOfBeyondTheList(t *testing.T) {
	now := time.Date(2026, 12, 6, 11, 0, 0, 0, time.UTC)
	cov := &fakeCoverage{byKey: map[[2]string]*api.ProjectCoverage{}}
	for i := range homeCoverage {
		p := string(rune('a'+i/26)) + string(rune('a'+i%26))
		cov.byKey[[2]string{"t", p}] = projectCoverage(p, now)
	}
	views, none, err := coverageOf(context.Background(), cov, "t", []string{"zz"}, now)
	if err != nil || len(views) != homeCoverage || len(none) != 0 || cov.gets != 0 {
		t.Fatalf("full list: %d views, none %v, %d gets, %v", len(views), none, cov.gets, err)
	}
	delete(cov.byKey, [2]string{"t", "aa"})
	cov.byKey[[2]string{"t", "zz"}] = projectCoverage("zz", now)
	views, none, err = coverageOf(context.Background(), cov, "t", []string{"zz"}, now)
	if err != nil || len(views) != homeCoverage || views[len(views)-1].Project != "zz" || len(none) != 0 {
		t.Fatalf("%d views, none %v, %v", len(views), none, err)
	}
}
