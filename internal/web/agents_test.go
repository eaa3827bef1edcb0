package web

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// fakeFleet answers Agents per tenant, or fails; with pools it also lists
// the configured pools (the optional Pools capability).
type fakeFleet struct {
	agents map[string][]api.Agent
	err    error
}

func (f *fakeFleet) Agents(_ context.Context, tenant string) ([]api.Agent, error) {
	return f.agents[tenant], f.err
}

type fakePoolFleet struct {
	fakeFleet
	pools map[string][]string
}

func (f *fakePoolFleet) Pools(_ context.Context, tenant string) ([]string, error) {
	return f.pools[tenant], f.err
}

func TestAgentsPage(t *testing.T) {
	f := newConsole(t)
	now := time.Date(2026, 12, 6, 11, 0, 0, 0, time.UTC)
	b := f.login(t, "tok-pay")

	// No fleet: the page says so.
	if _, body := do(t, b, "GET", f.srv.URL+"/agents", nil); !strings.Contains(body, "Agents are not configured") {
		t.Errorf("/agents without a fleet must say agents are not configured")
	}

	fleet := &fakeFleet{agents: map[string][]api.Agent{
		"payments": {
			{ID: "ag1", Name: "linux-2", Tenant: "payments", Pool: "linux", State: api.AgentBusy, Concurrency: 2, Version: "1.4.0",
				LastHeartbeat: now.Add(-3 * time.Second), Labels: map[string]string{"os": "linux", "arch": "amd64"},
				Held: []api.AgentLease{{RunID: "run_a", Member: hostile, Attempt: 2, Since: now.Add(-time.Minute)}}},
			{ID: "ag2", Name: "linux-1", Tenant: "payments", Pool: "linux", State: api.AgentIdle, Concurrency: 1},
			{ID: "ag3", Name: "mac-1", Tenant: "payments", Pool: "macos", State: api.AgentLost, Concurrency: 4},
		},
		"search": {{ID: "ag9", Name: "secret-agent", Tenant: "search", Pool: "linux", State: api.AgentIdle}},
	}}
	c, err := New(Options{Runs: f.runs, Actions: f.runs, Auth: f.auth, Fleet: fleet, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Config.Handler = c
	b = f.login(t, "tok-pay") // the new console has its own session key
	_, body := do(t, b, "GET", f.srv.URL+"/agents", nil)
	for _, want := range []string{
		"Pool linux", "Pool macos", "2 agents: 1 busy, 1 idle; 3 slots.", "1 agents: 0 busy, 0 idle, 1 lost; 0 slots.",
		`<span class="icon" aria-hidden="true">▶</span>Busy`, `<span class="icon" aria-hidden="true">✖</span>Lost`,
		`<a href="/runs/run_a">run_a</a>`, "(attempt 2)", "for 1m00s", "3.0s ago", "arch=amd64, os=linux", "1 of 2",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/agents lacks %q", want)
		}
	}
	if strings.Index(body, "linux-1") > strings.Index(body, "linux-2") || strings.Index(body, "Pool linux") > strings.Index(body, "Pool macos") {
		t.Errorf("pools and agents must be sorted by name")
	}
	if strings.Contains(body, "secret-agent") || strings.Contains(body, "<script>alert") {
		t.Errorf("/agents shows another tenant's agent or unescaped text")
	}

	fleet.err = errors.New("fleet unavailable")
	if res, body := do(t, b, "GET", f.srv.URL+"/agents", nil); res.StatusCode != 503 || !strings.Contains(body, "Could not list the agents") {
		t.Errorf("a failing fleet: %d, want 503 saying so", res.StatusCode)
	}
}

func TestPoolsWithNoAgents(t *testing.T) {
	f := newConsole(t)
	fleet := &fakePoolFleet{
		fakeFleet: fakeFleet{agents: map[string][]api.Agent{"payments": {
			{ID: "a1", Name: "l1", Pool: "linux", State: api.AgentIdle, Concurrency: 1},
			{ID: "a2", Name: "m1", Pool: "macos", State: api.AgentLost, Concurrency: 1},
		}}},
		pools: map[string][]string{"payments": {"windows", "linux", "macos"}, "search": {"secret-pool"}},
	}
	c, err := New(Options{Runs: f.runs, Actions: f.runs, Auth: f.auth, Fleet: fleet})
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Config.Handler = c
	b := f.login(t, "tok-pay")
	_, home := do(t, b, "GET", f.srv.URL+"/", nil)
	if !strings.Contains(home, "Pools with no agents") || !strings.Contains(home, `href="/agents#pool-macos">macos</a>`) ||
		!strings.Contains(home, `href="/agents#pool-windows">windows</a>`) || strings.Contains(home, `#pool-linux"`) || strings.Contains(home, "secret-pool") {
		t.Errorf("home must list macos (only a lost agent) and windows (none), not linux nor another tenant's pool")
	}
	_, page := do(t, b, "GET", f.srv.URL+"/agents", nil)
	if !strings.Contains(page, "Pool windows") || !strings.Contains(page, "No agent is connected to this pool") {
		t.Errorf("/agents must show a configured pool without agents and say so")
	}
}
