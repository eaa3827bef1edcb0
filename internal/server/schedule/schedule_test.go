package schedule_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/memstore"
	"github.com/zof-ai/zof-ci/internal/server"
	"github.com/zof-ai/zof-ci/internal/server/config"
	"github.com/zof-ai/zof-ci/internal/server/schedule"
	"github.com/zof-ai/zof-ci/internal/step"
	"github.com/zof-ai/zof-ci/internal/trigger"
)

const suiteText = `version: 1
project: shop
environments:
  staging:
    url: http://127.0.0.1:9
defaults:
  environment: staging
cases:
  - id: a
    tags: [smoke]
    steps:
      - {name: one, run: "true"}
  - id: b
    steps:
      - {name: two, run: "true"}
`

type passSteps struct{}

func (passSteps) Run(context.Context, api.Step, step.Input) step.Output {
	return step.Output{Status: api.StepPassed}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	cfg   *config.Config
	store *memstore.Store
	eng   *engine.Engine
	srv   *server.Server
	logs  *syncBuffer
}

func newHarness(t *testing.T, schedules string) *harness {
	dir := t.TempDir()
	path := filepath.Join(dir, "nightly.yaml")
	if err := os.WriteFile(path, []byte(suiteText), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := `
tenants:
  acme:
    allow_commands: true
    allowed_targets: ["http://127.0.0.1:*"]
    tokens: [{name: x, role: viewer, sha256: 0000000000000000000000000000000000000000000000000000000000000000}]
    schedules:
` + strings.ReplaceAll(schedules, "SUITE", path)
	cfg, err := config.Parse([]byte(yaml), "server.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{cfg: cfg, store: memstore.New(), logs: &syncBuffer{}}
	h.eng, err = engine.New(engine.Config{Store: h.store, Steps: passSteps{}, TenantLimit: cfg.TenantLimit, LeaveQueuedOnStop: true})
	if err != nil {
		t.Fatal(err)
	}
	h.srv, err = server.New(server.Options{Config: cfg, Engine: h.eng, Triggers: h.store, Audit: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = h.eng.Run(ctx) }()
	t.Cleanup(func() { h.srv.Close(); cancel(); <-done })
	return h
}

func (h *harness) scheduler(t *testing.T) *schedule.Scheduler {
	s, err := schedule.New(schedule.Options{Config: h.cfg, Store: h.store, Submitter: h.srv,
		Logger: slog.New(slog.NewTextHandler(h.logs, nil)), Backoff: trigger.Backoff{Sleep: func(context.Context, time.Duration) error { return nil }}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (h *harness) runs(t *testing.T) []*api.Run {
	runs, _, err := h.eng.List(context.Background(), "acme", engine.ListFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

func (h *harness) triggers(t *testing.T) []*trigger.Record {
	list, _, err := h.store.ListTriggers(context.Background(), "acme", trigger.Filter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

const nightly = `      - {name: nightly, cron: "0 2 * * *", suite_file: SUITE, environment: staging, scope: smoke}
`

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestTickCreatesOneRunAcrossSchedulers: two schedulers (two server
// processes) on one store see the same tick; it creates exactly one run,
// with the schedule as its trigger.
func TestTickCreatesOneRunAcrossSchedulers(t *testing.T) {
	h := newHarness(t, nightly)
	a, b := h.scheduler(t), h.scheduler(t)
	now := at("2025-03-01T02:00:20Z")
	var fa, fb []schedule.Fired
	var wg sync.WaitGroup
	wg.Go(func() { fa = a.Check(context.Background(), now) })
	wg.Go(func() { fb = b.Check(context.Background(), now) })
	wg.Wait()
	a.Wait()
	b.Wait()
	if len(fa) != 1 || len(fb) != 1 || fa[0].Duplicate == fb[0].Duplicate || fa[0].Trigger != fb[0].Trigger {
		t.Fatalf("fired %+v and %+v: want one new and one duplicate of the same trigger", fa, fb)
	}
	runs := h.runs(t)
	if len(runs) != 1 {
		t.Fatalf("%d runs, want 1", len(runs))
	}
	r := runs[0]
	want := api.Source{Provider: "local", Trigger: api.TriggerSchedule, TriggerID: "nightly@2025-03-01T02:00:00Z"}
	if r.Source != want || r.Labels["schedule"] != "nightly" || len(r.Members) != 1 || r.Members[0].ID != "a" {
		t.Errorf("run source %+v labels %v members %d", r.Source, r.Labels, len(r.Members))
	}
	trs := h.triggers(t)
	if len(trs) != 1 || trs[0].State != api.TriggerRunCreated || trs[0].RunID != r.ID || trs[0].Key != "nightly@2025-03-01T02:00:00Z" {
		t.Errorf("triggers %+v", trs)
	}
	// Checking again in the same minute, or later before the next tick, fires nothing.
	for _, later := range []string{"2025-03-01T02:00:50Z", "2025-03-01T13:00:00Z"} {
		if f := a.Check(context.Background(), at(later)); len(f) != 0 {
			t.Errorf("at %s fired %+v", later, f)
		}
	}
	// The next day's tick fires.
	if f := a.Check(context.Background(), at("2025-03-02T02:01:00Z")); len(f) != 1 || f[0].Duplicate {
		t.Errorf("next day: %+v", f)
	}
	a.Wait()
	if n := len(h.runs(t)); n != 2 {
		t.Errorf("%d runs after the second tick", n)
	}
}

// TestCatchUpAfterRestart: a new scheduler (a restart) fires only the most
// recent missed tick, and only within the window; older ones are logged.
func TestCatchUpAfterRestart(t *testing.T) {
	h := newHarness(t, nightly)
	first := h.scheduler(t)
	first.Check(context.Background(), at("2025-03-01T02:00:05Z"))
	first.Wait()
	// Down for two days; back at 02:40 on the 4th: the 4th's tick is 40 minutes old.
	restarted := h.scheduler(t)
	f := restarted.Check(context.Background(), at("2025-03-04T02:40:00Z"))
	restarted.Wait()
	if len(f) != 1 || f[0].Tick != at("2025-03-04T02:00:00Z") || f[0].Duplicate {
		t.Fatalf("fired %+v, want the 4th's tick only", f)
	}
	if n := len(h.runs(t)); n != 2 {
		t.Errorf("%d runs, want 2 (the 1st and the 4th)", n)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "ticks missed while no server ran were skipped") || !strings.Contains(logs, "skipped_through=2025-03-03T02:00:00Z") {
		t.Errorf("no log line about the skipped ticks:\n%s", logs)
	}
	// Back at 05:00 on the 6th: its tick is 3 hours old, beyond the window.
	again := h.scheduler(t)
	if f := again.Check(context.Background(), at("2025-03-06T05:00:00Z")); len(f) != 0 {
		t.Errorf("fired %+v beyond the catch-up window", f)
	}
	if !strings.Contains(h.logs.String(), "missed tick skipped (older than the catch-up window)") {
		t.Error("the skipped tick is not logged")
	}
	// A restart within the same tick's window: the tick is stored, nothing new.
	dup := h.scheduler(t)
	if f := dup.Check(context.Background(), at("2025-03-04T02:50:00Z")); len(f) != 1 || !f[0].Duplicate {
		t.Errorf("restart in the window: %+v, want the stored tick as a duplicate", f)
	}
	if n := len(h.runs(t)); n != 2 {
		t.Errorf("%d runs", n)
	}
}

// TestTimeZone: the cron is read on the schedule's wall clock.
func TestTimeZone(t *testing.T) {
	h := newHarness(t, `      - {name: berlin, cron: "0 2 * * *", timezone: Europe/Berlin, suite_file: SUITE, scope: all}
`)
	s := h.scheduler(t)
	// 02:00 in Berlin is 01:00Z in winter (CET) and 00:00Z in summer (CEST).
	for _, tt := range []struct{ now, tick string }{
		{"2025-01-15T01:00:30Z", "2025-01-15T01:00:00Z"},
		{"2025-07-15T00:00:30Z", "2025-07-15T00:00:00Z"},
	} {
		f := s.Check(context.Background(), at(tt.now))
		if len(f) != 1 || !f[0].Tick.Equal(at(tt.tick)) {
			t.Errorf("at %s fired %+v, want tick %s", tt.now, f, tt.tick)
		}
	}
	s.Wait()
	runs := h.runs(t)
	if len(runs) != 2 || len(runs[0].Members) != 2 {
		t.Fatalf("runs %d", len(runs))
	}
}

// TestFailedTickIsVisible: a suite that cannot be read fails the tick,
// visibly, without retrying what cannot be fixed by retrying.
func TestFailedTickIsVisible(t *testing.T) {
	h := newHarness(t, `      - {name: broken, cron: "*/5 * * * *", suite_file: /nonexistent/zof.yaml, scope: all}
`)
	s := h.scheduler(t)
	s.Check(context.Background(), at("2025-03-01T10:05:00Z"))
	s.Wait()
	trs := h.triggers(t)
	if len(trs) != 1 || trs[0].State != api.TriggerFailed || trs[0].Attempts != 1 || !strings.Contains(trs[0].Reason, "/nonexistent/zof.yaml") {
		t.Fatalf("triggers %+v", trs)
	}
	if !strings.Contains(h.logs.String(), "schedule tick failed") {
		t.Error("not logged")
	}
}
