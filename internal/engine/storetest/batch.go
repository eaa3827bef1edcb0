package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

// position is a queue-position event for run id, continuing snap's log.
func position(t *testing.T, snap *api.Run, p int) (*api.Run, api.Event) {
	t.Helper()
	next := snap.Clone()
	ev := api.Event{Seq: snap.LastSeq + 1, At: T0, Type: api.EventRunSubstate, RunID: snap.ID, Substate: api.SubstateQueuePosition, Position: p}
	if err := next.Apply(ev); err != nil {
		t.Fatal(err)
	}
	return next, ev
}

// testAppendBatch: a store that can append to many runs at once does it all or
// nothing, and a batch reads back exactly like separate appends.
func testAppendBatch(t *testing.T, s engine.Store) {
	ba, ok := s.(engine.BatchAppender)
	if !ok {
		t.Skip("the store has no AppendBatch (an optional capability)")
	}
	ctx := context.Background()
	var batch []engine.Append
	for i, id := range []string{"q1", "q2", "q3"} {
		rec := Create(t, s, "t1", id)
		next, ev := position(t, rec.Run, i+1)
		batch = append(batch, AppendOf(id, next, []api.Event{ev}))
	}
	if err := ba.AppendBatch(ctx, batch); err != nil {
		t.Fatalf("AppendBatch: %v", err)
	}
	for i, id := range []string{"q1", "q2", "q3"} {
		rec, err := s.GetRun(ctx, "t1", id)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Run.LastSeq != 2 || rec.Run.Position != i+1 {
			t.Errorf("%s: seq %d position %d, want 2 and %d", id, rec.Run.LastSeq, rec.Run.Position, i+1)
		}
		evs, err := s.Events(ctx, id, 1, 10)
		if err != nil || len(evs) != 1 || evs[0].Position != i+1 {
			t.Errorf("%s: events after 1 = %+v, %v", id, evs, err)
		}
	}

	// The second append is stale (its log moved on): nothing of the batch is stored.
	r1, _ := s.GetRun(ctx, "t1", "q1")
	good, gev := position(t, r1.Run, 7)
	stale, sev := position(t, batch[1].Run, 8) // built on seq 2 again, as q2 already is
	stale.LastSeq, sev.Seq = 2, 2
	err := ba.AppendBatch(ctx, []engine.Append{AppendOf("q1", good, []api.Event{gev}), AppendOf("q2", stale, []api.Event{sev})})
	if !errors.Is(err, engine.ErrSeqConflict) {
		t.Fatalf("stale batch: err = %v, want ErrSeqConflict", err)
	}
	if rec, _ := s.GetRun(ctx, "t1", "q1"); rec.Run.LastSeq != 2 || rec.Run.Position != 1 {
		t.Errorf("q1 changed by a refused batch: seq %d position %d", rec.Run.LastSeq, rec.Run.Position)
	}
}
