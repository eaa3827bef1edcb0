package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine/memstore"
	"github.com/zof-ai/zof-ci/internal/server"
)

var _ server.CoverageStore = (*memstore.Store)(nil)

func coverageHarness(t *testing.T) *harness {
	store := memstore.New()
	h := newHarness(t, harnessOpts{store: store, configure: func(o *server.Options) { o.Coverage = store }})
	return h
}

func summary() *api.CoverageSummary {
	return &api.CoverageSummary{
		CoverageCounts: api.CoverageCounts{Files: 4, Covered: 1, Global: 1, Uncovered: 2, CoveredPercent: 99},
		Modules: []api.ModuleCoverage{
			{Module: "(root)", CoverageCounts: api.CoverageCounts{Files: 1, Global: 1}},
			{Module: "services", CoverageCounts: api.CoverageCounts{Files: 3, Covered: 1, Uncovered: 2}, UncoveredFiles: []string{"services/a.go", "services/b.go"}},
		},
	}
}

func (r resp) coverage(t testing.TB) *api.ProjectCoverage {
	t.Helper()
	var c api.ProjectCoverage
	if r.status != http.StatusOK {
		t.Fatalf("GET /v1/coverage: status %d, body %s", r.status, r.body)
	}
	if err := json.Unmarshal(r.body, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

// TestCoverageFromRunRequest: a run request's summary becomes the project's
// latest, with the run, commit and ref; it is not part of the run; GET
// /v1/coverage serves it to the tenant's viewers and no one else.
func TestCoverageFromRunRequest(t *testing.T) {
	h := coverageHarness(t)
	if p := h.do("GET", "/v1/coverage?project=shop", tokAlphaViewer, nil).problem(t); p.Status != http.StatusNotFound || !strings.Contains(p.Detail, "run zof run --server in a git checkout") {
		t.Fatalf("no coverage yet: %+v", p)
	}
	req := runReq("shop", "staging", []api.Step{httpStep("a")})
	req.Source.SHA, req.Source.Ref = "abc123", "refs/heads/main"
	req.Coverage = summary()
	before := time.Now()
	run := h.create(tokAlphaRunner, req)

	got := h.do("GET", "/v1/coverage?project=shop", tokAlphaViewer, nil).coverage(t)
	want := summary()
	want.CoveredPercent = 25 // computed by the server, not the client's 99
	want.Modules[0].CoveredPercent = 0
	want.Modules[1].CoveredPercent = 33.3
	if got.RunID != run.ID || got.Commit != "abc123" || got.Ref != "refs/heads/main" || got.Project != "shop" ||
		got.ReceivedAt.Before(before.Add(-time.Second)) || got.ReceivedAt.After(time.Now()) {
		t.Fatalf("coverage record %+v", got)
	}
	gotJSON, _ := json.Marshal(got.Summary)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Fatalf("summary\n got %s\nwant %s", gotJSON, wantJSON)
	}
	// The run does not carry it.
	if body := h.do("GET", "/v1/runs/"+run.ID, tokAlphaViewer, nil).body; strings.Contains(string(body), "uncovered") {
		t.Fatalf("the run carries the coverage summary: %s", body)
	}
	// Another tenant has none.
	if r := h.do("GET", "/v1/coverage?project=shop", tokBetaRunner, nil); r.status != http.StatusNotFound {
		t.Fatalf("tenant beta reads alpha's coverage: %d %s", r.status, r.body)
	}
	// A later run without a summary leaves it; one with a summary replaces it.
	h.create(tokAlphaRunner, runReq("shop", "staging", []api.Step{httpStep("a")}))
	if c := h.do("GET", "/v1/coverage?project=shop", tokAlphaViewer, nil).coverage(t); c.RunID != run.ID {
		t.Fatalf("a run without coverage replaced it: %+v", c)
	}
	req2 := runReq("shop", "staging", []api.Step{httpStep("a")})
	req2.Coverage = &api.CoverageSummary{Modules: []api.ModuleCoverage{}}
	run2 := h.create(tokAlphaRunner, req2)
	if c := h.do("GET", "/v1/coverage?project=shop", tokAlphaViewer, nil).coverage(t); c.RunID != run2.ID || c.Summary.Files != 0 || c.Summary.CoveredPercent != 100 {
		t.Fatalf("latest: %+v", c)
	}
}

// TestCoverageIdempotentReplay: a retried create with the same key attaches
// to the run whether or not the retry carries the summary (it is not part of
// the fingerprint).
func TestCoverageIdempotentReplay(t *testing.T) {
	h := coverageHarness(t)
	req := runReq("shop", "staging", []api.Step{httpStep("a")})
	req.Coverage = summary()
	run := h.create(tokAlphaRunner, req, "Idempotency-Key", `"k1"`)
	again := runReq("shop", "staging", []api.Step{httpStep("a")})
	r := h.do("POST", "/v1/runs", tokAlphaRunner, again, "Idempotency-Key", `"k1"`)
	if r.status != http.StatusOK || r.run(t).ID != run.ID {
		t.Fatalf("retry without coverage: %d %s", r.status, r.body)
	}
}

// TestCoverageBadInput: a summary beyond the bounds, or whose counts do not
// add up, is a 400 problem and no run is created; so are bad queries.
func TestCoverageBadInput(t *testing.T) {
	h := coverageHarness(t)
	tooMany := &api.CoverageSummary{}
	for i := range api.MaxCoverageModules + 1 {
		tooMany.Modules = append(tooMany.Modules, api.ModuleCoverage{Module: string(rune('a'+i/26)) + string(rune('a'+i%26))})
	}
	bad := summary()
	bad.Files = 5
	longPath := summary()
	longPath.Modules[1].UncoveredFiles[1] = "services/" + strings.Repeat("x", api.MaxCoveragePathBytes)
	for name, c := range map[string]*api.CoverageSummary{"too many modules": tooMany, "counts": bad, "long path": longPath} {
		req := runReq("shop", "staging", []api.Step{httpStep("a")})
		req.Coverage = c
		p := h.do("POST", "/v1/runs", tokAlphaRunner, req).problem(t)
		if p.Status != http.StatusBadRequest || !strings.HasPrefix(p.Detail, "coverage: ") {
			t.Errorf("%s: %+v", name, p)
		}
	}
	if list := h.do("GET", "/v1/runs", tokAlphaViewer, nil); strings.Contains(string(list.body), `"id"`) {
		t.Errorf("a refused request created a run: %s", list.body)
	}
	for _, q := range []string{"", "?project=", "?project=a&project=b", "?project=a&env=x"} {
		if r := h.do("GET", "/v1/coverage"+q, tokAlphaViewer, nil); r.status != http.StatusBadRequest {
			t.Errorf("GET /v1/coverage%s: %d %s", q, r.status, r.body)
		}
	}
	if r := h.do("GET", "/v1/coverage?project=shop", "", nil); r.status != http.StatusUnauthorized {
		t.Errorf("without a token: %d", r.status)
	}
}

// TestCoverageWithoutStore: a server without a coverage store drops
// summaries (the run goes on) and says GET /v1/coverage is not available.
func TestCoverageWithoutStore(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	req := runReq("shop", "staging", []api.Step{httpStep("a")})
	req.Coverage = summary()
	h.create(tokAlphaRunner, req)
	if p := h.do("GET", "/v1/coverage?project=shop", tokAlphaViewer, nil).problem(t); p.Status != http.StatusNotImplemented {
		t.Fatalf("%+v", p)
	}
}
