// Deleting finished runs.

package engine

import (
	"context"
	"errors"
	"fmt"
)

// Deleter is an optional Store capability: remove a finished run. The store
// deletes the run of tenant with its members, event log, stored definition
// and idempotency keys in one atomic operation, and only when the run's
// stored status is terminal (checked in the same operation, so a run cannot
// become active between the check and the delete). Test health history rows
// of the run are kept: they are the record the selection and health reports
// read, and pruned by date only. A run of another tenant, or none, wraps
// ErrNotFound; a non-terminal run wraps ErrNotTerminal.
type Deleter interface {
	DeleteRun(ctx context.Context, tenant, id string) error
}

// Delete errors, matched with errors.Is.
var (
	// ErrNotTerminal: DeleteRun of a run that is initial, queued or running.
	ErrNotTerminal = errors.New("the run has not finished")
	// ErrDeleteUnsupported: the store cannot delete runs.
	ErrDeleteUnsupported = errors.New("this run store cannot delete runs")
)

// Delete removes a terminal run of tenant for good (Deleter describes what
// goes and what stays). Errors: *NotFoundError for a missing run or one of
// another tenant, *StateError (Op "delete") for a run that has not finished,
// ErrDeleteUnsupported when the store has no Deleter.
func (e *Engine) Delete(ctx context.Context, tenant, id string) error {
	d, ok := e.cfg.Store.(Deleter)
	if !ok {
		return ErrDeleteUnsupported
	}
	e.mu.Lock()
	rs := e.active[id]
	e.mu.Unlock()
	if rs != nil && rs.tenant == tenant {
		if !rs.finished() {
			st, _ := rs.status()
			return &StateError{RunID: id, Status: st, Op: "delete"}
		}
		// Its terminal status is stored and the engine is letting go of it
		// right now (a waiter may already have seen the end): wait for that,
		// so nothing the run still writes lands after the delete.
		select {
		case <-rs.released:
		case <-ctx.Done():
			return fmt.Errorf("deleting run %s: waiting for the engine to release the finished run: %w", id, context.Cause(ctx))
		}
	}
	err := d.DeleteRun(ctx, tenant, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return &NotFoundError{RunID: id}
	case errors.Is(err, ErrNotTerminal):
		rec, gerr := e.getRecord(ctx, tenant, id)
		if gerr != nil {
			return gerr
		}
		return &StateError{RunID: id, Status: rec.Run.Status, Op: "delete"}
	case err != nil:
		return fmt.Errorf("deleting run %s: %w", id, err)
	}
	return nil
}
