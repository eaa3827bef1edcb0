package web

import (
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

type fakeSchedules []*config.Schedule

func (f fakeSchedules) AllSchedules() []*config.Schedule { return f }

type fakeStuck []engine.StuckRun

func (f fakeStuck) Stuck() []engine.StuckRun { return f }

func TestHomeNeedsAttentionAndSchedules(t *testing.T) {
	f := newConsole(t)
	now := time.Date(2026, 12, 6, 11, 0, 0, 0, time.UTC) // the fixture's clock
	// The day's finished runs: login failed once in two, a hostile case once.
	f.runs.runs["run_done"].Members = []api.Member{{ID: "login", Status: api.StatusFailed}, {ID: hostile, Status: api.StatusFailed}, {ID: "fine", Status: api.StatusPassed}}
	f.runs.runs["run_x"] = &api.Run{ID: "run_x", Tenant: "payments", Project: "checkout", Status: api.StatusPassed, CreatedAt: now.Add(-2 * time.Hour),
		Members: []api.Member{{ID: "login", Status: api.StatusPassed}, {ID: "fine", Status: api.StatusPassed}}}
	c, err := New(Options{Runs: f.runs, Actions: f.runs, Auth: f.auth, Now: func() time.Time { return now },
		Schedules: fakeSchedules{
			{Name: "nightly", Cron: "0 2 * * *", Environment: "staging", Tenant: "payments"},
			{Name: "hourly", Cron: "30 * * * *", Environment: "prod", Tenant: "payments"},
			{Name: "theirs", Cron: "* * * * *", Tenant: "search"},
		},
		Stuck: fakeStuck{
			{Tenant: "payments", RunID: "run_a", Status: api.StatusQueued, Since: now.Add(-time.Hour), Why: "queued with free capacity"},
			{Tenant: "search", RunID: "run_b", Status: api.StatusInitial, Why: "secret"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Config.Handler = c
	_, body := do(t, f.login(t, "tok-pay"), "GET", f.srv.URL+"/", nil)
	for _, want := range []string{
		"Stuck runs", `href="/runs/run_a"`, "queued with free capacity",
		"Failing cases", "<td>login</td>", "1 of 2", "&lt;script&gt;",
		"Upcoming schedules", "<td>hourly</td><td>prod</td><td>2026-12-06 11:30 UTC</td><td>30m00s</td>", "<td>nightly</td>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("home lacks %q", want)
		}
	}
	for _, bad := range []string{"secret", "theirs", "<script>alert", "<td>fine</td>"} {
		if strings.Contains(body, bad) {
			t.Errorf("home shows %q (another tenant's, unescaped or not failing)", bad)
		}
	}
	if strings.Index(body, "hourly") > strings.Index(body, "nightly") {
		t.Errorf("schedules must be soonest first")
	}
}
