package engine_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/sqlitestore"
	"github.com/zof-ai/zof-ci/internal/step"
)

// process is one engine "process" on a store: started with start, stopped
// (Run's context ended) with stop.
type process struct {
	t    *testing.T
	e    *engine.Engine
	done chan error
	stop func()
}

func newProcess(t *testing.T, cfg engine.Config) *process {
	t.Helper()
	e, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.Observe(observeChanges)
	return &process{t: t, e: e}
}

func (p *process) start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.done = make(chan error, 1)
	go func() { p.done <- p.e.Run(ctx) }()
	stopped := false
	p.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-p.done:
			if err != nil {
				p.t.Errorf("Run: %v", err)
			}
		case <-time.After(waitLimit):
			p.t.Errorf("Run did not return within %s of its context ending", waitLimit)
		}
	}
	p.t.Cleanup(p.stop)
}

func (p *process) get(id string) *api.Run {
	p.t.Helper()
	r, err := p.e.Get(context.Background(), tenant, id)
	if err != nil {
		p.t.Fatalf("Get %s: %v", id, err)
	}
	return r
}

func (p *process) wait(id string) *api.Run {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	r, err := p.e.Wait(ctx, tenant, id)
	if err != nil {
		p.t.Fatalf("Wait %s: %v", id, err)
	}
	return r
}

func (p *process) events(id string) []api.Event {
	p.t.Helper()
	evs, err := p.e.Events(context.Background(), tenant, id, 0)
	if err != nil {
		p.t.Fatalf("Events %s: %v", id, err)
	}
	return evs
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitFor(t, what, cond)
}

// syncBuffer is a bytes.Buffer safe for the engine's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// collect reads a subscription to its end.
func collect(sub *engine.Subscription) []api.Event {
	var evs []api.Event
	for ev := range sub.C {
		evs = append(evs, ev)
	}
	return evs
}

