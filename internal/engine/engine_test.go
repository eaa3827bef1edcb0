package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/step"
)

const tenant = "acme"

func TestPassingRun(t *testing.T) {
	h := newHarness(t, nil, nil)
	req := runReq("r", tcase("a", "s1", "s2"), tcase("b", "s1"))
	r := h.create(tenant, req)
	if r.Status != api.StatusInitial || r.Substate != api.SubstateAnalysing || r.LastSeq != 1 || r.Tenant != tenant {
		t.Fatalf("created run = %s/%s seq %d tenant %q, want initial/analysing seq 1 tenant %q", r.Status, r.Substate, r.LastSeq, r.Tenant, tenant)
	}
	got := h.wait(tenant, r.ID)
	if got.Status != api.StatusPassed || got.Reason != "" {
		t.Fatalf("run = %s (%q), want passed", got.Status, got.Reason)
	}
	for _, m := range got.Members {
		if m.Status != api.StatusPassed || m.Attempt != 1 || m.Flaky {
			t.Errorf("member %s = %s attempt %d flaky %v", m.ID, m.Status, m.Attempt, m.Flaky)
		}
		for _, s := range m.Steps {
			if s.Status != api.StepPassed {
				t.Errorf("member %s step %s = %s", m.ID, s.Name, s.Status)
			}
		}
	}
	// The run went initial -> running directly (capacity was free).
	var statuses []api.Status
	for _, ev := range h.events(tenant, r.ID) {
		if ev.Type == api.EventRunStatus {
			statuses = append(statuses, ev.Status)
		}
	}
	if diff := cmp.Diff([]api.Status{api.StatusRunning, api.StatusPassed}, statuses); diff != "" {
		t.Errorf("run statuses (-want +got):\n%s", diff)
	}
}

