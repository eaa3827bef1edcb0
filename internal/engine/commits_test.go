package engine_test

import (
	"context"
	"sync"
	"testing"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/step"
)

// countingStore counts, per member, the appends whose events touch it.
type countingStore struct {
	engine.Store
	mu      sync.Mutex
	commits map[string]int
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
