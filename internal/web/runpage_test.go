package web

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

func TestTimelineBars(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	run := &api.Run{ID: "r", Status: api.StatusRunning, CreatedAt: t0, StartedAt: t0, Members: []api.Member{
		{ID: "a", Status: api.StatusPassed, StartedAt: t0, FinishedAt: t0.Add(2 * time.Second)},
		{ID: "b", Status: api.StatusRunning, StartedAt: t0.Add(5 * time.Second)},
		{ID: "c", Status: api.StatusQueued},
	}}
	v := NewRunView(run, t0.Add(10*time.Second))
	bars := v.Timeline()
	if len(bars) != 2 {
		t.Fatalf("%d bars, want a and b (c has not started)", len(bars))
	}
	for _, tt := range []struct {
		bar         TimelineBar
		id          string
		left, width float64
		running     bool
	}{
		{bars[0], "a", 0, 20, false},
		{bars[1], "b", 50, 50, true},
	} {
		if tt.bar.ID != tt.id || tt.bar.Left != tt.left || tt.bar.Width != tt.width || tt.bar.Running != tt.running {
			t.Errorf("bar %+v, want %s at %.0f%% for %.0f%% running=%v", tt.bar, tt.id, tt.left, tt.width, tt.running)
		}
	}
	if v.Span() != "10.0s" {
		t.Errorf("span %q", v.Span())
	}
	if NewRunView(&api.Run{ID: "new", Status: api.StatusQueued}, t0).Timeline() != nil {
		t.Errorf("a run that has not started has no timeline")
	}
}

// fakeHistory answers History with fixed records, checking the filter.
type fakeHistory struct {
	t    *testing.T
	recs []engine.HistoryRecord
}

func (h *fakeHistory) History(_ context.Context, tenant string, f engine.HistoryFilter) ([]engine.HistoryRecord, error) {
	if tenant != "payments" || f.Project != "checkout" || f.Since.IsZero() {
		h.t.Errorf("History(%s, %+v): want the run's tenant and project, from a date on", tenant, f)
	}
	return h.recs, nil
}

