package engine_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/memstore"
	"github.com/zof-ai/zof-ci/internal/step"
)

// waitLimit bounds every wait in these tests; a correct engine needs a
// fraction of it.
const waitLimit = 5 * time.Second

// changes wakes the tests' waits whenever what they wait for may have
// happened: the engine recorded a change (observeChanges, an Observer every
// test engine has) or a fake step started or ended. A wait re-checks its
// condition on each wake-up, bounded by waitLimit, instead of sleeping
// between polls.
var changes = newSignal()

// signal is a broadcast: every notify wakes everyone waiting at that moment.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func newSignal() *signal { return &signal{ch: make(chan struct{})} }

func (s *signal) notify() {
	s.mu.Lock()
	close(s.ch)
	s.ch = make(chan struct{})
	s.mu.Unlock()
}

// next is closed by the next notify.
func (s *signal) next() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch
}

func observeChanges(string, *api.Run, []api.Event) { changes.notify() }

// waitFor returns once cond holds, checking it again after every change; it
// fails t when cond still does not hold after waitLimit.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		woken := changes.next() // taken before checking, so no change is missed
		if cond() {
			return
		}
		select {
		case <-woken:
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s", waitLimit, what)
		}
	}
}

// fakeClock is a settable clock for queue waits and block_after.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// call is one invocation of the fake step runner.
type call struct {
	Run  string // the environment URL, which the tests make unique per run
	Step string
	In   step.Input
	N    int // how many times this run+step was called before
}

// script decides a fake step's outcome.
type script func(ctx context.Context, c call) step.Output

// fakeSteps is a StepRunner whose steps do what the test's script says,
// counting how many run at once and recording what contexts they saw.
type fakeSteps struct {
	script script

	mu        sync.Mutex
	calls     map[string]int
	log       []string // "start KEY" / "end KEY" in order
	cur, peak int
	ctxErrs   []error // ctx.Err() after each step returned
}

func newFakeSteps(s script) *fakeSteps {
	return &fakeSteps{script: s, calls: map[string]int{}}
}

var _ engine.StepRunner = (*fakeSteps)(nil)

func (f *fakeSteps) Run(ctx context.Context, s api.Step, in step.Input) step.Output {
	key := in.BaseURL + "|" + s.Name
	f.mu.Lock()
	n := f.calls[key]
	f.calls[key]++
	f.cur++
	f.peak = max(f.peak, f.cur)
	f.log = append(f.log, "start "+key)
	f.mu.Unlock()
	changes.notify()
	var out step.Output
	if f.script != nil {
		out = f.script(ctx, call{Run: in.BaseURL, Step: s.Name, In: in, N: n})
	} else {
		out = step.Output{Status: api.StepPassed}
	}
	f.mu.Lock()
	f.cur--
	f.log = append(f.log, "end "+key)
	f.ctxErrs = append(f.ctxErrs, ctx.Err())
	f.mu.Unlock()
	changes.notify()
	return out
}

func (f *fakeSteps) started(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.log {
		if l == "start "+key {
			return true
		}
	}
	return false
}

func (f *fakeSteps) snapshotLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

// gates are channels steps block on until the test opens them.
type gates struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

func newGates() *gates { return &gates{m: map[string]chan struct{}{}} }

func (g *gates) get(key string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.m[key]
	if !ok {
		c = make(chan struct{})
		g.m[key] = c
	}
	return c
}

func (g *gates) open(key string) { close(g.get(key)) }

// wait blocks until the gate opens (passed) or ctx ends (cancelled, as a step
// killed by its context would report).
func (g *gates) wait(ctx context.Context, key string) step.Output {
	select {
	case <-g.get(key):
		return step.Output{Status: api.StepPassed, Output: "released"}
	case <-ctx.Done():
		return step.Output{Status: api.StepCancelled, Failure: &api.Failure{Message: "cancelled"}}
	}
}

// fakeServices starts services that only record their lifecycle.
type fakeServices struct {
	mu      sync.Mutex
	started int
	stopped int
	fail    error
}

type fakeService struct{ f *fakeServices }

func (f *fakeServices) Start(ctx context.Context, s api.Serve, baseURL string) (engine.Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	f.started++
	return fakeService{f}, nil
}

func (s fakeService) Stop(ctx context.Context) error {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.stopped++
	return nil
}

func (f *fakeServices) counts() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.started, f.stopped
}

// harness is an engine on a memstore with fakes, running until the test ends.
type harness struct {
	t     *testing.T
	e     *engine.Engine
	store *memstore.Store
	steps *fakeSteps
	clock *fakeClock
	stop  func() // stops the engine and waits for Run to return
}

func newHarness(t *testing.T, s script, mod func(*engine.Config)) *harness {
	t.Helper()
	h := &harness{t: t, store: memstore.New(), steps: newFakeSteps(s), clock: newClock()}
	n := 0
	var idMu sync.Mutex
	cfg := engine.Config{
		Store: h.store,
		Steps: h.steps,
		Now:   h.clock.Now,
		NewID: func() string {
			idMu.Lock()
			defer idMu.Unlock()
			n++
			return fmt.Sprintf("r%d", n)
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	e, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.Observe(observeChanges)
	h.e = e
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(waitLimit):
				t.Errorf("Run did not return within %s of its context ending", waitLimit)
			}
		})
	}
	t.Cleanup(h.stop)
	return h
}

