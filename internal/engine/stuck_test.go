package engine

import (
	"context"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// noStore satisfies Store for tests that never reach it.
type noStore struct{ Store }

type noSteps struct{}

func (noSteps) Run(context.Context, api.Step, StepInput) StepOutput { return StepOutput{} }

func TestStuckQueuedWithFreeCapacity(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		running   int
		exclusive bool
		held      bool
		want      int
	}{
		{"capacity free", 1, false, false, 1},
		{"at the limit", 2, false, false, 0},
		{"waiting for an exclusive environment", 0, true, true, 0},
		{"exclusive environment free", 0, true, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(Config{Store: noStore{}, Steps: noSteps{}, Now: func() time.Time { return now },
				TenantLimit: func(string) int { return 2 }})
			if err != nil {
				t.Fatal(err)
			}
			req := &api.RunRequest{Project: "p", Environment: api.Environment{Name: "staging", Exclusive: tt.exclusive}}
			snap := api.NewRun("r1", req, now)
			snap.Tenant, snap.Status = "t", api.StatusQueued
			rs := newRunState(&RunRecord{Order: 1, Run: snap, Request: req})
			e.waiting = []*runState{rs}
			e.running["t"] = tt.running
			if tt.held {
				e.exclusive[exKey{"t", "p", "staging"}] = &runState{id: "r0"}
			}
			got := e.Stuck()
			if len(got) != tt.want {
				t.Fatalf("Stuck = %+v, want %d", got, tt.want)
			}
			if tt.want == 1 && (got[0].RunID != "r1" || got[0].Status != api.StatusQueued) {
				t.Errorf("Stuck = %+v", got[0])
			}
		})
	}
}