func TestFIFOQueueWithTenantLimit(t *testing.T) {
	g := newGates()
	h := newHarness(t, func(ctx context.Context, c call) step.Output { return g.wait(ctx, c.Run) },
		func(c *engine.Config) {
			c.TenantLimit = func(tn string) int {
				if tn == tenant {
					return 2
				}
				return 0
			}
		})
	var ids []string
	for i := range 5 {
		ids = append(ids, h.create(tenant, runReq(fmt.Sprintf("run%d", i), tcase("a", "s"))).ID)
	}
	// Another tenant is not limited by acme's queue.
	other := h.create("other", runReq("other", tcase("a", "s")))
	h.until("other tenant's run to start", func() bool { return h.steps.started("other|s") })

	h.until("two running, three queued", func() bool {
		return h.steps.started("run0|s") && h.steps.started("run1|s") && h.get(tenant, ids[4]).Position == 3
	})
	for i, want := range []int{0, 0, 1, 2, 3} {
		r := h.get(tenant, ids[i])
		wantStatus, wantSub := api.StatusRunning, api.SubstateNone
		if want > 0 {
			wantStatus, wantSub = api.StatusQueued, api.SubstateQueuePosition
		}
		if r.Status != wantStatus || r.Position != want || r.Substate != wantSub {
			t.Errorf("run %d: %s/%s position %d, want %s/%s position %d", i, r.Status, r.Substate, r.Position, wantStatus, wantSub, want)
		}
	}
	// Release in order; every finish promotes the oldest queued run.
	for i := range 5 {
		g.open(fmt.Sprintf("run%d", i))
		h.wait(tenant, ids[i])
		if i+2 < 5 {
			next := fmt.Sprintf("run%d|s", i+2)
			h.until(next+" promoted", func() bool { return h.steps.started(next) })
		}
	}
	g.open("other")
	h.wait("other", other.ID)

	// Starts happened in creation order.
	var starts []string
	for _, l := range h.steps.snapshotLog() {
		if strings.HasPrefix(l, "start run") {
			starts = append(starts, strings.TrimSuffix(strings.TrimPrefix(l, "start "), "|s"))
		}
	}
	// run0 and run1 start together; the rest one by one as slots free up.
	if len(starts) == 5 && starts[0] > starts[1] {
		starts[0], starts[1] = starts[1], starts[0]
	}
	if diff := cmp.Diff([]string{"run0", "run1", "run2", "run3", "run4"}, starts); diff != "" {
		t.Errorf("start order (-want +got):\n%s", diff)
	}
	// Each queued run saw its position count down one by one.
	wantPositions := map[int][]int{2: {1}, 3: {2, 1}, 4: {3, 2, 1}}
	for i, want := range wantPositions {
		var got []int
		for _, ev := range h.events(tenant, ids[i]) {
			if ev.Type == api.EventRunSubstate && ev.Substate == api.SubstateQueuePosition {
				got = append(got, ev.Position)
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("run %d queue positions (-want +got):\n%s", i, diff)
		}
	}
}

func TestRerunGoesToTheBack(t *testing.T) {
	g := newGates()
	h := newHarness(t, func(ctx context.Context, c call) step.Output {
		if c.Run == "done" {
			return step.Output{Status: api.StepPassed}
		}
		return g.wait(ctx, c.Run)
	}, func(c *engine.Config) { c.TenantLimit = func(string) int { return 1 } })
	done := h.create(tenant, runReq("done", tcase("a", "s")))
	h.wait(tenant, done.ID)

	first := h.create(tenant, runReq("first", tcase("a", "s")))
	h.until("first running", func() bool { return h.steps.started("first|s") })
	second := h.create(tenant, runReq("second", tcase("a", "s")))
	h.until("second queued", func() bool { return h.get(tenant, second.ID).Position == 1 })

	re, err := h.e.Rerun(context.Background(), tenant, done.ID)
	if err != nil {
		t.Fatal(err)
	}
	if re.RerunOf != done.ID || re.ID == done.ID {
		t.Fatalf("rerun = %s rerun_of %q, want a new run with rerun_of %s", re.ID, re.RerunOf, done.ID)
	}
	h.until("rerun queued behind second", func() bool { return h.get(tenant, re.ID).Position == 2 })
	h.steps.mu.Lock()
	doneCalls := h.steps.calls["done|s"]
	h.steps.mu.Unlock()
	if doneCalls != 1 {
		t.Fatal("the rerun started ahead of the queue")
	}
	g.open("first")
	h.wait(tenant, first.ID)
	h.until("second running", func() bool { return h.steps.started("second|s") })
	// The scheduler writes queue positions at the end of its pass, after it
	// started second: wait for it rather than race it.
	h.until("rerun at position 1", func() bool { r := h.get(tenant, re.ID); return r.Position == 1 })
	if r := h.get(tenant, re.ID); r.Status != api.StatusQueued {
		t.Fatalf("rerun = %s position %d, want queued position 1 while second runs", r.Status, r.Position)
	}
	g.open("second")
	h.wait(tenant, second.ID)
	if r := h.wait(tenant, re.ID); r.Status != api.StatusPassed {
		t.Fatalf("rerun = %s", r.Status)
	}

	// Rerun of an unfinished run is refused.
	g2 := h.create(tenant, runReq("blocked-forever", tcase("a", "s")))
	_, err = h.e.Rerun(context.Background(), tenant, g2.ID)
	var se *engine.StateError
	if !errors.As(err, &se) || se.Op != "rerun" {
		t.Fatalf("Rerun of a non-terminal run: %v, want *StateError", err)
	}
}

func TestExclusiveEnvironmentBlocks(t *testing.T) {
	g := newGates()
	h := newHarness(t, func(ctx context.Context, c call) step.Output { return g.wait(ctx, c.Run) },
		func(c *engine.Config) { c.TenantLimit = func(string) int { return 3 } })
	excl := func(name string) *api.RunRequest {
		r := runReq(name, tcase("a", "s"), tcase("b", "s"))
		r.Environment.Exclusive = true
		return r
	}
	holder := h.create(tenant, excl("holder"))
	h.until("holder running", func() bool { return h.steps.started("holder|s") })

	waiter := h.create(tenant, excl("waiter"))
	short := excl("short")
	short.BlockAfter = api.Duration(time.Minute)
	shortRun := h.create(tenant, short)
	// A later run on another environment starts although older runs wait:
	// only runs that may start are taken in FIFO order.
	free := runReq("free", tcase("a", "s"))
	free.Environment.Name = "dev"
	freeRun := h.create(tenant, free)
	h.until("free run started", func() bool { return h.steps.started("free|s") })
	h.until("waiters queued", func() bool {
		return h.get(tenant, waiter.ID).Status == api.StatusQueued && h.get(tenant, shortRun.ID).Status == api.StatusQueued
	})

	h.clock.Advance(time.Minute)
	h.e.Kick()
	blocked := h.wait(tenant, shortRun.ID)
	wantShort := "environment staging is exclusive and run " + holder.ID + " was using it for 1m0s; re-run when it finishes or raise block_after"
	if blocked.Status != api.StatusBlocked || blocked.Reason != wantShort {
		t.Fatalf("short run = %s %q, want blocked %q", blocked.Status, blocked.Reason, wantShort)
	}
	if r := h.get(tenant, waiter.ID); r.Status != api.StatusQueued || r.Position != 1 {
		t.Fatalf("waiter = %s position %d after 1m, want still queued at 1", r.Status, r.Position)
	}

	h.clock.Advance(9 * time.Minute)
	h.e.Kick()
	blocked = h.wait(tenant, waiter.ID)
	want := "environment staging is exclusive and run " + holder.ID + " was using it for 10m0s; re-run when it finishes or raise block_after"
	if blocked.Status != api.StatusBlocked || blocked.Reason != want {
		t.Fatalf("waiter = %s %q, want blocked %q", blocked.Status, blocked.Reason, want)
	}
	if diff := cmp.Diff(map[string]api.Status{"a": api.StatusBlocked, "b": api.StatusBlocked}, statusesOf(blocked)); diff != "" {
		t.Errorf("blocked run's members (-want +got):\n%s", diff)
	}
	if c := blocked.Count(); c.Blocked != 2 {
		t.Errorf("Count().Blocked = %d, want 2", c.Blocked)
	}
	// The wait was announced in the log, naming the holder.
	var logs []string
	for _, ev := range h.events(tenant, waiter.ID) {
		if ev.Type == api.EventLog {
			logs = append(logs, ev.Message)
		}
	}
	if diff := cmp.Diff([]string{"waiting for environment staging: it is exclusive and run " + holder.ID + " is using it"}, logs); diff != "" {
		t.Errorf("waiter's log (-want +got):\n%s", diff)
	}

	g.open("holder")
	g.open("free")
	h.wait(tenant, holder.ID)
	h.wait(tenant, freeRun.ID)
	// With the environment free, the next exclusive run starts at once.
	next := h.create(tenant, excl("next"))
	h.until("next running", func() bool { return h.steps.started("next|s") })
	g.open("next")
	if r := h.wait(tenant, next.ID); r.Status != api.StatusPassed {
		t.Fatalf("next = %s", r.Status)
	}
}

func TestSupersede(t *testing.T) {
	g := newGates()
	h := newHarness(t, func(ctx context.Context, c call) step.Output { return g.wait(ctx, c.Run) }, nil)
	grouped := func(name string) *api.RunRequest {
		r := runReq(name, tcase("a", "s"))
		r.ConcurrencyGroup = "shop/staging/pr-7"
		r.Supersede = true
		return r
	}
	old := h.create(tenant, grouped("old"))
	h.until("old running", func() bool { return h.steps.started("old|s") })
	otherGroup := runReq("unrelated", tcase("a", "s"))
	otherGroup.ConcurrencyGroup = "shop/staging/pr-8"
	unrelated := h.create(tenant, otherGroup)

	newer := h.create(tenant, grouped("new"))
	r := h.wait(tenant, old.ID)
	if r.Status != api.StatusCancelled || r.Reason != "superseded by "+newer.ID {
		t.Fatalf("old run = %s %q, want cancelled \"superseded by %s\"", r.Status, r.Reason, newer.ID)
	}
	if s := r.Members[0].Steps[0].Status; s != api.StepCancelled {
		t.Errorf("old run's in-flight step = %s, want cancelled", s)
	}
	if s := h.get(tenant, unrelated.ID).Status; s.Terminal() {
		t.Errorf("a run of another group was ended: %s", s)
	}
	g.open("new")
	g.open("unrelated")
	if r := h.wait(tenant, newer.ID); r.Status != api.StatusPassed {
		t.Fatalf("new run = %s", r.Status)
	}
	h.wait(tenant, unrelated.ID)
}

func TestCancelQueued(t *testing.T) {
	g := newGates()
	h := newHarness(t, func(ctx context.Context, c call) step.Output { return g.wait(ctx, c.Run) },
		func(c *engine.Config) { c.TenantLimit = func(string) int { return 1 } })
	first := h.create(tenant, runReq("first", tcase("a", "s")))
	h.until("first running", func() bool { return h.steps.started("first|s") })
	second := h.create(tenant, runReq("second", tcase("a", "s"), tcase("b", "s")))
	third := h.create(tenant, runReq("third", tcase("a", "s")))
	h.until("third at position 2", func() bool { return h.get(tenant, third.ID).Position == 2 })

	r, err := h.e.Cancel(context.Background(), tenant, second.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != api.StatusCancelled || r.Reason != "cancelled by request" {
		t.Fatalf("Cancel of a queued run returned %s %q, want cancelled at once", r.Status, r.Reason)
	}
	if diff := cmp.Diff(map[string]api.Status{"a": api.StatusCancelled, "b": api.StatusCancelled}, statusesOf(r)); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	if c := r.Count(); c.Skipped != 2 {
		t.Errorf("Count().Skipped = %d, want 2", c.Skipped)
	}
	h.checkLog(tenant, second.ID)
	h.until("third moves up", func() bool { return h.get(tenant, third.ID).Position == 1 })

	// A terminal run cannot be cancelled, and nothing changes.
	before := h.get(tenant, second.ID)
	_, err = h.e.Cancel(context.Background(), tenant, second.ID, "again")
	var se *engine.StateError
	if !errors.As(err, &se) || se.Status != api.StatusCancelled {
		t.Fatalf("Cancel of a cancelled run: %v, want *StateError", err)
	}
	if after := h.get(tenant, second.ID); after.LastSeq != before.LastSeq {
		t.Errorf("refused cancel appended events: seq %d -> %d", before.LastSeq, after.LastSeq)
	}
	g.open("first")
	g.open("third")
	h.wait(tenant, first.ID)
	h.wait(tenant, third.ID)
}

func TestCancelRunning(t *testing.T) {
	g := newGates()
	h := newHarness(t, func(ctx context.Context, c call) step.Output {
		if c.Step == "login" {
			return step.Output{Status: api.StepPassed, Output: "ok"}
		}
		return g.wait(ctx, c.Run+c.Step)
	}, nil)
	req := runReq("run", tcase("a", "login", "slow", "after"), tcase("b", "login"))
	req.MaxParallel = 1
	r := h.create(tenant, req)
	h.until("slow step in flight", func() bool { return h.steps.started("run|slow") })

	start := time.Now()
	if _, err := h.e.Cancel(context.Background(), tenant, r.ID, "stop it"); err != nil {
		t.Fatal(err)
	}
	got := h.wait(tenant, r.ID)
	if d := time.Since(start); d > engine.CancelWithin {
		t.Errorf("cancel took %s, want within %s", d, engine.CancelWithin)
	}
	if got.Status != api.StatusCancelled || got.Reason != "stop it" {
		t.Fatalf("run = %s %q, want cancelled \"stop it\"", got.Status, got.Reason)
	}
	a, b := got.Member("a"), got.Member("b")
	if diff := cmp.Diff([]api.StepStatus{api.StepPassed, api.StepCancelled, api.StepSkipped}, stepStatuses(a)); diff != "" {
		t.Errorf("member a steps (-want +got):\n%s", diff)
	}
	if a.Status != api.StatusCancelled || b.Status != api.StatusCancelled || !b.StartedAt.IsZero() {
		t.Errorf("members: a %s, b %s (started %v); want both cancelled, b never started", a.Status, b.Status, b.StartedAt)
	}
	if diff := cmp.Diff([]api.StepStatus{api.StepPending}, stepStatuses(b)); diff != "" {
		t.Errorf("member b steps (-want +got):\n%s", diff)
	}
	h.steps.mu.Lock()
	errs := append([]error(nil), h.steps.ctxErrs...)
	h.steps.mu.Unlock()
	if len(errs) != 2 || errs[0] != nil || !errors.Is(errs[1], context.Canceled) {
		t.Errorf("step contexts after return = %v, want [nil, context canceled]", errs)
	}
	_, err := h.e.Cancel(context.Background(), tenant, r.ID, "")
	var se *engine.StateError
	if !errors.As(err, &se) {
		t.Errorf("Cancel after the end: %v, want *StateError", err)
	}
}

// A step that ignores its context is abandoned after CancelGrace so cancel
// still ends the run in time.
func TestCancelAbandonsStuckStep(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	h := newHarness(t, func(ctx context.Context, c call) step.Output {
		<-release
		return step.Output{Status: api.StepPassed}
	}, func(c *engine.Config) { c.CancelGrace = 20 * time.Millisecond })
	r := h.create(tenant, runReq("run", tcase("a", "deaf")))
	h.until("step in flight", func() bool { return h.steps.started("run|deaf") })
	if _, err := h.e.Cancel(context.Background(), tenant, r.ID, ""); err != nil {
		t.Fatal(err)
	}
	got := h.wait(tenant, r.ID)
	st := got.Members[0].Steps[0]
	if got.Status != api.StatusCancelled || st.Status != api.StepCancelled || st.Failure == nil || !strings.Contains(st.Failure.Message, "abandoned") {
		t.Fatalf("run %s, step %s %v; want cancelled with the step abandoned", got.Status, st.Status, st.Failure)
	}
}

// A step abandoned after its timeout (it ignores its context) does not hold
// up the members after it: with one worker, the next member's steps start
// while the abandoned one is still in flight, on a goroutine of their own.
func TestAbandonedStepDoesNotBlockTheNextMember(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	h := newHarness(t, func(ctx context.Context, c call) step.Output {
		if c.Step == "deaf" {
			<-release
		}
		return step.Output{Status: api.StepPassed}
	}, func(c *engine.Config) { c.CancelGrace = 20 * time.Millisecond })
	deaf := tcase("a", "deaf")
	deaf.Steps[0].Timeout = api.Duration(20 * time.Millisecond)
	req := runReq("run", deaf, tcase("b", "s1", "s2"), tcase("c", "s3"))
	req.MaxParallel = 1
	got := h.wait(tenant, h.create(tenant, req).ID)
	if a := got.Member("a"); a.Status != api.StatusFailed || a.Steps[0].Failure == nil || !strings.Contains(a.Steps[0].Failure.Message, "timed out") {
		t.Errorf("member a = %s %+v, want failed: its step timed out", a.Status, a.Steps[0].Failure)
	}
	for _, id := range []string{"b", "c"} {
		if m := got.Member(id); m.Status != api.StatusPassed {
			t.Errorf("member %s = %s, want passed while a's step is still in flight", id, m.Status)
		}
	}
}

func TestStoppingTheEngineCancelsAndStopsServices(t *testing.T) {
	g := newGates()
	svc := &fakeServices{}
	h := newHarness(t, func(ctx context.Context, c call) step.Output { return g.wait(ctx, c.Run) },
		func(c *engine.Config) {
			c.Services = svc
			c.TenantLimit = func(string) int { return 1 }
		})
	req := runReq("run", tcase("a", "s"))
	req.Environment.Serve = &api.Serve{Command: "./server"}
	running := h.create(tenant, req)
	h.until("step in flight", func() bool { return h.steps.started("run|s") })
	queued := h.create(tenant, runReq("queued", tcase("a", "s")))
	h.until("second queued", func() bool { return h.get(tenant, queued.ID).Status == api.StatusQueued })

	h.stop()
	for _, id := range []string{running.ID, queued.ID} {
		h.checkLog(tenant, id)
		r := h.get(tenant, id)
		if r.Status != api.StatusCancelled || !strings.Contains(r.Reason, "engine stopped") {
			t.Errorf("run %s = %s %q, want cancelled because the engine stopped", id, r.Status, r.Reason)
		}
	}
	if started, stopped := svc.counts(); started != 1 || stopped != 1 {
		t.Errorf("service started %d stopped %d, want 1 and 1", started, stopped)
	}
	if _, _, err := h.e.Create(context.Background(), tenant, runReq("late", tcase("a", "s")), engine.CreateOptions{}); !errors.Is(err, engine.ErrStopped) {
		t.Errorf("Create after stop: %v, want ErrStopped", err)
	}
}

func TestServiceLifecycle(t *testing.T) {
	svc := &fakeServices{}
	var mu sync.Mutex
	var stoppedBeforeStep bool
	h := newHarness(t, func(ctx context.Context, c call) step.Output {
		_, stopped := svc.counts()
		mu.Lock()
		stoppedBeforeStep = stoppedBeforeStep || stopped > 0
		mu.Unlock()
		return step.Output{Status: api.StepPassed}
	}, func(c *engine.Config) { c.Services = svc })
	req := runReq("run", tcase("a", "s"), tcase("b", "s"))
	req.Environment.Serve = &api.Serve{Command: "./server"}
	r := h.wait(tenant, h.create(tenant, req).ID)
	if r.Status != api.StatusPassed {
		t.Fatalf("run = %s %q", r.Status, r.Reason)
	}
	if started, stopped := svc.counts(); started != 1 || stopped != 1 || stoppedBeforeStep {
		t.Errorf("service started %d stopped %d (stopped before a step: %v), want 1 and 1 after the steps", started, stopped, stoppedBeforeStep)
	}
	var subs []api.Substate
	for _, ev := range h.events(tenant, r.ID) {
		if ev.Type == api.EventRunSubstate {
			subs = append(subs, ev.Substate)
		}
	}
	if diff := cmp.Diff([]api.Substate{api.SubstateStarting, api.SubstateNone}, subs); diff != "" {
		t.Errorf("run substates (-want +got):\n%s", diff)
	}
}

func TestServiceStartFailureFailsEveryMember(t *testing.T) {
	svc := &fakeServices{fail: errors.New("exit status 1: address already in use")}
	h := newHarness(t, nil, func(c *engine.Config) { c.Services = svc })
	req := runReq("run", tcase("a", "s1", "s2"), tcase("b", "s"))
	req.Environment.Serve = &api.Serve{Command: "./server"}
	r := h.wait(tenant, h.create(tenant, req).ID)
	if r.Status != api.StatusFailed {
		t.Fatalf("run = %s, want failed", r.Status)
	}
	// The why is in the run's log once; each member points at it.
	logged := 0
	for _, ev := range h.events(tenant, r.ID) {
		if ev.Type == api.EventLog && strings.Contains(ev.Message, "serve failed to start: exit status 1: address already in use") {
			logged++
		}
	}
	if logged != 1 {
		t.Errorf("the serve failure is in the run's log %d times, want once", logged)
	}
	for _, m := range r.Members {
		if m.Status != api.StatusFailed || m.Reason != "not run: the service of environment staging did not start (the run's log says why)" {
			t.Errorf("member %s = %s %q, want failed pointing at the serve failure", m.ID, m.Status, m.Reason)
		}
		for _, s := range m.Steps {
			if s.Status != api.StepSkipped {
				t.Errorf("member %s step %s = %s, want skipped", m.ID, s.Name, s.Status)
			}
		}
	}
	if !strings.HasPrefix(r.Reason, "2 of 2 members failed") {
		t.Errorf("run reason = %q", r.Reason)
	}
	if h.steps.snapshotLog() != nil {
		t.Errorf("steps ran although the service did not start: %v", h.steps.snapshotLog())
	}
}

func TestOrderedSetRunsOneAfterAnother(t *testing.T) {
	g := newGates()
	h := newHarness(t, func(ctx context.Context, c call) step.Output { return g.wait(ctx, c.Step) }, nil)
	req := runReq("run", tcase("create", "create"), tcase("free", "free"), tcase("login", "login"), tcase("delete", "delete"))
	req.Sets = []api.Set{{Name: "flow", Sequential: true, Cases: []string{"create", "login", "delete"}}}
	r := h.create(tenant, req)
	h.until("create and free running", func() bool { return h.steps.started("run|create") && h.steps.started("run|free") })
	snap := h.get(tenant, r.ID)
	for _, id := range []string{"login", "delete"} {
		if m := snap.Member(id); m.Status != api.StatusInitial || m.Substate != api.SubstateWaitingForPreceding || m.Set != "flow" {
			t.Errorf("member %s = %s/%s set %q, want initial/waiting_for_preceding in flow", id, m.Status, m.Substate, m.Set)
		}
	}
	for _, s := range []string{"free", "create", "login", "delete"} {
		g.open(s)
		if s != "delete" && s != "free" {
			next := map[string]string{"create": "login", "login": "delete"}[s]
			h.until(next+" starts", func() bool { return h.steps.started("run|" + next) })
		}
	}
	got := h.wait(tenant, r.ID)
	if got.Status != api.StatusPassed {
		t.Fatalf("run = %s", got.Status)
	}
	var order []string
	for _, l := range h.steps.snapshotLog() {
		if l != "start run|free" && l != "end run|free" {
			order = append(order, l)
		}
	}
	want := []string{"start run|create", "end run|create", "start run|login", "end run|login", "start run|delete", "end run|delete"}
	if diff := cmp.Diff(want, order); diff != "" {
		t.Errorf("ordered set steps (-want +got):\n%s", diff)
	}
}

func TestParallelLimit(t *testing.T) {
	tokens := make(chan struct{})
	h := newHarness(t, func(ctx context.Context, c call) step.Output {
		select {
		case <-tokens:
			return step.Output{Status: api.StepPassed}
		case <-ctx.Done():
			return step.Output{Status: api.StepCancelled}
		}
	}, nil)
	var cases []api.Case
	for i := range 10 {
		cases = append(cases, tcase(fmt.Sprintf("c%d", i), "s"))
	}
	req := runReq("run", cases...)
	req.MaxParallel = 3
	r := h.create(tenant, req)
	startedCount := func() int {
		n := 0
		for _, l := range h.steps.snapshotLog() {
			if strings.HasPrefix(l, "start") {
				n++
			}
		}
		return n
	}
	for i := range 10 {
		want := min(i+3, 10)
		h.until(fmt.Sprintf("%d steps started", want), func() bool { return startedCount() == want })
		tokens <- struct{}{}
	}
	h.wait(tenant, r.ID)
	h.steps.mu.Lock()
	peak := h.steps.peak
	h.steps.mu.Unlock()
	if peak != 3 {
		t.Errorf("peak concurrent steps = %d, want 3", peak)
	}
}

func TestRetriesAndFlaky(t *testing.T) {
	h := newHarness(t, func(ctx context.Context, c call) step.Output {
		switch {
		case c.Step == "flaky" && c.N == 0:
			return step.Output{Status: api.StepFailed, Failure: &api.Failure{Message: "got 503"}}
		case c.Step == "broken":
			return step.Output{Status: api.StepFailed, Failure: &api.Failure{Message: fmt.Sprintf("got 500 (try %d)", c.N+1)}}
		}
		return step.Output{Status: api.StepPassed}
	}, nil)
	flaky := tcase("flaky", "setup", "flaky", "check")
	flaky.Retries = 2
	broken := tcase("broken", "broken", "never")
	broken.Retries = 2
	r := h.wait(tenant, h.create(tenant, runReq("run", flaky, broken)).ID)

	f := r.Member("flaky")
	if f.Status != api.StatusPassed || !f.Flaky || f.Attempt != 2 {
		t.Errorf("flaky member = %s flaky %v attempt %d, want passed, flaky, attempt 2", f.Status, f.Flaky, f.Attempt)
	}
	if diff := cmp.Diff([]string{"flaky: got 503"}, f.FailedAttempts); diff != "" {
		t.Errorf("flaky failed attempts (-want +got):\n%s", diff)
	}
	b := r.Member("broken")
	if b.Status != api.StatusFailed || b.Attempt != 3 || b.Flaky {
		t.Errorf("broken member = %s attempt %d flaky %v, want failed on attempt 3", b.Status, b.Attempt, b.Flaky)
	}
	if diff := cmp.Diff([]api.StepStatus{api.StepFailed, api.StepSkipped}, stepStatuses(b)); diff != "" {
		t.Errorf("broken steps (-want +got):\n%s", diff)
	}
	if b.Reason != "step 1 (broken): got 500 (try 3)" || len(b.FailedAttempts) != 2 {
		t.Errorf("broken reason %q, failed attempts %v", b.Reason, b.FailedAttempts)
	}
	if r.Status != api.StatusFailed || r.Reason != "1 of 2 members failed (first: broken: step 1 (broken): got 500 (try 3))" {
		t.Errorf("run = %s %q", r.Status, r.Reason)
	}
	var attempts []int
	for _, ev := range h.events(tenant, r.ID) {
		if ev.Type == api.EventMemberStatus && ev.Member == "flaky" {
			attempts = append(attempts, ev.Attempt)
		}
	}
	if diff := cmp.Diff([]int{1, 2, 2}, attempts); diff != "" {
		t.Errorf("flaky member.status attempts (-want +got):\n%s", diff)
	}
}

func TestTimeouts(t *testing.T) {
	// Each fake step waits for its context, like a hung request would.
	h := newHarness(t, func(ctx context.Context, c call) step.Output {
		if c.Step == "quick" {
			return step.Output{Status: api.StepPassed, Captures: map[string]string{"token": "t1"}}
		}
		<-ctx.Done()
		return step.Output{Status: api.StepCancelled}
	}, nil)
	caseTO := tcase("case-timeout", "quick", "hang", "after")
	caseTO.Timeout = api.Duration(40 * time.Millisecond)
	stepTO := tcase("step-timeout", "quick", "hang", "after")
	stepTO.Steps[1].Timeout = api.Duration(30 * time.Millisecond)
	r := h.wait(tenant, h.create(tenant, runReq("run", caseTO, stepTO)).ID)

	tests := []struct {
		member string
		msg    string
	}{
		{"case-timeout", "timed out: the case timeout of 40ms ran out during this step; raise the case's `timeout:` or find what is slow"},
		{"step-timeout", "timed out after 30ms (the step's timeout); raise `timeout:` on the step or find what is slow"},
	}
	for _, tt := range tests {
		m := r.Member(tt.member)
		if m.Status != api.StatusFailed {
			t.Errorf("%s = %s, want failed", tt.member, m.Status)
		}
		if diff := cmp.Diff([]api.StepStatus{api.StepPassed, api.StepFailed, api.StepSkipped}, stepStatuses(m)); diff != "" {
			t.Errorf("%s steps (-want +got):\n%s", tt.member, diff)
		}
		if f := m.Steps[1].Failure; f == nil || f.Message != tt.msg {
			t.Errorf("%s failure = %v, want %q", tt.member, f, tt.msg)
		}
	}
}

func TestCapturesVarsAndInputs(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]step.Input{}
	h := newHarness(t, func(ctx context.Context, c call) step.Output {
		mu.Lock()
		seen[c.In.Vars["region"]+"/"+c.Step] = c.In
		mu.Unlock()
		if c.Step == "login" {
			return step.Output{Status: api.StepPassed, Captures: map[string]string{"token": "tok-" + c.In.Vars["region"]}}
		}
		return step.Output{Status: api.StepPassed}
	}, func(c *engine.Config) { c.Dir = "/work"; c.Env = []string{"PATH=/bin"} })
	cs := tcase("api", "login", "use")
	cs.Variants = []api.Variant{{Name: "eu", Vars: map[string]string{"region": "eu"}}, {Name: "us", Vars: map[string]string{"region": "us"}}}
	req := runReq("http://127.0.0.1:8080", cs)
	req.Environment.Headers = map[string]string{"X-Env": "staging"}
	r := h.wait(tenant, h.create(tenant, req).ID)
	if r.Status != api.StatusPassed || len(r.Members) != 2 {
		t.Fatalf("run = %s with %d members", r.Status, len(r.Members))
	}
	for _, region := range []string{"eu", "us"} {
		in := seen[region+"/use"]
		if in.Captures["token"] != "tok-"+region {
			t.Errorf("%s: captures = %v, want the variant's own token", region, in.Captures)
		}
		if len(seen[region+"/login"].Captures) != 0 {
			t.Errorf("%s: first step saw captures %v", region, seen[region+"/login"].Captures)
		}
		if in.BaseURL != "http://127.0.0.1:8080" || in.Headers["X-Env"] != "staging" || in.Dir != "/work" || in.Env[0] != "PATH=/bin" || in.Mask == nil {
			t.Errorf("%s: input = %+v", region, in)
		}
	}
}

func TestSecretsAreMaskedInEvents(t *testing.T) {
	const secret = "hunter2-very-secret"
	h := newHarness(t, func(ctx context.Context, c call) step.Output {
		// A careless step runner that does not mask.
		return step.Output{Status: api.StepFailed, Output: "token=" + secret,
			Failure: &api.Failure{Message: "bad " + secret, Expected: secret, Actual: "x" + secret}}
	}, nil)
	req := runReq("run", tcase("a", "s"))
	req.Secrets = []string{secret}
	r := h.wait(tenant, h.create(tenant, req).ID)
	for _, ev := range h.events(tenant, r.ID) {
		if ev.Type == api.EventRunCreated {
			continue
		}
		if s := fmt.Sprintf("%+v %+v", ev, ev.Failure); strings.Contains(s, secret) {
			t.Errorf("event %d leaks the secret: %s", ev.Seq, s)
		}
	}
	st := r.Members[0].Steps[0]
	if st.Output != "token=***" || st.Failure.Message != "bad ***" || r.Members[0].Reason != "step 1 (s): bad ***" {
		t.Errorf("step = %q %+v, member reason %q", st.Output, st.Failure, r.Members[0].Reason)
	}
}

func TestIdempotency(t *testing.T) {
	h := newHarness(t, nil, nil)
	req := runReq("run", tcase("a", "s"))
	opts := engine.CreateOptions{IdempotencyKey: "ci-123-1", Fingerprint: "fp-1"}

	const n = 200
	var wg sync.WaitGroup
	ids := make([]string, n)
	replays := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, replayed, err := h.e.Create(context.Background(), tenant, req, opts)
			if err == nil {
				ids[i] = r.ID
			}
			replays[i], errs[i] = replayed, err
		}()
	}
	wg.Wait()
	fresh := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("create %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("create %d made run %s, create 0 made %s", i, ids[i], ids[0])
		}
		if !replays[i] {
			fresh++
		}
	}
	if fresh != 1 {
		t.Fatalf("%d creates were not replays, want exactly 1", fresh)
	}
	runs, _, err := h.e.List(context.Background(), tenant, engine.ListFilter{})
	if err != nil || len(runs) != 1 || runs[0].IdempotencyKey != "ci-123-1" {
		t.Fatalf("List = %d runs (%v), want the one run with the key", len(runs), err)
	}

	_, _, err = h.e.Create(context.Background(), tenant, req, engine.CreateOptions{IdempotencyKey: "ci-123-1", Fingerprint: "fp-2"})
	var ice *engine.IdempotencyConflictError
	if !errors.As(err, &ice) || ice.RunID != ids[0] || !strings.Contains(err.Error(), ids[0]) {
		t.Fatalf("different fingerprint: %v, want *IdempotencyConflictError naming %s", err, ids[0])
	}
	// Keys are per tenant.
	r, replayed, err := h.e.Create(context.Background(), "other", req, opts)
	if err != nil || replayed || r.ID == ids[0] {
		t.Fatalf("same key in another tenant: %v replayed=%v id=%s, want a new run", err, replayed, r.ID)
	}
	// Without a fingerprint the request's own is used.
	a, _, _ := h.e.Create(context.Background(), tenant, req, engine.CreateOptions{IdempotencyKey: "k2"})
	b, replayed, err := h.e.Create(context.Background(), tenant, req, engine.CreateOptions{IdempotencyKey: "k2"})
	if err != nil || !replayed || a.ID != b.ID {
		t.Fatalf("replay with computed fingerprint: %v replayed=%v", err, replayed)
	}
	changed := runReq("run", tcase("a", "s"), tcase("b", "s"))
	if _, _, err := h.e.Create(context.Background(), tenant, changed, engine.CreateOptions{IdempotencyKey: "k2"}); !errors.As(err, &ice) {
		t.Fatalf("changed request with computed fingerprint: %v, want conflict", err)
	}
	h.wait(tenant, ids[0])
}

