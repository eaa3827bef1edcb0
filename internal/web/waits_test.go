package web

import (
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// fakeWaits says every queued run waits for an agent and every running
// run's first member for a pool slot, with hostile text.
type fakeWaits struct{}

func (fakeWaits) AddWaits(run *api.Run) {
	switch run.Status {
	case api.StatusQueued:
		run.Wait = &api.WaitReason{Kind: "agent", Message: "waiting for an agent of pool private-eu: 0 online " + hostile}
	case api.StatusRunning:
		w := api.WaitReason{Kind: "pool_limit", Message: "pool private-eu at 20 of 20 members"}
		run.Members[0].Wait, run.Wait = &w, &w
	}
}

// The run page says which limit holds a waiting run and member (docs/agents.md,
// Why a run waits), escaped; without Waits it says nothing of it, and the
// page's stream asks for the live `wait` overlays.
func TestRunPageSaysWhyItWaits(t *testing.T) {
	f := newConsole(t)
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	f.runs.runs["run_q"] = &api.Run{ID: "run_q", Tenant: "payments", Project: "checkout", Environment: "staging", Status: api.StatusQueued, CreatedAt: t0}
	b := f.login(t, "tok-pay")
	if _, body := do(t, b, "GET", f.srv.URL+"/runs/run_q", nil); strings.Contains(body, "Waiting:") {
		t.Errorf("a console without Waits shows a wait reason")
	}
	c, err := New(Options{Runs: f.runs, Actions: f.runs, Auth: f.auth, Waits: fakeWaits{}, Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Config.Handler = c
	b = f.login(t, "tok-pay")
	_, body := do(t, b, "GET", f.srv.URL+"/runs/run_q", nil)
	if !strings.Contains(body, "Waiting: waiting for an agent of pool private-eu: 0 online") || strings.Contains(body, "<script>alert") {
		t.Errorf("queued run page lacks its escaped wait reason:\n%s", body)
	}
	_, body = do(t, b, "GET", f.srv.URL+"/runs/run_a", nil)
	if strings.Count(body, "pool private-eu at 20 of 20 members") != 2 {
		t.Errorf("running run page must show the wait on the run and on its member")
	}
	_, js := do(t, b, "GET", f.srv.URL+"/assets/app.js", nil)
	if !strings.Contains(js, "&wait=1") || !strings.Contains(js, `addEventListener("wait"`) {
		t.Errorf("the run page's stream does not follow wait overlays")
	}
}