func openSQLite(t *testing.T, path string) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// The scenario on a real SQLite file: `zof serve` stops while a run
// executes (member a finished, member b in flight) and two more wait in the
// queue. The next process on the same file resumes: a is not executed again,
// b runs again as attempt 2, the run passes, the queue keeps its order, the
// log stays gapless, and a follower resuming from its last seq gets exactly
// the rest.
func TestRestartResumesARunOnSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "zof.db")
	g := newGates()
	steps1 := newFakeSteps(func(ctx context.Context, c call) step.Output {
		if c.Step == "sb" {
			return g.wait(ctx, "never") // in flight until the stop
		}
		return step.Output{Status: api.StepPassed}
	})
	svc1 := &fakeServices{}
	cfg := engine.Config{Store: openSQLite(t, path), Steps: steps1, Services: svc1, LeaveQueuedOnStop: true,
		TenantLimit: func(string) int { return 1 }}
	p1 := newProcess(t, cfg)
	p1.start()

	req := runReq("run", tcase("a", "sa"), tcase("b", "sb"))
	req.Environment.Serve = &api.Serve{Command: "./server"}
	run, _, err := p1.e.Create(context.Background(), tenant, req, engine.CreateOptions{IdempotencyKey: "ci-1"})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "a passed and b in flight", func() bool {
		r := p1.get(run.ID)
		return r.Member("a").Status == api.StatusPassed && steps1.started("run|sb")
	})
	var queued []string
	for _, name := range []string{"q1", "q2"} {
		r, _, err := p1.e.Create(context.Background(), tenant, runReq(name, tcase("a", "s")), engine.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		queued = append(queued, r.ID)
	}
	poll(t, "q2 queued", func() bool { return p1.get(queued[1]).Status == api.StatusQueued })

	// A follower of the first process; the stop ends it with ErrStopped.
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	sub1, err := p1.e.Subscribe(ctx, tenant, run.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	p1.stop()
	seen := collect(sub1)
	if !errors.Is(sub1.Err(), engine.ErrStopped) {
		t.Fatalf("follower of the stopped engine ended with %v, want ErrStopped", sub1.Err())
	}
	if r := p1.get(run.ID); r.Status != api.StatusRunning || r.Member("a").Status != api.StatusPassed || r.Member("b").Status != api.StatusRunning {
		t.Fatalf("stored after the stop: run %s, a %s, b %s; want running, passed, running", r.Status, r.Member("a").Status, r.Member("b").Status)
	}
	if started, stopped := svc1.counts(); started != 1 || stopped != 1 {
		t.Errorf("first process: service started %d stopped %d, want 1 and 1", started, stopped)
	}
	if err := cfg.Store.(*sqlitestore.Store).Close(); err != nil {
		t.Fatal(err)
	}

	// The next process on the same file.
	steps2 := newFakeSteps(nil)
	svc2 := &fakeServices{}
	var logBuf syncBuffer
	cfg.Store, cfg.Steps, cfg.Services = openSQLite(t, path), steps2, svc2
	cfg.Logger = slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))
	p2 := newProcess(t, cfg)
	// Subscribed before Run loads the run: it waits for the resume.
	sub2, err := p2.e.Subscribe(ctx, tenant, run.ID, seen[len(seen)-1].Seq)
	if err != nil {
		t.Fatal(err)
	}
	rest := make(chan []api.Event)
	go func() { rest <- collect(sub2) }()
	p2.start()

	got := p2.wait(run.ID)
	if got.Status != api.StatusPassed {
		t.Fatalf("resumed run = %s %q, want passed", got.Status, got.Reason)
	}
	a, b := got.Member("a"), got.Member("b")
	if a.Attempt != 1 || b.Attempt != 2 || b.Status != api.StatusPassed || b.Flaky {
		t.Errorf("a attempt %d; b %s attempt %d flaky %v; want a 1, b passed on attempt 2, not flaky", a.Attempt, b.Status, b.Attempt, b.Flaky)
	}
	for _, q := range queued {
		if r := p2.wait(q); r.Status != api.StatusPassed {
			t.Errorf("queued run %s = %s, want passed", q, r.Status)
		}
	}
	want := []string{"start run|sb", "end run|sb", "start q1|s", "end q1|s", "start q2|s", "end q2|s"}
	if diff := cmp.Diff(want, steps2.snapshotLog()); diff != "" {
		t.Errorf("steps of the second process: a must not run again, b first, then the queue in order (-want +got):\n%s", diff)
	}
	if started, stopped := svc2.counts(); started != 1 || stopped != 1 {
		t.Errorf("second process: service started %d stopped %d, want 1 and 1", started, stopped)
	}

	all := p2.events(run.ID)
	checkEvents(t, all)
	var fold api.Run
	for _, ev := range all {
		if err := fold.Apply(ev); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(got, &fold); diff != "" {
		t.Errorf("snapshot vs fold of the log (-snapshot +fold):\n%s", diff)
	}
	after := <-rest
	if sub2.Err() != nil {
		t.Fatalf("resumed follower ended with %v", sub2.Err())
	}
	if diff := cmp.Diff(all, append(seen, after...)); diff != "" {
		t.Errorf("follower before and after the restart vs the log (-log +followed):\n%s", diff)
	}
	var logs []string
	for _, ev := range after {
		if ev.Type == api.EventLog {
			logs = append(logs, ev.Member+": "+ev.Message)
		}
	}
	wantLogs := []string{
		": the run engine restarted while this run was executing; resuming it: 1 of 2 members run from their first step, 1 that had finished keep their results; the environment's serve is started again",
		"b: interrupted by a restart of the run engine: attempt 1 is run again from its first step as attempt 2",
	}
	if diff := cmp.Diff(wantLogs, logs); diff != "" {
		t.Errorf("log lines after the restart (-want +got):\n%s", diff)
	}

	wantLog := "level=INFO msg=\"resuming a run interrupted by a restart\" run=" + run.ID + " tenant=" + tenant + " members_rerun=1 members_kept=1\n"
	if got := logBuf.String(); got != wantLog {
		t.Errorf("engine log:\n%s\nwant:\n%s", got, wantLog)
	}

	// The idempotency key survived too: the same CI step attaches to the run.
	again, replayed, err := p2.e.Create(context.Background(), tenant, req, engine.CreateOptions{IdempotencyKey: "ci-1"})
	if err != nil || !replayed || again.ID != run.ID {
		t.Errorf("create with the same key after the restart: %v replayed=%v err=%v, want run %s replayed", again, replayed, err, run.ID)
	}
}

