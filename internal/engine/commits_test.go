package engine_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/step"
)

// countingStore counts, per member, the appends whose events touch it, and
// the reads of whole runs.
type countingStore struct {
	engine.Store
	mu      sync.Mutex
	commits map[string]int
	gets    int
}

func (s *countingStore) GetRun(ctx context.Context, tenant, id string) (*engine.RunRecord, error) {
	s.mu.Lock()
	s.gets++
	s.mu.Unlock()
	return s.Store.GetRun(ctx, tenant, id)
}

var _ engine.Store = (*countingStore)(nil)

func (s *countingStore) Append(ctx context.Context, a engine.Append) error {
	touched := map[string]bool{}
	for _, ev := range a.Events {
		if ev.Member != "" {
			touched[ev.Member] = true
		}
	}
	s.mu.Lock()
	for m := range touched {
		s.commits[m]++
	}
	s.mu.Unlock()
	return s.Store.Append(ctx, a)
}

// TestCommitsPerMember: a member's status events share commits with its
// steps' and a step's end shares one with the next step's start
// (docs/benchmarks.md, cost per member): a member of n steps costs n+1 store
// appends, not 2n+2, and a retry one more. The events are the same; checkLog
// (in wait) checks the log follows the lifecycle.
func TestCommitsPerMember(t *testing.T) {
	failing := func(id string, at int, steps ...string) api.Case {
		c := tcase(id, steps...)
		c.Steps[at].Name = "fails"
		return c
	}
	retried := tcase("retried", "flaky")
	retried.Retries = 1
	tests := []struct {
		name   string
		c      api.Case
		status api.Status
		want   int
	}{
		{"one step passes", tcase("one", "a"), api.StatusPassed, 2},
		{"three steps pass", tcase("three", "a", "b", "c"), api.StatusPassed, 4},
		{"second of three fails", failing("late", 1, "a", "x", "c"), api.StatusFailed, 3},
		{"first of three fails", failing("early", 0, "x", "b", "c"), api.StatusFailed, 2},
		{"fails once then passes", retried, api.StatusPassed, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := &countingStore{commits: map[string]int{}}
			h := newHarness(t, func(_ context.Context, c call) step.Output {
				if c.Step == "fails" || (c.Step == "flaky" && c.N == 0) {
					return step.Output{Status: api.StepFailed, Failure: &api.Failure{Message: "no"}}
				}
				return step.Output{Status: api.StepPassed}
			}, func(cfg *engine.Config) {
				cs.Store = cfg.Store
				cfg.Store = cs
			})
			r := h.wait(tenant, h.create(tenant, runReq("commits-"+tt.c.ID, tt.c)).ID)
			if got := r.Members[0].Status; got != tt.status {
				t.Fatalf("member %s, want %s", got, tt.status)
			}
			cs.mu.Lock()
			defer cs.mu.Unlock()
			if got := cs.commits[tt.c.ID]; got != tt.want {
				t.Errorf("%d commits touched member %s, want %d", got, tt.c.ID, tt.want)
			}
		})
	}
}

// TestSubscribeToActiveRunReadsNoSnapshot: following a run the engine is
// executing takes its status from the engine, not a read of the whole run
// from the store (a server subscribes once per watcher); the events still
// arrive in full, and a run of another tenant is still not found.
func TestSubscribeToActiveRunReadsNoSnapshot(t *testing.T) {
	cs := &countingStore{commits: map[string]int{}}
	release := make(chan struct{})
	h := newHarness(t, func(ctx context.Context, _ call) step.Output {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return step.Output{Status: api.StepPassed}
	}, func(cfg *engine.Config) {
		cs.Store = cfg.Store
		cfg.Store = cs
	})
	r := h.create(tenant, runReq("subscribe-active", tcase("a", "s")))
	h.untilStatus(tenant, r.ID, api.StatusRunning)
	cs.mu.Lock()
	before := cs.gets
	cs.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	sub, err := h.e.Subscribe(ctx, tenant, r.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	cs.mu.Lock()
	if cs.gets != before {
		t.Errorf("Subscribe read the whole run from the store %d times", cs.gets-before)
	}
	cs.mu.Unlock()
	if _, err := h.e.Subscribe(ctx, "other-tenant", r.ID, 0); err == nil {
		t.Error("another tenant subscribed to the run")
	}
	close(release)
	var last api.Event
	n := 0
	for ev := range sub.C {
		if ev.Seq != int64(n+1) {
			t.Fatalf("event %d has seq %d", n+1, ev.Seq)
		}
		n++
		last = ev
	}
	if err := sub.Err(); err != nil || last.Type != api.EventRunStatus || last.Status != api.StatusPassed {
		t.Errorf("subscription ended with %v after %+v", err, last)
	}
}

// outageStore refuses the next down appends as unreachable (a database
// restarting), then takes them again.
type outageStore struct {
	engine.Store
	mu      sync.Mutex
	down    int
	refused int
}

func (s *outageStore) Append(ctx context.Context, a engine.Append) error {
	s.mu.Lock()
	if s.down > 0 {
		s.down--
		s.refused++
		s.mu.Unlock()
		return fmt.Errorf("appending: connection refused (%w)", engine.ErrUnavailable)
	}
	s.mu.Unlock()
	return s.Store.Append(ctx, a)
}

// TestCommitOutlastsStoreOutage: a step that ends while the store is
// unreachable keeps its result: the engine retries the append until the store
// answers (issue 12: a database restart mid-run loses nothing and runs
// nothing twice), and the run passes with its log whole: every event once,
// in order, the step's end among them.
func TestCommitOutlastsStoreOutage(t *testing.T) {
	st := &outageStore{}
	release := make(chan struct{})
	var mu sync.Mutex
	runs := map[string]int{}
	h := newHarness(t, func(ctx context.Context, c call) step.Output {
		mu.Lock()
		runs[c.Step]++
		mu.Unlock()
		if c.Step == "slow" {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return step.Output{Status: api.StepPassed}
	}, func(cfg *engine.Config) {
		st.Store = cfg.Store
		cfg.Store = st
	})
	r := h.create(tenant, runReq("outage", tcase("a", "slow", "after")))
	h.untilStatus(tenant, r.ID, api.StatusRunning)
	h.until("the slow step running", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return runs["slow"] == 1
	})
	st.mu.Lock()
	st.down = 3 // the slow step's end and what follows, for three tries
	st.mu.Unlock()
	close(release)
	got := h.wait(tenant, r.ID)
	st.mu.Lock()
	if st.refused != 3 {
		t.Errorf("%d appends refused, want 3", st.refused)
	}
	st.mu.Unlock()
	if got.Status != api.StatusPassed || got.Members[0].Status != api.StatusPassed {
		t.Fatalf("run %s, member %s, want both passed", got.Status, got.Members[0].Status)
	}
	if a := got.Members[0].Attempt; a != 1 {
		t.Errorf("member attempt %d, want 1: nothing runs twice", a)
	}
	for _, s := range got.Members[0].Steps {
		if s.Status != api.StepPassed {
			t.Errorf("step %q %s, want passed: its result was lost", s.Name, s.Status)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range []string{"slow", "after"} {
		if runs[s] != 1 {
			t.Errorf("step %s ran %d times, want once", s, runs[s])
		}
	}
	var ends int
	for _, ev := range h.events(tenant, r.ID) {
		if ev.Type == api.EventStepStatus && ev.StepStatus == api.StepPassed {
			ends++
		}
	}
	if ends != 2 {
		t.Errorf("%d step.status passed events, want 2 (one per step)", ends)
	}
}