// runReq is a request whose environment URL names the run for the fakes.
func runReq(name string, cases ...api.Case) *api.RunRequest {
	return &api.RunRequest{
		Project:     "shop",
		Environment: api.Environment{Name: "staging", URL: name},
		Cases:       cases,
		Selection:   api.Selection{Scope: "all", Effective: "all"},
	}
}

func tcase(id string, steps ...string) api.Case {
	c := api.Case{ID: id}
	for _, s := range steps {
		c.Steps = append(c.Steps, api.Step{Name: s, Run: &api.Command{Command: "true"}})
	}
	return c
}

func (h *harness) create(tenant string, req *api.RunRequest) *api.Run {
	h.t.Helper()
	r, replayed, err := h.e.Create(context.Background(), tenant, req, engine.CreateOptions{})
	if err != nil || replayed {
		h.t.Fatalf("Create: replayed=%v err=%v", replayed, err)
	}
	return r
}

// wait returns the run's final snapshot, checking its log.
func (h *harness) wait(tenant, id string) *api.Run {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	r, err := h.e.Wait(ctx, tenant, id)
	if err != nil {
		h.t.Fatalf("Wait %s: %v", id, err)
	}
	h.checkLog(tenant, id)
	return r
}

// until waits, event-driven, until cond holds (see waitFor).
func (h *harness) until(what string, cond func() bool) {
	h.t.Helper()
	waitFor(h.t, what, cond)
}

func (h *harness) get(tenant, id string) *api.Run {
	h.t.Helper()
	r, err := h.e.Get(context.Background(), tenant, id)
	if err != nil {
		h.t.Fatalf("Get %s: %v", id, err)
	}
	return r
}

func (h *harness) untilStatus(tenant, id string, s api.Status) {
	h.t.Helper()
	h.until(fmt.Sprintf("run %s %s", id, s), func() bool { return h.get(tenant, id).Status == s })
}

func (h *harness) events(tenant, id string) []api.Event {
	h.t.Helper()
	evs, err := h.e.Events(context.Background(), tenant, id, 0)
	if err != nil {
		h.t.Fatalf("Events %s: %v", id, err)
	}
	return evs
}

// checkLog proves the run's log is well formed: seqs 1..n, only lifecycle
// transitions for the run and every member, nothing after the run's end, and
// its fold equals the stored snapshot.
func (h *harness) checkLog(tenant, id string) {
	h.t.Helper()
	evs := h.events(tenant, id)
	checkEvents(h.t, evs)
	var fold api.Run
	for _, ev := range evs {
		if err := fold.Apply(ev); err != nil {
			h.t.Fatalf("run %s: folding the log: %v", id, err)
		}
	}
	if diff := cmp.Diff(h.get(tenant, id), &fold); diff != "" {
		h.t.Errorf("run %s: snapshot differs from the fold of its events (-get +fold):\n%s", id, diff)
	}
}

func checkEvents(t *testing.T, evs []api.Event) {
	t.Helper()
	if len(evs) == 0 || evs[0].Type != api.EventRunCreated {
		t.Fatalf("the log must start with run.created, got %v", evs)
	}
	run := api.Status("")
	members := map[string]api.Status{}
	attempts := map[string]int{}
	ended := false
	for i, ev := range evs {
		if ev.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d", i+1, ev.Seq)
		}
		if ended {
			t.Fatalf("event %d (%s) after the run's end", ev.Seq, ev.Type)
		}
		switch ev.Type {
		case api.EventRunCreated:
			run = ev.Run.Status
			for _, m := range ev.Run.Members {
				members[m.ID] = m.Status
			}
		case api.EventRunStatus:
			if !api.CanTransition(run, ev.Status) {
				t.Fatalf("event %d: run %s -> %s is not allowed", ev.Seq, run, ev.Status)
			}
			for m, s := range members {
				if ev.Status.Terminal() && !s.Terminal() {
					t.Fatalf("event %d: run %s while member %s is %s", ev.Seq, ev.Status, m, s)
				}
			}
			run = ev.Status
			ended = run.Terminal()
		case api.EventMemberStatus:
			from := members[ev.Member]
			retry := from == api.StatusRunning && ev.Status == api.StatusRunning && ev.Attempt > attempts[ev.Member]
			if !retry && !api.CanTransition(from, ev.Status) {
				t.Fatalf("event %d: member %s %s -> %s is not allowed", ev.Seq, ev.Member, from, ev.Status)
			}
			members[ev.Member] = ev.Status
			attempts[ev.Member] = max(attempts[ev.Member], ev.Attempt)
		}
	}
}

// statusesOf lists members' statuses by id.
func statusesOf(r *api.Run) map[string]api.Status {
	out := map[string]api.Status{}
	for _, m := range r.Members {
		out[m.ID] = m.Status
	}
	return out
}

func stepStatuses(m *api.Member) []api.StepStatus {
	var out []api.StepStatus
	for _, s := range m.Steps {
		out = append(out, s.Status)
	}
	return out
}

func newStore() *memstore.Store { return memstore.New() }