// A cancel requested while the run executes, with the engine stopping before
// the run has stopped: the next start finishes the cancel and runs nothing.
func TestRestartFinishesACancelInFlight(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zof.db")
	release := make(chan struct{})
	steps1 := newFakeSteps(func(ctx context.Context, c call) step.Output {
		<-release // deaf to cancel
		return step.Output{Status: api.StepPassed}
	})
	cfg := engine.Config{Store: openSQLite(t, path), Steps: steps1, LeaveQueuedOnStop: true, CancelGrace: waitLimit}
	p1 := newProcess(t, cfg)
	p1.start()
	req := runReq("run", tcase("a", "s1", "s2"), tcase("b", "s3"))
	req.MaxParallel = 1
	run, _, err := p1.e.Create(context.Background(), tenant, req, engine.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "s1 in flight", func() bool { return steps1.started("run|s1") })
	sub, err := p1.e.Subscribe(context.Background(), tenant, run.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p1.e.Cancel(context.Background(), tenant, run.ID, "stop it"); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() { p1.stop(); close(stopped) }()
	// The stop freezes the run, which ends its followers: then let the deaf step return.
	collect(sub)
	if !errors.Is(sub.Err(), engine.ErrStopped) {
		t.Fatalf("follower ended with %v, want ErrStopped", sub.Err())
	}
	close(release)
	<-stopped
	if r := p1.get(run.ID); r.Status != api.StatusRunning {
		t.Fatalf("stored after the stop: %s, want still running", r.Status)
	}
	if _, err := p1.e.Cancel(context.Background(), tenant, run.ID, "again"); !errors.Is(err, engine.ErrStopped) {
		t.Errorf("Cancel on a stopped engine: %v", err)
	}
	_ = cfg.Store.(*sqlitestore.Store).Close()

	steps2 := newFakeSteps(nil)
	cfg.Store, cfg.Steps = openSQLite(t, path), steps2
	p2 := newProcess(t, cfg)
	p2.start()
	got := p2.wait(run.ID)
	if got.Status != api.StatusCancelled || got.Reason != "stop it" {
		t.Fatalf("run = %s %q, want cancelled \"stop it\"", got.Status, got.Reason)
	}
	if diff := cmp.Diff([]api.StepStatus{api.StepCancelled, api.StepSkipped}, stepStatuses(got.Member("a"))); diff != "" {
		t.Errorf("member a steps (-want +got):\n%s", diff)
	}
	if b := got.Member("b"); b.Status != api.StatusCancelled || !b.StartedAt.IsZero() {
		t.Errorf("member b = %s (started %v), want cancelled without starting", b.Status, b.StartedAt)
	}
	if log := steps2.snapshotLog(); len(log) != 0 {
		t.Errorf("the second process executed steps: %v", log)
	}
	checkEvents(t, p2.events(run.ID))
}

// crashState stores a new run and appends what a process that died at some
// moment had recorded (seqs and run id stamped here).
func crashState(t *testing.T, store engine.Store, req *api.RunRequest, evs ...api.Event) string {
	t.Helper()
	e, err := engine.New(engine.Config{Store: store, Steps: newFakeSteps(nil), Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := e.Create(context.Background(), tenant, req, engine.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	snap := r.Clone()
	for i := range evs {
		evs[i].Seq, evs[i].RunID = snap.LastSeq+1, r.ID
		if err := snap.Apply(evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Append(context.Background(), engine.WholeRun(r.ID, snap, evs)); err != nil {
		t.Fatal(err)
	}
	return r.ID
}

// The rule member by member, from states a crash can leave: what ran to
// completion keeps its result, what was under way runs again as a new
// attempt, a failed attempt is retried only within Retries.
func TestRestartResumeRule(t *testing.T) {
	running := api.Event{Type: api.EventRunStatus, Status: api.StatusRunning}
	memberRunning := func(m string, attempt int) api.Event {
		return api.Event{Type: api.EventMemberStatus, Member: m, Status: api.StatusRunning, Attempt: attempt}
	}
	stepEv := func(m string, n int, s api.StepStatus) api.Event {
		ev := api.Event{Type: api.EventStepStatus, Member: m, Step: n, StepStatus: s}
		if s == api.StepFailed {
			ev.Failure = &api.Failure{Message: "got 500"}
		}
		return ev
	}
	failedCase := tcase("f", "f1")
	failedCase.Retries = 1
	tests := []struct {
		name     string
		cases    []api.Case
		crash    []api.Event
		wantRun  api.Status
		members  map[string]api.Status
		attempts map[string]int
		flaky    map[string]bool
		executed []string // steps the new process runs, in order
	}{
		{
			name:  "in flight mid-step: run again from its first step",
			cases: []api.Case{tcase("a", "s1", "s2"), tcase("b", "s3")},
			crash: []api.Event{running, memberRunning("a", 1), stepEv("a", 1, api.StepPassed), stepEv("a", 2, api.StepRunning)},
			// MaxParallel 1: a first, then b.
			wantRun: api.StatusPassed, members: map[string]api.Status{"a": api.StatusPassed, "b": api.StatusPassed},
			attempts: map[string]int{"a": 2, "b": 1}, flaky: map[string]bool{},
			executed: []string{"s1", "s2", "s3"},
		},
		{
			name:    "every step had passed: passed without running again",
			cases:   []api.Case{tcase("a", "s1"), tcase("b", "s2")},
			crash:   []api.Event{running, memberRunning("a", 1), stepEv("a", 1, api.StepPassed)},
			wantRun: api.StatusPassed, members: map[string]api.Status{"a": api.StatusPassed, "b": api.StatusPassed},
			attempts: map[string]int{"a": 1, "b": 1}, flaky: map[string]bool{},
			executed: []string{"s2"},
		},
		{
			name:    "failed attempt with a retry left: retried, and flaky when it passes",
			cases:   []api.Case{failedCase},
			crash:   []api.Event{running, memberRunning("f", 1), stepEv("f", 1, api.StepFailed)},
			wantRun: api.StatusPassed, members: map[string]api.Status{"f": api.StatusPassed},
			attempts: map[string]int{"f": 2}, flaky: map[string]bool{"f": true},
			executed: []string{"f1"},
		},
		{
			name:    "failed last attempt: failed, nothing runs",
			cases:   []api.Case{tcase("a", "s1"), tcase("b", "s2")},
			crash:   []api.Event{running, memberRunning("a", 1), stepEv("a", 1, api.StepFailed), memberRunning("b", 1), stepEv("b", 1, api.StepPassed), {Type: api.EventMemberStatus, Member: "b", Status: api.StatusPassed, Attempt: 1}},
			wantRun: api.StatusFailed, members: map[string]api.Status{"a": api.StatusFailed, "b": api.StatusPassed},
			attempts: map[string]int{"a": 1, "b": 1}, flaky: map[string]bool{},
		},
		{
			name:    "every member had finished: only the verdict was missing",
			cases:   []api.Case{tcase("a", "s1")},
			crash:   []api.Event{running, memberRunning("a", 1), stepEv("a", 1, api.StepPassed), {Type: api.EventMemberStatus, Member: "a", Status: api.StatusPassed, Attempt: 1}},
			wantRun: api.StatusPassed, members: map[string]api.Status{"a": api.StatusPassed},
			attempts: map[string]int{"a": 1}, flaky: map[string]bool{},
		},
		{
			name:  "a second restart: interruptions are not failures",
			cases: []api.Case{tcase("a", "s1")},
			crash: []api.Event{running, memberRunning("a", 1), stepEv("a", 1, api.StepRunning),
				stepEv("a", 1, api.StepCancelled),
				{Type: api.EventLog, Member: "a", Message: "interrupted by a restart of the run engine: attempt 1 is run again from its first step as attempt 2"},
				memberRunning("a", 2), stepEv("a", 1, api.StepRunning)},
			wantRun: api.StatusPassed, members: map[string]api.Status{"a": api.StatusPassed},
			attempts: map[string]int{"a": 3}, flaky: map[string]bool{},
			executed: []string{"s1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newStore()
			req := runReq("run", tt.cases...)
			req.MaxParallel = 1
			id := crashState(t, store, req, tt.crash...)
			steps := newFakeSteps(nil)
			p := newProcess(t, engine.Config{Store: store, Steps: steps})
			p.start()
			got := p.wait(id)
			checkEvents(t, p.events(id))
			if got.Status != tt.wantRun {
				t.Errorf("run = %s %q, want %s", got.Status, got.Reason, tt.wantRun)
			}
			members, attempts, flaky := map[string]api.Status{}, map[string]int{}, map[string]bool{}
			for _, m := range got.Members {
				members[m.ID], attempts[m.ID] = m.Status, m.Attempt
				if m.Flaky {
					flaky[m.ID] = true
				}
			}
			if diff := cmp.Diff(tt.members, members); diff != "" {
				t.Errorf("members (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.attempts, attempts); diff != "" {
				t.Errorf("attempts (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.flaky, flaky); diff != "" {
				t.Errorf("flaky (-want +got):\n%s", diff)
			}
			var executed []string
			for _, l := range steps.snapshotLog() {
				if k, ok := strings.CutPrefix(l, "start run|"); ok {
					executed = append(executed, k)
				}
			}
			if diff := cmp.Diff(tt.executed, executed); diff != "" {
				t.Errorf("steps executed after the restart (-want +got):\n%s", diff)
			}
		})
	}
}

// The embedded runner's stop (no LeaveQueuedOnStop) still cancels, and a
// memstore restart keeps the queue: see TestStoppingTheEngineCancelsAndStopsServices.
// Here: with LeaveQueuedOnStop the queued run waits for the next start and
// runs after the resumed one.
func TestRestartKeepsTheQueue(t *testing.T) {
	store := newStore()
	g := newGates()
	steps := newFakeSteps(func(ctx context.Context, c call) step.Output { return g.wait(ctx, c.Run) })
	cfg := engine.Config{Store: store, Steps: steps, LeaveQueuedOnStop: true, TenantLimit: func(string) int { return 1 }}
	p1 := newProcess(t, cfg)
	p1.start()
	first, _, _ := p1.e.Create(context.Background(), tenant, runReq("a", tcase("a", "s")), engine.CreateOptions{})
	queued, _, _ := p1.e.Create(context.Background(), tenant, runReq("b", tcase("a", "s")), engine.CreateOptions{})
	poll(t, "second run queued", func() bool { return p1.get(queued.ID).Status == api.StatusQueued })
	// The first run's member must have started (its attempt 1 recorded) for
	// the restart to run it again as attempt 2: its step runs only after that.
	poll(t, "first run's step started", func() bool { return steps.started("a|s") })
	p1.stop()
	if r := p1.get(queued.ID); r.Status != api.StatusQueued {
		t.Fatalf("queued run after stop = %s, want still queued", r.Status)
	}
	p2 := newProcess(t, cfg)
	p2.start()
	g.open("a")
	g.open("b")
	if r := p2.wait(first.ID); r.Status != api.StatusPassed || r.Members[0].Attempt != 2 {
		t.Errorf("resumed run = %s %q, attempt %d; want passed on attempt 2\n%+v", r.Status, r.Reason, r.Members[0].Attempt, p2.events(first.ID))
	}
	if r := p2.wait(queued.ID); r.Status != api.StatusPassed {
		t.Errorf("queued run = %s, want passed", r.Status)
	}
}