func TestRunPageTabsLivePartAndStrips(t *testing.T) {
	f := newConsole(t)
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	f.runs.runs["run_live"] = &api.Run{ID: "run_live", Tenant: "payments", Project: "checkout", Environment: "staging", Status: api.StatusRunning,
		CreatedAt: t0, StartedAt: t0, Members: []api.Member{
			{ID: "login", Case: "login", Status: api.StatusPassed, StartedAt: t0, FinishedAt: t0.Add(time.Second)},
			{ID: hostile, Case: hostile, Status: api.StatusRunning, StartedAt: t0.Add(time.Second)},
		}}
	var recs []engine.HistoryRecord
	for i := range 35 {
		st := api.StatusPassed
		if i%4 == 0 {
			st = api.StatusFailed
		}
		recs = append(recs, engine.HistoryRecord{Case: "login", Status: st, RunID: "run_old", FinishedAt: t0.Add(-time.Duration(35-i) * time.Hour)})
	}
	recs = append(recs, engine.HistoryRecord{Case: "other", Status: api.StatusFailed, RunID: "run_x", FinishedAt: t0})
	c, err := New(Options{Runs: f.runs, Actions: f.runs, Auth: f.auth, History: &fakeHistory{t: t, recs: recs}, Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Config.Handler = c
	b := f.login(t, "tok-pay")

	_, body := do(t, b, "GET", f.srv.URL+"/runs/run_live", nil)
	for _, want := range []string{
		`<nav class="tabs" aria-label="Run sections" id="tabs">`,
		`<section id="timeline" class="tab"`, `data-timeline="login"`,
		`id="refresh" hidden`, `id="pause" aria-pressed="false"`, `<option value="2" selected>2 s</option>`,
		"failed 9 times in 14 days", // 35 records in the 14 days, 9 failed; the strip shows the last 30
	} {
		if !strings.Contains(body, want) {
			t.Errorf("run page lacks %q", want)
		}
	}
	if n := strings.Count(body, `class="o s-`); n != 30 {
		t.Errorf("%d outcomes in the strip, want the last 30", n)
	}
	if strings.Contains(body, "<script>alert") {
		t.Fatalf("a hostile member id became markup on the run page")
	}

	res, part := do(t, b, "GET", f.srv.URL+"/runs/run_live?part=live", nil)
	if res.StatusCode != 200 || strings.Contains(part, "<html") || strings.Contains(part, `id="tabs"`) {
		t.Fatalf("?part=live must be only the live parts: %d\n%s", res.StatusCode, part)
	}
	for _, id := range []string{`id="summary"`, `id="results"`, `id="timeline"`} {
		if !strings.Contains(part, id) {
			t.Errorf("?part=live lacks %s", id)
		}
	}
	if strings.Contains(part, "<script>alert") || !strings.Contains(part, "&lt;script&gt;") {
		t.Errorf("?part=live must escape the hostile member id")
	}
	if res, _ := do(t, b, "GET", f.srv.URL+"/runs/run_b?part=live", nil); res.StatusCode != 404 {
		t.Errorf("?part=live of another tenant's run: %d, want 404", res.StatusCode)
	}
}

// TestSlotsCanBeFilled: a template defined after 0slots.html replaces a slot
// (as a later file in templates/ does), and gets the failed step's place.
func TestSlotsCanBeFilled(t *testing.T) {
	tm, err := parseTemplates()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tm.Parse(`{{define "failure-artifacts"}}<a class="evidence" href="/v1/runs/{{.RunID}}/artifacts?member={{.MemberID}}&amp;step={{.StepIndex}}">evidence</a>{{end}}`); err != nil {
		t.Fatal(err)
	}
	run := &api.Run{ID: "r1", Status: api.StatusFailed, Members: []api.Member{{ID: "m", Status: api.StatusFailed,
		Steps: []api.StepResult{{Name: "ok", Status: api.StepPassed}, {Name: "bad", Status: api.StepFailed, Failure: &api.Failure{Message: "500"}}}}}}
	var buf strings.Builder
	if err := tm.ExecuteTemplate(&buf, "run-body", NewRunView(run, time.Now())); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `href="/v1/runs/r1/artifacts?member=0&amp;step=1"`) {
		t.Errorf("the filled slot is not rendered with the failure's place:\n%s", buf.String())
	}
}

// fakeOutcomes answers RecentOutcomes (newest first, PerCase per case) and
// refuses History: with an OutcomeReader the run page must not read the
// project's whole history.
type fakeOutcomes struct {
	t    *testing.T
	recs []engine.HistoryRecord // newest first
}

func (h *fakeOutcomes) History(context.Context, string, engine.HistoryFilter) ([]engine.HistoryRecord, error) {
	h.t.Error("History called although the store reads outcomes per case")
	return nil, nil
}

func (h *fakeOutcomes) RecentOutcomes(_ context.Context, tenant string, f engine.OutcomeFilter) ([]engine.HistoryRecord, error) {
	var out []engine.HistoryRecord
	for _, c := range f.Cases {
		n := 0
		for _, r := range h.recs {
			if r.Case == c && n < f.PerCase {
				out = append(out, r)
				n++
			}
		}
	}
	return out, nil
}

func TestStripsFromOutcomeReader(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	var recs []engine.HistoryRecord
	for i := range 40 { // newest first: i hours ago
		st := api.StatusPassed
		if i < 4 {
			st = api.StatusFailed
		}
		recs = append(recs, engine.HistoryRecord{Case: "busy", Status: st, RunID: fmt.Sprintf("run_%02d", i), FinishedAt: t0.Add(-time.Duration(i) * time.Hour)})
	}
	recs = append(recs, engine.HistoryRecord{Case: "calm", Status: api.StatusFailed, RunID: "run_c", FinishedAt: t0.Add(-time.Hour)})
	run := &api.Run{ID: "r", Tenant: "payments", Project: "checkout", Members: []api.Member{{ID: "busy", Case: "busy"}, {ID: "calm", Case: "calm"}, {ID: "new", Case: "new"}}}
	v := NewRunView(run, t0)
	st, err := strips(context.Background(), &fakeOutcomes{t: t, recs: recs}, run, v.Members, t0)
	if err != nil {
		t.Fatal(err)
	}
	busy := st["busy"]
	if busy == nil || len(busy.Outcomes) != 30 || busy.Outcomes[0].RunID != "run_29" || busy.Outcomes[29].RunID != "run_00" {
		t.Fatalf("busy strip %+v, want the 30 newest, oldest first", busy)
	}
	if busy.Text != "failed 4 of the last 30 runs" {
		t.Errorf("busy: %q", busy.Text)
	}
	if c := st["calm"]; c == nil || c.Text != "failed once in 14 days" {
		t.Errorf("calm: %+v", c)
	}
	if st["new"] != nil {
		t.Errorf("a case without history has no strip")
	}
}