func TestSubscribe(t *testing.T) {
	g := newGates()
	h := newHarness(t, func(ctx context.Context, c call) step.Output { return g.wait(ctx, c.Step) }, nil)
	req := runReq("run", tcase("a", "s1", "s2", "s3"), tcase("b", "s4"))
	req.MaxParallel = 1
	r := h.create(tenant, req)
	h.until("s1 in flight", func() bool { return h.steps.started("run|s1") })

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	// Stored events first, then live ones, up to the terminal event.
	full, err := h.e.Subscribe(ctx, tenant, r.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var fullEvents []api.Event
	fullDone := make(chan struct{})
	go func() {
		defer close(fullDone)
		for ev := range full.C {
			fullEvents = append(fullEvents, ev)
		}
	}()
	for _, s := range []string{"s1", "s2", "s3", "s4"} {
		g.open(s)
	}
	final := h.wait(tenant, r.ID)
	<-fullDone
	all := h.events(tenant, r.ID)
	if full.Err() != nil {
		t.Fatalf("follower ended with %v", full.Err())
	}
	if diff := cmp.Diff(all, fullEvents); diff != "" {
		t.Fatalf("follower from 0 (-log +got):\n%s", diff)
	}
	if last := fullEvents[len(fullEvents)-1]; last.Type != api.EventRunStatus || last.Status != final.Status {
		t.Fatalf("last event = %s %s, want the terminal run.status", last.Type, last.Status)
	}

	// From any seq of a finished run: exactly the later events.
	for _, after := range []int64{0, 1, 5, int64(len(all)) - 1, int64(len(all))} {
		sub, err := h.e.Subscribe(ctx, tenant, r.ID, after)
		if err != nil {
			t.Fatal(err)
		}
		var evs []api.Event
		for ev := range sub.C {
			evs = append(evs, ev)
		}
		if diff := cmp.Diff(all[after:], evs, cmpEmpty); diff != "" || sub.Err() != nil {
			t.Errorf("after %d: err %v, diff (-want +got):\n%s", after, sub.Err(), diff)
		}
	}
}

// A follower that stops reading is dropped without holding anything up,
// and resumes from its last seq without losing an event.
func TestSubscribeSlowFollowerIsDropped(t *testing.T) {
	g := newGates()
	h := newHarness(t, func(ctx context.Context, c call) step.Output { return g.wait(ctx, c.Step) },
		func(c *engine.Config) { c.SubscriberBuffer = 2 })
	req := runReq("run", tcase("a", "s1", "s2", "s3"), tcase("b", "s4"))
	req.MaxParallel = 1
	r := h.create(tenant, req)
	h.until("s1 in flight", func() bool { return h.steps.started("run|s1") })
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	slow, err := h.e.Subscribe(ctx, tenant, r.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"s1", "s2", "s3", "s4"} {
		g.open(s)
	}
	h.wait(tenant, r.ID) // the run ends although nobody reads
	all := h.events(tenant, r.ID)

	var got []api.Event
	for ev := range slow.C {
		got = append(got, ev)
	}
	if !errors.Is(slow.Err(), engine.ErrDropped) {
		t.Fatalf("slow follower ended with %v, want ErrDropped", slow.Err())
	}
	if len(got) >= len(all) {
		t.Fatalf("slow follower got all %d events; it should have been dropped", len(got))
	}
	resumed, err := h.e.Subscribe(ctx, tenant, r.ID, got[len(got)-1].Seq)
	if err != nil {
		t.Fatal(err)
	}
	for ev := range resumed.C {
		got = append(got, ev)
	}
	if resumed.Err() != nil {
		t.Fatalf("resumed follower: %v", resumed.Err())
	}
	if diff := cmp.Diff(all, got); diff != "" {
		t.Fatalf("dropped then resumed (-log +got):\n%s", diff)
	}
}

var cmpEmpty = cmp.Comparer(func(a, b []api.Event) bool { return len(a) == 0 && len(b) == 0 || cmp.Equal(a, b) })

func TestSubscribeLiveFromTheMiddle(t *testing.T) {
	g := newGates()
	h := newHarness(t, func(ctx context.Context, c call) step.Output { return g.wait(ctx, c.Step) }, nil)
	req := runReq("run", tcase("a", "s1", "s2"))
	r := h.create(tenant, req)
	h.until("s1 in flight", func() bool { return h.steps.started("run|s1") })
	mid := h.get(tenant, r.ID).LastSeq
	sub, err := h.e.Subscribe(context.Background(), tenant, r.ID, mid-2)
	if err != nil {
		t.Fatal(err)
	}
	g.open("s1")
	g.open("s2")
	var got []api.Event
	for ev := range sub.C {
		got = append(got, ev)
	}
	all := h.events(tenant, r.ID)
	if diff := cmp.Diff(all[mid-2:], got); diff != "" || sub.Err() != nil {
		t.Fatalf("err %v, (-want +got):\n%s", sub.Err(), diff)
	}
}

func TestSubscribeContextEnds(t *testing.T) {
	g := newGates()
	h := newHarness(t, func(ctx context.Context, c call) step.Output { return g.wait(ctx, c.Step) }, nil)
	r := h.create(tenant, runReq("run", tcase("a", "s")))
	h.until("in flight", func() bool { return h.steps.started("run|s") })
	ctx, cancel := context.WithCancel(context.Background())
	sub, err := h.e.Subscribe(ctx, tenant, r.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	<-sub.C
	cancel()
	for range sub.C {
	}
	if !errors.Is(sub.Err(), context.Canceled) {
		t.Fatalf("Err = %v, want context.Canceled", sub.Err())
	}
	g.open("s")
	h.wait(tenant, r.ID)
}

func TestNotFoundAcrossTenants(t *testing.T) {
	h := newHarness(t, nil, nil)
	r := h.wait(tenant, h.create(tenant, runReq("run", tcase("a", "s"))).ID)
	ctx := context.Background()
	calls := map[string]func(tn, id string) error{
		"Get":       func(tn, id string) error { _, err := h.e.Get(ctx, tn, id); return err },
		"Events":    func(tn, id string) error { _, err := h.e.Events(ctx, tn, id, 0); return err },
		"Subscribe": func(tn, id string) error { _, err := h.e.Subscribe(ctx, tn, id, 0); return err },
		"Cancel":    func(tn, id string) error { _, err := h.e.Cancel(ctx, tn, id, ""); return err },
		"Rerun":     func(tn, id string) error { _, err := h.e.Rerun(ctx, tn, id); return err },
	}
	for name, f := range calls {
		for _, c := range []struct{ tenant, id string }{{"other", r.ID}, {tenant, "nope"}} {
			err := f(c.tenant, c.id)
			var nf *engine.NotFoundError
			if !errors.As(err, &nf) || !errors.Is(err, engine.ErrNotFound) || nf.RunID != c.id {
				t.Errorf("%s(%s, %s) = %v, want *NotFoundError", name, c.tenant, c.id, err)
			}
		}
	}
}

func TestList(t *testing.T) {
	h := newHarness(t, func(ctx context.Context, c call) step.Output {
		if c.Run == "bad" {
			return step.Output{Status: api.StepFailed, Failure: &api.Failure{Message: "no"}}
		}
		return step.Output{Status: api.StepPassed}
	}, nil)
	var ids []string
	for i := range 5 {
		name := "good"
		if i%2 == 1 {
			name = "bad"
		}
		req := runReq(name, tcase("a", "s"))
		if i == 4 {
			req.Environment.Name = "prod"
		}
		ids = append(ids, h.wait(tenant, h.create(tenant, req).ID).ID)
	}
	h.wait("other", h.create("other", runReq("good", tcase("a", "s"))).ID)
	list := func(f engine.ListFilter) ([]string, string) {
		t.Helper()
		runs, next, err := h.e.List(context.Background(), tenant, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range runs {
			out = append(out, r.ID)
		}
		return out, next
	}
	page1, next := list(engine.ListFilter{Limit: 2})
	page2, next2 := list(engine.ListFilter{Limit: 2, Cursor: next})
	page3, next3 := list(engine.ListFilter{Limit: 2, Cursor: next2})
	got := [][]string{page1, page2, page3}
	want := [][]string{{ids[4], ids[3]}, {ids[2], ids[1]}, {ids[0]}}
	if diff := cmp.Diff(want, got); diff != "" || next3 != "" {
		t.Errorf("pages (-want +got):\n%s\nlast cursor %q", diff, next3)
	}
	failed, _ := list(engine.ListFilter{Statuses: []api.Status{api.StatusFailed}})
	if diff := cmp.Diff([]string{ids[3], ids[1]}, failed); diff != "" {
		t.Errorf("failed runs (-want +got):\n%s", diff)
	}
	prod, _ := list(engine.ListFilter{Environment: "prod", Project: "shop"})
	if diff := cmp.Diff([]string{ids[4]}, prod); diff != "" {
		t.Errorf("prod runs (-want +got):\n%s", diff)
	}
	var ve *engine.ValidationError
	if _, _, err := h.e.List(context.Background(), tenant, engine.ListFilter{Cursor: "garbage"}); !errors.As(err, &ve) {
		t.Errorf("bad cursor: %v, want *ValidationError", err)
	}
	if _, _, err := h.e.List(context.Background(), tenant, engine.ListFilter{Statuses: []api.Status{"done"}}); !errors.As(err, &ve) {
		t.Errorf("bad status: %v, want *ValidationError", err)
	}
}

func TestValidation(t *testing.T) {
	h := newHarness(t, nil, nil)
	dup := runReq("run", tcase("a", "s"), tcase("a", "s"))
	noKind := runReq("run", api.Case{ID: "a", Steps: []api.Step{{Name: "nothing"}}})
	badSet := runReq("run", tcase("a", "s"))
	badSet.Sets = []api.Set{{Name: "flow", Cases: []string{"ghost"}}}
	badJSON := runReq("run", api.Case{ID: "a", Steps: []api.Step{{Name: "post", HTTP: &api.HTTPRequest{Method: "POST", Path: "/", JSON: json.RawMessage(`{"a":`)}}}})
	badEquals := runReq("run", api.Case{ID: "a", Steps: []api.Step{{Name: "get", HTTP: &api.HTTPRequest{Path: "/"},
		Expect: &api.Expect{JSON: []api.JSONAssert{{Path: "$.a", Equals: json.RawMessage(`nope`)}}}}}})
	for name, req := range map[string]*api.RunRequest{"duplicate member": dup, "step kind": noKind, "unknown set case": badSet, "nil": nil,
		"raw json body": badJSON, "raw json expectation": badEquals} {
		_, _, err := h.e.Create(context.Background(), tenant, req, engine.CreateOptions{})
		var ve *engine.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%s: %v, want *ValidationError", name, err)
		}
	}
}

func TestStuck(t *testing.T) {
	clock := newClock()
	e, err := engine.New(engine.Config{Store: newStore(), Steps: newFakeSteps(nil), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	// No scheduler loop: the run stays initial.
	r, _, err := e.Create(context.Background(), tenant, runReq("run", tcase("a", "s")), engine.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s := e.Stuck(); len(s) != 0 {
		t.Fatalf("fresh run reported stuck: %v", s)
	}
	clock.Advance(engine.StuckInitialAfter + time.Second)
	s := e.Stuck()
	if len(s) != 1 || s[0].RunID != r.ID || s[0].Status != api.StatusInitial || s[0].Tenant != tenant {
		t.Fatalf("Stuck = %+v, want the initial run", s)
	}
}

// TestURLPolicyReachesSteps: the tenant's URL policy is handed to every step,
// so the executor can check redirects too.
func TestURLPolicyReachesSteps(t *testing.T) {
	var got error
	h := newHarness(t, func(ctx context.Context, c call) step.Output {
		if c.In.AllowURL == nil {
			got = errors.New("no AllowURL")
		} else {
			got = c.In.AllowURL(&url.URL{Scheme: "http", Host: "elsewhere"})
		}
		return step.Output{Status: api.StepPassed}
	}, func(c *engine.Config) {
		c.URLPolicy = func(tenant string) func(*url.URL) error {
			return func(u *url.URL) error { return fmt.Errorf("%s may not reach %s", tenant, u.Host) }
		}
	})
	h.wait(tenant, h.create(tenant, runReq("run", tcase("a", "s"))).ID)
	if got == nil || got.Error() != tenant+" may not reach elsewhere" {
		t.Errorf("policy seen by the step: %v", got)
	}
}

// TestDeepQueuePositionsCatchUp: the first ten of a queue count down on every
// change; runs further back get their new position with the next round, a
// second later, not on every run that ends.
func TestDeepQueuePositionsCatchUp(t *testing.T) {
	g := newGates()
	h := newHarness(t, func(ctx context.Context, c call) step.Output { return g.wait(ctx, c.Run) },
		func(c *engine.Config) { c.TenantLimit = func(string) int { return 1 } })
	head := h.create(tenant, runReq("head", tcase("a", "s")))
	h.until("head running", func() bool { return h.steps.started("head|s") })
	var queued []string
	for i := range 14 {
		r := h.create(tenant, runReq(fmt.Sprintf("q%d", i), tcase("a", "s")))
		queued = append(queued, r.ID)
		h.until(fmt.Sprintf("q%d queued", i), func() bool { return h.get(tenant, r.ID).Position == i+1 })
	}
	g.open("head")
	h.wait(tenant, head.ID)
	// q0 runs; q1..q10 move up at once (positions 1..10); q11..q13 keep 12..14 for now.
	h.until("the first ten moved up", func() bool { return h.get(tenant, queued[10]).Position == 10 })
	for i := 11; i < 14; i++ {
		if p := h.get(tenant, queued[i]).Position; p != i+1 {
			t.Errorf("q%d at position %d right after the change, want %d until the next round", i, p, i+1)
		}
	}
	h.clock.Advance(time.Second)
	h.e.Kick()
	h.until("the rest caught up", func() bool { return h.get(tenant, queued[13]).Position == 13 })
	for i := 11; i < 14; i++ {
		if p := h.get(tenant, queued[i]).Position; p != i {
			t.Errorf("q%d at position %d after the round, want %d", i, p, i)
		}
	}
}
