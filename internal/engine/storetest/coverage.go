package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
)

// CoverageStore is the store of each project's latest coverage summary
// (docs/coverage.md, "On the server"): what zof serve's API and console
// read, and what this suite checks. Coverage is (nil, nil) when the project
// has none; ListCoverage is the tenant's projects by name, at most limit.
type CoverageStore interface {
	PutCoverage(ctx context.Context, tenant string, c *api.ProjectCoverage) error
	Coverage(ctx context.Context, tenant, project string) (*api.ProjectCoverage, error)
	ListCoverage(ctx context.Context, tenant string, limit int) ([]*api.ProjectCoverage, error)
}

// RunCoverage runs the coverage store's conformance suite. open returns a
// new, empty store for one subtest.
func RunCoverage(t *testing.T, open func(t *testing.T) CoverageStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s CoverageStore)
	}{
		{"PutGetAndLatestWins", testCoveragePutGet},
		{"TenantsAndProjectsApart", testCoverageIsolation},
		{"ListByProjectBounded", testCoverageList},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

// Coverage is a valid coverage record of project from run at.
func Coverage(project, run string, at time.Time, uncovered int) *api.ProjectCoverage {
	s := api.CoverageSummary{
		CoverageCounts: api.CoverageCounts{Files: uncovered + 2, Covered: 1, Global: 1, Uncovered: uncovered},
		Modules: []api.ModuleCoverage{
			{Module: "(root)", CoverageCounts: api.CoverageCounts{Files: 1, Global: 1}},
			{Module: "services", CoverageCounts: api.CoverageCounts{Files: uncovered + 1, Covered: 1, Uncovered: uncovered}},
		},
	}
	if uncovered > 0 {
		s.Modules[1].UncoveredFiles = []string{"services/<b>é</b>.go"}
	}
	if err := s.Validate(); err != nil {
		panic(err)
	}
	return &api.ProjectCoverage{Project: project, RunID: run, Commit: "0123abcd", Ref: "refs/heads/main", ReceivedAt: at, Summary: s}
}

func getCoverage(t *testing.T, s CoverageStore, tenant, project string) *api.ProjectCoverage {
	t.Helper()
	c, err := s.Coverage(context.Background(), tenant, project)
	if err != nil {
		t.Fatalf("Coverage(%s, %s): %v", tenant, project, err)
	}
	return c
}

func putCoverage(t *testing.T, s CoverageStore, tenant string, c *api.ProjectCoverage) {
	t.Helper()
	if err := s.PutCoverage(context.Background(), tenant, c); err != nil {
		t.Fatalf("PutCoverage(%s, %s): %v", tenant, c.Project, err)
	}
}

func testCoveragePutGet(t *testing.T, s CoverageStore) {
	if c := getCoverage(t, s, "acme", "shop"); c != nil {
		t.Fatalf("an empty store has coverage %+v", c)
	}
	first := Coverage("shop", "run_1", T0, 3)
	putCoverage(t, s, "acme", first)
	got := getCoverage(t, s, "acme", "shop")
	if d := cmp.Diff(first, got); d != "" {
		t.Fatalf("stored and read back (-put +got):\n%s", d)
	}
	// The caller's copy is its own.
	got.Summary.Modules[1].Module = "changed"
	if again := getCoverage(t, s, "acme", "shop"); again.Summary.Modules[1].Module != "services" {
		t.Fatalf("a read copy shares memory with the store")
	}
	// A newer summary replaces it; an older one (a slower replica) does not.
	newer := Coverage("shop", "run_2", T0.Add(time.Minute), 0)
	putCoverage(t, s, "acme", newer)
	putCoverage(t, s, "acme", Coverage("shop", "run_0", T0.Add(-time.Minute), 7))
	if d := cmp.Diff(newer, getCoverage(t, s, "acme", "shop")); d != "" {
		t.Fatalf("latest (-want +got):\n%s", d)
	}
}

func testCoverageIsolation(t *testing.T, s CoverageStore) {
	putCoverage(t, s, "acme", Coverage("shop", "run_a", T0, 1))
	putCoverage(t, s, "other", Coverage("shop", "run_b", T0, 2))
	putCoverage(t, s, "acme", Coverage("search", "run_c", T0, 3))
	for _, tc := range []struct{ tenant, project, run string }{{"acme", "shop", "run_a"}, {"other", "shop", "run_b"}, {"acme", "search", "run_c"}} {
		if c := getCoverage(t, s, tc.tenant, tc.project); c == nil || c.RunID != tc.run {
			t.Errorf("%s/%s: %+v, want run %s", tc.tenant, tc.project, c, tc.run)
		}
	}
	if c := getCoverage(t, s, "other", "search"); c != nil {
		t.Errorf("tenant other sees acme's project search: %+v", c)
	}
}

func testCoverageList(t *testing.T, s CoverageStore) {
	ctx := context.Background()
	if l, err := s.ListCoverage(ctx, "acme", 10); err != nil || len(l) != 0 {
		t.Fatalf("empty store lists %v, %v", l, err)
	}
	for i, p := range []string{"web", "api", "shop", "mobile"} {
		putCoverage(t, s, "acme", Coverage(p, "run_"+p, T0.Add(time.Duration(i)*time.Second), i))
	}
	putCoverage(t, s, "other", Coverage("aaa", "run_x", T0, 0))
	l, err := s.ListCoverage(ctx, "acme", 3)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range l {
		names = append(names, c.Project)
	}
	if d := cmp.Diff([]string{"api", "mobile", "shop"}, names); d != "" {
		t.Fatalf("ListCoverage(acme, 3) by project, bounded (-want +got):\n%s", d)
	}
	if d := cmp.Diff(Coverage("mobile", "run_mobile", T0.Add(3*time.Second), 3), l[1]); d != "" {
		t.Fatalf("listed record (-want +got):\n%s", d)
	}
}
