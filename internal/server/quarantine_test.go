package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/server"
)

// TestQuarantineLeftAfterCleanDays: on a fake clock, a quarantined case
// whose history shows 30 days without a failure leaves quarantine by itself
// (its member counts in the gate again, and the selection says so); one that
// failed recently stays quarantined; a broken one is never released.
func TestQuarantineLeftAfterCleanDays(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	rec := func(c string, ago time.Duration, st api.Status) engine.HistoryRecord {
		return engine.HistoryRecord{Tenant: "alpha", Project: "shop", Environment: "staging", Case: c, Status: st, Attempts: 1,
			Quarantined: true, RunID: "r", Duration: time.Second, FinishedAt: now.Add(-ago)}
	}
	fh := &fakeHistory{pruned: make(chan time.Time, 1), recs: []engine.HistoryRecord{
		rec("case-1", 45*day, api.StatusFailed), rec("case-2", 45*day, api.StatusFailed), rec("case-3", 45*day, api.StatusFailed),
		rec("case-1", 31*day, api.StatusFailed), // clean since: 31 days
		rec("case-2", 10*day, api.StatusFailed), // clean 10 days only
		rec("case-3", 3*day, api.StatusFailed),  // broken: every run of 7 days failed
		rec("case-1", 2*day, api.StatusPassed), rec("case-2", 2*day, api.StatusPassed),
	}}
	h := newHarness(t, harnessOpts{now: func() time.Time { return now }, configure: func(o *server.Options) {
		o.History = fh
		o.Now = func() time.Time { return now }
	}})
	req := runReq("shop", "staging", []api.Step{httpStep("a")}, []api.Step{httpStep("b")}, []api.Step{httpStep("c")}, []api.Step{httpStep("d")})
	for i := range 3 {
		req.Cases[i].Quarantine = &api.Quarantine{Owner: "team", Reason: "flaky"}
	}
	run := h.create(tokAlphaRunner, req)
	got := map[string][2]bool{}
	for _, m := range run.Members {
		got[m.Case] = [2]bool{m.Quarantined, m.QuarantineReleased}
	}
	want := map[string][2]bool{"case-1": {false, true}, "case-2": {true, false}, "case-3": {true, false}, "case-4": {false, false}}
	for c, w := range want {
		if got[c] != w {
			t.Errorf("%s: quarantined, released = %v, want %v", c, got[c], w)
		}
	}
	if w := strings.Join(run.Selection.Warnings, "\n"); !strings.Contains(w, "left quarantine after 30 days without a failure") || !strings.HasSuffix(w, ": case-1") {
		t.Errorf("warnings %q, want case-1's release", w)
	}
	// The caller's request is unchanged.
	if req.Cases[0].Quarantine.Released {
		t.Error("the caller's request was changed")
	}
}
