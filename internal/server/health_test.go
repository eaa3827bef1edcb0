package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/server"
)

// fakeHistory answers History from recs of every tenant, filtered the way
// the engine.HistoryStore contract says, and reports prunes.
type fakeHistory struct {
	mu      sync.Mutex
	recs    []engine.HistoryRecord
	shadows []engine.ShadowRecord
	pruned  chan time.Time
}

var _ engine.HistoryStore = (*fakeHistory)(nil)

func (f *fakeHistory) History(_ context.Context, tenant string, flt engine.HistoryFilter) ([]engine.HistoryRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []engine.HistoryRecord
	for _, r := range f.recs {
		if r.Tenant == tenant && r.Project == flt.Project && !r.FinishedAt.Before(flt.Since) &&
			(flt.Environment == "" || r.Environment == flt.Environment) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeHistory) HealthSummary(_ context.Context, tenant string, flt engine.SummaryFilter) ([]engine.CaseSummary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	last := map[engine.CaseKey]*engine.LastOutcome{}
	days := engine.FoldHistory(last, f.recs)
	return engine.SummarizeDays(tenant, flt, days, last), nil
}

func (f *fakeHistory) ShadowHistory(_ context.Context, tenant string, flt engine.HistoryFilter) ([]engine.ShadowRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []engine.ShadowRecord
	for _, r := range f.shadows {
		if r.Tenant == tenant && r.Project == flt.Project && !r.FinishedAt.Before(flt.Since) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeHistory) PruneHistory(_ context.Context, before time.Time) (int64, error) {
	select {
	case f.pruned <- before:
	default:
	}
	return 0, nil
}

func TestHealth(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	rec := func(tenant, env, c string, daysAgo int, st api.Status) engine.HistoryRecord {
		return engine.HistoryRecord{Tenant: tenant, Project: "shop", Environment: env, Case: c, Status: st, Attempts: 1,
			RunID: "r", Duration: time.Second, FinishedAt: now.Add(-time.Duration(daysAgo) * 24 * time.Hour)}
	}
	fh := &fakeHistory{pruned: make(chan time.Time, 1), recs: []engine.HistoryRecord{
		rec("alpha", "staging", "login", 2, api.StatusFailed),
		rec("alpha", "staging", "login", 1, api.StatusFailed),
		rec("alpha", "prod", "cart", 1, api.StatusPassed),
		rec("alpha", "staging", "old", 40, api.StatusPassed),
		rec("beta", "staging", "secret-case", 1, api.StatusFailed),
	}, shadows: []engine.ShadowRecord{
		{Tenant: "alpha", Project: "shop", RunID: "s1", FinishedAt: now.Add(-24 * time.Hour), Members: 2, Selected: 1, Failures: 1,
			Duration: 2 * time.Second, SubsetDuration: time.Second,
			Missed: []engine.ShadowMissed{{Case: "cart", Why: api.ShadowWhyNoCovers, Detail: "the case has no covers"}},
			Left:   []engine.ShadowLeftMember{{Case: "cart", Duration: time.Second}}},
		{Tenant: "beta", Project: "shop", RunID: "s2", FinishedAt: now.Add(-24 * time.Hour), Members: 2, Selected: 2},
	}}
	h := newHarness(t, harnessOpts{now: func() time.Time { return now }, configure: func(o *server.Options) {
		o.History = fh
		o.Now = func() time.Time { return now }
	}})
	select {
	case before := <-fh.pruned:
		if want := now.Add(-90 * 24 * time.Hour); !before.Equal(want) {
			t.Errorf("pruned before %v, want history_days (default 90) back: %v", before, want)
		}
	case <-time.After(waitLimit):
		t.Fatal("the server did not prune history on start")
	}

	cases := func(r resp) []string {
		t.Helper()
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		var got api.Health
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range got.Cases {
			out = append(out, fmt.Sprint(c.Case, "=", c.FailureRate))
		}
		return out
	}
	for _, tt := range []struct {
		query string
		want  string
	}{
		{"project=shop", "login=1 cart=0"},
		{"project=shop&environment=prod", "cart=0"},
		{"project=shop&since=60d", "login=1 cart=0 old=0"},
		{"project=nope", ""},
	} {
		got := strings.Join(cases(h.do("GET", "/v1/health?"+tt.query, tokAlphaViewer, nil)), " ")
		if got != tt.want {
			t.Errorf("%s: cases %q, want %q", tt.query, got, tt.want)
		}
	}
	// Tenant-scoped: beta sees only its own case.
	if got := cases(h.do("GET", "/v1/health?project=shop", tokBetaRunner, nil)); strings.Join(got, " ") != "secret-case=1" {
		t.Errorf("beta sees %q", got)
	}
	for _, tt := range []struct {
		query, detail string
	}{
		{"", "give ?project=NAME"},
		{"project=shop&since=forever", `since "forever": give whole days like 30d`},
		{"project=shop&since=400d", "at most 366d"},
		{"project=shop&since=0d", "more than 0"},
		{"project=shop&proj=x", `unknown query parameter "proj"`},
		{"project=shop&project=blog", "project is given 2 times"},
	} {
		r := h.do("GET", "/v1/health?"+tt.query, tokAlphaViewer, nil)
		if r.status != http.StatusBadRequest || !strings.Contains(r.problem(t).Detail, tt.detail) {
			t.Errorf("%q: %d %s, want 400 with %q", tt.query, r.status, r.body, tt.detail)
		}
	}
	if r := h.do("GET", "/v1/health?project=shop", "", nil); r.status != http.StatusUnauthorized {
		t.Errorf("no token: %d", r.status)
	}

	// Selection safety: alpha's shadow run missed cart; beta's is its own.
	r := h.do("GET", "/v1/health/selection?project=shop", tokAlphaViewer, nil)
	var sel api.SelectionHealth
	if r.status != http.StatusOK || json.Unmarshal(r.body, &sel) != nil {
		t.Fatalf("GET /v1/health/selection: %d %s", r.status, r.body)
	}
	if sel.ShadowRuns != 1 || sel.FaultyRuns != 1 || sel.CaughtRuns != 0 || len(sel.Missed) != 1 || sel.Missed[0].Case != "cart" ||
		!strings.Contains(sel.Missed[0].Hint, "give cart covers") {
		t.Errorf("selection health of alpha: %s", r.body)
	}
	r = h.do("GET", "/v1/health/selection?project=shop", tokBetaRunner, nil)
	if r.status != http.StatusOK || json.Unmarshal(r.body, &sel) != nil || sel.ShadowRuns != 1 || sel.FaultyRuns != 0 {
		t.Errorf("selection health of beta: %d %s", r.status, r.body)
	}
	if r := h.do("GET", "/v1/health/selection?project=shop&since=forever", tokAlphaViewer, nil); r.status != http.StatusBadRequest ||
		!strings.Contains(r.problem(t).Detail, "GET /v1/health/selection") && !strings.Contains(r.problem(t).Detail, "give whole days") {
		t.Errorf("bad since: %d %s", r.status, r.body)
	}
}

// TestHealthWithoutHistory: a store that records no history (neither SQLite
// nor PostgreSQL: a store without the capability) answers 501 saying so, never an empty report that reads as healthy.
func TestHealthWithoutHistory(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	r := h.do("GET", "/v1/health?project=shop", tokAlphaViewer, nil)
	if r.status != http.StatusNotImplemented || !strings.Contains(string(r.body), "does not record test history") {
		t.Errorf("%d %s, want 501 saying no history is recorded", r.status, r.body)
	}
}
