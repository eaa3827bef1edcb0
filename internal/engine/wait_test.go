package engine_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/memstore"
	"github.com/zof-ai/zof-ci/internal/step"
)

// A queued run says which limit holds it: the tenant's max_concurrent_runs
// naming the runs using it, or the holder of its exclusive environment.
func TestWaitReason(t *testing.T) {
	g := newGates()
	h := newHarness(t, func(ctx context.Context, c call) step.Output { return g.wait(ctx, c.Run) },
		func(c *engine.Config) { c.TenantLimit = func(string) int { return 2 } })
	excl := func(name string) *api.RunRequest {
		r := runReq(name, tcase("a", "s"))
		r.Environment.Exclusive = true
		return r
	}
	a := h.create(tenant, excl("a"))
	h.until("a runs", func() bool { return h.steps.started("a|s") })
	b := h.create(tenant, runReq("b", tcase("a", "s")))
	h.until("b runs", func() bool { return h.steps.started("b|s") })
	c := h.create(tenant, runReq("c", tcase("a", "s")))
	h.untilStatus(tenant, c.ID, api.StatusQueued)

	if w := h.e.WaitReason(tenant, a.ID); w != nil {
		t.Errorf("a running run waits: %+v", w)
	}
	w := h.e.WaitReason(tenant, c.ID)
	want := fmt.Sprintf("tenant %s at 2 of 2 running (%s, %s)", tenant, a.ID, b.ID)
	if w == nil || w.Kind != engine.WaitTenantLimit || w.Message != want || w.Since.IsZero() {
		t.Fatalf("wait of c = %+v, want %q", w, want)
	}
	if w := h.e.WaitReason("other", c.ID); w != nil {
		t.Errorf("another tenant reads c's wait: %+v", w)
	}

	g.open("b")
	h.wait(tenant, b.ID)
	d := h.create(tenant, excl("d"))
	h.untilStatus(tenant, d.ID, api.StatusQueued)
	w = h.e.WaitReason(tenant, d.ID)
	if w == nil || w.Kind != engine.WaitExclusive || w.Message != fmt.Sprintf("environment staging is exclusive and run %s is using it", a.ID) {
		t.Fatalf("wait of d = %+v", w)
	}
	g.open("a")
	g.open("c")
	g.open("d")
	h.wait(tenant, d.ID)
	if w := h.e.WaitReason(tenant, d.ID); w != nil {
		t.Errorf("a finished run waits: %+v", w)
	}
}

// A run no limit holds, which the scheduler has not taken yet, says so: it
// is behind no other run (runs that may start start in the same pass).
func TestWaitReasonBeforeTheScheduler(t *testing.T) {
	e, err := engine.New(engine.Config{Store: memstore.New(), Steps: newFakeSteps(nil)})
	if err != nil {
		t.Fatal(err)
	}
	// Run is never called: nothing schedules the run.
	r, _, err := e.Create(context.Background(), tenant, runReq("a", tcase("a", "s")), engine.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := e.WaitReason(tenant, r.ID)
	want := fmt.Sprintf("about to start: no limit of tenant %s holds it", tenant)
	if w == nil || w.Kind != engine.WaitQueue || w.Message != want || w.Since.IsZero() {
		t.Fatalf("wait = %+v, want kind queue with %q", w, want)
	}
}
