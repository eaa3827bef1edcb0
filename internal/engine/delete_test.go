package engine_test

import (
	"context"
	"errors"
	"testing"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/step"
)

// TestDelete: a running run is refused with a *StateError naming delete,
// another tenant's run is not found, a finished one goes with its events.
func TestDelete(t *testing.T) {
	g := newGates()
	h := newHarness(t, func(ctx context.Context, c call) step.Output { return g.wait(ctx, c.Run) }, nil)
	run := h.create("t", runReq("del", tcase("a", "s1")))
	h.untilStatus("t", run.ID, api.StatusRunning)
	ctx := context.Background()

	var se *engine.StateError
	if err := h.e.Delete(ctx, "t", run.ID); !errors.As(err, &se) || se.Op != "delete" || se.Status != api.StatusRunning {
		t.Errorf("Delete of a running run = %v, want a *StateError for delete while running", err)
	}
	g.open("del")
	h.wait("t", run.ID)
	if err := h.e.Delete(ctx, "u", run.ID); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Delete from another tenant = %v, want not found", err)
	}
	if err := h.e.Delete(ctx, "t", run.ID); err != nil {
		t.Fatalf("Delete of a finished run = %v", err)
	}
	if _, err := h.e.Get(ctx, "t", run.ID); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Get after Delete = %v, want not found", err)
	}
	if _, err := h.e.Events(ctx, "t", run.ID, 0); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Events after Delete = %v, want not found", err)
	}
}

// noDelete hides memstore's Deleter.
type noDelete struct{ engine.Store }

func TestDeleteUnsupported(t *testing.T) {
	h := newHarness(t, func(context.Context, call) step.Output { return step.Output{} }, func(c *engine.Config) { c.Store = noDelete{c.Store} })
	run := h.create("t", runReq("x", tcase("a", "s1")))
	h.wait("t", run.ID)
	if err := h.e.Delete(context.Background(), "t", run.ID); !errors.Is(err, engine.ErrDeleteUnsupported) {
		t.Errorf("Delete on a store without Deleter = %v, want ErrDeleteUnsupported", err)
	}
}
