package gate

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/diff"
	"github.com/zof-ai/zof-ci/internal/suite"
)

const shadowSuite = `version: 1
project: shop
environments:
  local: {url: "http://127.0.0.1:1"}
selection:
  ignore: ["docs/**"]
  unmapped: none
cases:
  - id: cart
    tags: [smoke]
    covers: ["services/cart/**"]
    steps: [{run: "true"}]
  - id: search
    covers: ["services/search/**"]
    steps: [{run: "true"}]
  - id: orphan
    steps: [{run: "true"}]
`

func changedFiles(paths ...string) *diff.Result {
	d := &diff.Result{Source: diff.SourceOverride, Complete: true}
	for _, p := range paths {
		d.Files = append(d.Files, diff.Change{Path: p})
	}
	return d
}

func TestPlanShadow(t *testing.T) {
	s, err := suite.Parse("zof.yaml", strings.NewReader(shadowSuite), suite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, scope string
		change      *diff.Result
		want        *api.ShadowPlan
	}{
		{"covers edge only", "changed", changedFiles("services/cart/a.go"), &api.ShadowPlan{
			Scope: "changed", Effective: "changed", Selected: []string{"cart"},
			Left: []api.ShadowLeft{
				{Case: "search", Why: api.ShadowWhyNoEdge, Detail: "none of the 1 changed file matches its covers (services/search/**)"},
				{Case: "orphan", Why: api.ShadowWhyNoCovers, Detail: "the case has no covers, so no change selects it: add the paths it tests"},
			},
		}},
		{"a file outside every pattern wins", "changed", changedFiles("services/cart/a.go", "tools/x.go"), &api.ShadowPlan{
			Scope: "changed", Effective: "changed", Selected: []string{"cart"},
			Left: []api.ShadowLeft{
				{Case: "search", Why: api.ShadowWhyUnmapped, Detail: "changed file outside every pattern: tools/x.go; selection.unmapped did not widen to this case"},
				{Case: "orphan", Why: api.ShadowWhyUnmapped, Detail: "changed file outside every pattern: tools/x.go; selection.unmapped did not widen to this case"},
			},
		}},
		{"ignored files", "changed", changedFiles("services/cart/a.go", "docs/a.md"), &api.ShadowPlan{
			Scope: "changed", Effective: "changed", Selected: []string{"cart"},
			Left: []api.ShadowLeft{
				{Case: "search", Why: api.ShadowWhyIgnored, Detail: "changed file dropped by selection.ignore: docs/a.md"},
				{Case: "orphan", Why: api.ShadowWhyNoCovers, Detail: "the case has no covers, so no change selects it: add the paths it tests"},
			},
		}},
		{"smoke", "smoke", nil, &api.ShadowPlan{
			Scope: "smoke", Effective: "smoke", Selected: []string{"cart"},
			Left: []api.ShadowLeft{
				{Case: "search", Why: api.ShadowWhyNotSmoke, Detail: "not tagged smoke"},
				{Case: "orphan", Why: api.ShadowWhyNotSmoke, Detail: "not tagged smoke"},
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := PlanShadow(s, tt.scope, "local", tt.change, "zof.yaml")
			if err != nil {
				t.Fatal(err)
			}
			// Never narrows: every case is planned and requested.
			if got := p.SelectedIDs(); !cmp.Equal(got, []string{"cart", "search", "orphan"}) {
				t.Errorf("planned %v, want every case", got)
			}
			if len(p.Request.Cases) != 3 {
				t.Errorf("the request has %d cases, want 3", len(p.Request.Cases))
			}
			if d := cmp.Diff(tt.want, p.Selection.Shadow); d != "" {
				t.Errorf("shadow (-want +got):\n%s", d)
			}
			if p.Request.Selection.Shadow == nil || p.Selection.Scope != tt.scope || p.Selection.Effective != "all" {
				t.Errorf("the request does not carry the shadow selection: %+v", p.Request.Selection)
			}
		})
	}
	for _, scope := range []string{"all", "tag:smoke", "set:x", "id:cart"} {
		_, err := PlanShadow(s, scope, "local", nil, "")
		if !IsUsage(err) || !strings.Contains(err.Error(), "--scope changed or --scope smoke") {
			t.Errorf("scope %s: err = %v, want a usage error naming changed and smoke", scope, err)
		}
	}
}

func TestShadowOf(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)
	member := func(c, variant string, st api.Status, secs int) api.Member {
		return api.Member{ID: c, Case: c, Variant: variant, Status: st, StartedAt: t0, FinishedAt: t0.Add(time.Duration(secs) * time.Second)}
	}
	shadow := &api.ShadowPlan{Scope: "changed", Selected: []string{"cart"}, Left: []api.ShadowLeft{{Case: "search", Why: api.ShadowWhyNoEdge, Detail: "d"}}}
	tests := []struct {
		name    string
		status  api.Status
		members []api.Member
		failOn  []string
		want    *api.ShadowResult
	}{
		{"subset passes, failure outside", api.StatusFailed,
			[]api.Member{member("cart", "", api.StatusPassed, 1), member("search", "eu", api.StatusFailed, 3)}, AllOutcomes,
			&api.ShadowResult{Scope: "changed", Selected: []string{"cart"}, Verdict: "passed", TimeShare: 0.25, Members: 2, SelectedMembers: 1,
				Missed: []api.ShadowMiss{{Case: "search", Variant: "eu", Status: api.StatusFailed, Why: api.ShadowWhyNoEdge, Detail: "d"}}}},
		{"subset fails", api.StatusFailed,
			[]api.Member{member("cart", "", api.StatusFailed, 1), member("search", "", api.StatusPassed, 1)}, AllOutcomes,
			&api.ShadowResult{Scope: "changed", Selected: []string{"cart"}, Verdict: "failed", TimeShare: 0.5, Members: 2, SelectedMembers: 1, Missed: []api.ShadowMiss{}}},
		{"failed outside fail_on", api.StatusFailed,
			[]api.Member{member("cart", "", api.StatusFailed, 0)}, []string{OutcomeBlocked},
			&api.ShadowResult{Scope: "changed", Selected: []string{"cart"}, Verdict: "passed", TimeShare: 1, Members: 1, SelectedMembers: 1, Missed: []api.ShadowMiss{}}},
		{"cancelled run", api.StatusCancelled,
			[]api.Member{member("cart", "", api.StatusCancelled, 2)}, AllOutcomes,
			&api.ShadowResult{Scope: "changed", Selected: []string{"cart"}, Verdict: "cancelled", TimeShare: 1, Members: 1, SelectedMembers: 1, Missed: []api.ShadowMiss{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &api.Run{Status: tt.status, Members: tt.members, Selection: api.Selection{Shadow: shadow}}
			if d := cmp.Diff(tt.want, ShadowOf(r, tt.failOn)); d != "" {
				t.Errorf("ShadowOf (-want +got):\n%s", d)
			}
		})
	}
	if ShadowOf(&api.Run{}, AllOutcomes) != nil {
		t.Error("a run that is not a shadow run has a shadow result")
	}
}

func TestShadowSampled(t *testing.T) {
	tests := []struct {
		pr   int
		ref  string
		n    int
		want bool
	}{
		{8, "refs/pull/8/merge", 4, true},
		{9, "refs/pull/9/merge", 4, false},
		{9, "anything", 1, true},
		{9, "anything", 0, true},
		{0, "refs/heads/main", 1, true},
	}
	for _, tt := range tests {
		if got := ShadowSampled(tt.pr, tt.ref, tt.n); got != tt.want {
			t.Errorf("ShadowSampled(%d, %q, %d) = %v, want %v", tt.pr, tt.ref, tt.n, got, tt.want)
		}
	}
	// Without a pull request, branches spread over the N buckets and each decides alike every time.
	in := 0
	for i := range 1000 {
		ref := "refs/heads/feature-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strings.Repeat("y", i/26)
		a, b := ShadowSampled(0, ref, 10), ShadowSampled(0, ref, 10)
		if a != b {
			t.Fatalf("%s decided differently twice", ref)
		}
		if a {
			in++
		}
	}
	if in < 50 || in > 150 {
		t.Errorf("%d of 1000 branches sampled at one in 10, want about 100", in)
	}
}
