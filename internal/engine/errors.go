package engine

import (
	"errors"
	"fmt"
	"strings"

	"github.com/zof-ai/zof-ci/api"
)

// NotFoundError: the run does not exist for the caller's tenant (another
// tenant's run is reported the same way). errors.Is(err, ErrNotFound) holds.
type NotFoundError struct {
	RunID string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("run %s not found; check the run id (runs of other tenants are not visible)", e.RunID)
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// StateError: the operation does not apply to the run in its current status
// (cancel of a finished run, rerun of an unfinished one). The server maps it to 409.
type StateError struct {
	RunID  string
	Status api.Status
	Op     string // "cancel" or "rerun"
}

func (e *StateError) Error() string {
	switch e.Op {
	case "cancel":
		return fmt.Sprintf("run %s is already %s and cannot be cancelled; rerun it to execute it again", e.RunID, e.Status)
	case "rerun":
		return fmt.Sprintf("run %s is still %s; only a finished run can be rerun (cancel it first or wait for it)", e.RunID, e.Status)
	case "delete":
		return fmt.Sprintf("run %s is still %s; only a finished run can be deleted (cancel it first and wait for it to end)", e.RunID, e.Status)
	}
	return fmt.Sprintf("run %s is %s: %s is not possible", e.RunID, e.Status, e.Op)
}

// IdempotencyConflictError: the tenant's Idempotency-Key is held by a run
// created from a different request. The server maps it to 422.
type IdempotencyConflictError struct {
	Key   string
	RunID string
}

func (e *IdempotencyConflictError) Error() string {
	return fmt.Sprintf("idempotency key %q already belongs to run %s, created from a different request; send the same request again or use a new key", e.Key, e.RunID)
}

// ValidationError: the run request cannot be executed as given. The server maps it to 422.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	return "invalid run request: " + strings.Join(e.Problems, "; ")
}

// ErrDropped ends a Subscription whose reader fell too far behind; subscribe
// again with the last seq received to resume without losing events.
var ErrDropped = errors.New("subscriber fell too far behind and was dropped; subscribe again with the last seq received")

// ErrStopped: the engine's Run has returned; it creates no more runs.
var ErrStopped = errors.New("the run engine is stopped")
