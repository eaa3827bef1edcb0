// Cancelling runs, waiting or running.

package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/zof-ai/zof-ci/api"
)

const (
	reasonCancelled = "cancelled by request"
	reasonStopped   = "the run engine stopped (interrupted) before the run finished"
)

// Cancel cancels a non-terminal run. An initial or queued run is cancelled at
// once; a running run is told to stop and reaches cancelled within
// CancelWithin (follow it with Subscribe or Wait). The returned snapshot is
// the run as of the request. A terminal run gives a *StateError.
func (e *Engine) Cancel(ctx context.Context, tenant, id, reason string) (*api.Run, error) {
	if reason == "" {
		reason = reasonCancelled
	}
	e.mu.Lock()
	rs := e.active[id]
	if rs != nil && rs.tenant == tenant {
		err := e.cancelLocked(rs, reason)
		e.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return rs.snapshot(), nil
	}
	e.mu.Unlock()
	if e.cl != nil {
		return e.cancelStored(ctx, tenant, id, reason)
	}
	rec, err := e.getRecord(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if rec.Run.Status.Terminal() {
		return nil, &StateError{RunID: id, Status: rec.Run.Status, Op: "cancel"}
	}
	e.mu.Lock()
	stopped := e.stopped
	e.mu.Unlock()
	if stopped {
		return nil, ErrStopped
	}
	return nil, fmt.Errorf("run %s is %s but this engine has not loaded it yet (it resumes stored runs when it starts); retry in a moment", id, rec.Run.Status)
}

// cancelLocked cancels rs. Caller holds e.mu.
func (e *Engine) cancelLocked(rs *runState, reason string) error {
	st, _ := rs.status()
	switch {
	case st.Terminal():
		return &StateError{RunID: rs.id, Status: st, Op: "cancel"}
	case rs.cancel != nil: // running: the executor finishes the run
		if rs.cancelReason == "" {
			// Recorded, so that a restart before the run has stopped
			// finishes the cancel instead of resuming the run.
			switch err := e.commit(rs, cancelRequestEvent(reason)); {
			case errors.Is(err, errFrozen):
				return err
			case err != nil && !errors.Is(err, errRunClosed):
				e.cfg.Logger.Error("recording a cancel request", "run", rs.id, "err", err)
			}
			rs.cancelReason = reason
		}
		rs.cancel(errCancelled)
		return nil
	}
	e.removeWaiting(rs)
	err := e.endWaiting(rs, api.StatusCancelled, reason)
	e.kick() // queue positions move up
	return err
}

// errCancelled is the cause of a running run's context when it is cancelled.
var errCancelled = errors.New("run cancelled")

// endWaiting ends an initial or queued run as cancelled or blocked: its
// members first (a parent is non-terminal while a member is), then the run.
// Caller holds e.mu and has removed rs from e.waiting.
func (e *Engine) endWaiting(rs *runState, to api.Status, reason string) error {
	snap := rs.snapshot()
	var evs []api.Event
	for _, m := range snap.Members {
		if !m.Status.Terminal() {
			evs = append(evs, api.Event{Type: api.EventMemberStatus, Member: m.ID, Status: to, Reason: reason})
		}
	}
	evs = append(evs, api.Event{Type: api.EventRunStatus, Status: to, Reason: reason})
	err := e.commit(rs, evs...)
	if err != nil && !errors.Is(err, errFrozen) {
		e.cfg.Logger.Error("ending run", "run", rs.id, "status", to, "err", err)
	}
	delete(e.active, rs.id)
	rs.markReleased()
	return err
}
