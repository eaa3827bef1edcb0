package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// deleteStore is a Deleter that records what it deleted.
type deleteStore struct {
	noStore
	deleted chan string
}

func (s deleteStore) DeleteRun(_ context.Context, _, id string) error {
	s.deleted <- id
	return nil
}

// TestDeleteWaitsForRelease: a run whose terminal status is stored but
// which the engine still holds (it is retiring right now: a waiter can see
// the end first) is not refused as "still passed"; Delete waits until the
// engine lets go, and gives up only with its context.
func TestDeleteWaitsForRelease(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	st := deleteStore{deleted: make(chan string, 1)}
	e, err := New(Config{Store: st, Steps: noSteps{}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	req := &api.RunRequest{Project: "p"}
	snap := api.NewRun("r1", req, now)
	snap.Tenant, snap.Status = "t", api.StatusPassed
	rs := newRunState(&RunRecord{Order: 1, Run: snap, Request: req})
	rs.done = true
	e.mu.Lock()
	e.active[rs.id] = rs
	e.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var se *StateError
	if err := e.Delete(ctx, "t", "r1"); !errors.Is(err, context.Canceled) || errors.As(err, &se) {
		t.Fatalf("Delete while the engine still holds the finished run, context cancelled = %v, want context.Canceled and no *StateError", err)
	}

	res := make(chan error, 1)
	go func() { res <- e.Delete(context.Background(), "t", "r1") }()
	e.mu.Lock()
	delete(e.active, rs.id)
	rs.markReleased()
	e.mu.Unlock()
	select {
	case err := <-res:
		if err != nil {
			t.Fatalf("Delete after the release = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Delete did not return within 10s of the release")
	}
	if got := <-st.deleted; got != "r1" {
		t.Errorf("deleted %q, want r1", got)
	}

	// A run that has not finished is still refused at once.
	rs2 := newRunState(&RunRecord{Order: 2, Run: api.NewRun("r2", req, now), Request: req})
	rs2.tenant = "t"
	e.mu.Lock()
	e.active["r2"] = rs2
	e.mu.Unlock()
	if err := e.Delete(context.Background(), "t", "r2"); !errors.As(err, &se) || se.Op != "delete" {
		t.Errorf("Delete of an unfinished run = %v, want a *StateError", err)
	}
}
