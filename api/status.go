// Package api holds the wire types shared by the engine, `zof serve`, its client and the
// reporters: run definitions, run snapshots, events and statuses (docs/lifecycle.md, api.md).
package api

import "fmt"

// Status is one of the seven run (and member) statuses of docs/lifecycle.md.
type Status string

// The seven statuses, as they appear on the wire.
const (
	StatusInitial   Status = "initial"
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusPassed    Status = "passed"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
	StatusBlocked   Status = "blocked"
)

// Statuses lists every status in lifecycle order.
var Statuses = []Status{StatusInitial, StatusQueued, StatusRunning, StatusPassed, StatusFailed, StatusCancelled, StatusBlocked}

// Valid reports whether s is one of the seven statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusInitial, StatusQueued, StatusRunning, StatusPassed, StatusFailed, StatusCancelled, StatusBlocked:
		return true
	}
	return false
}

// Terminal reports whether s never changes again.
func (s Status) Terminal() bool {
	switch s {
	case StatusPassed, StatusFailed, StatusCancelled, StatusBlocked:
		return true
	}
	return false
}

// Display is the name a person sees ("Failed (Blocked)").
func (s Status) Display() string {
	switch s {
	case StatusInitial:
		return "Initial"
	case StatusQueued:
		return "Queued"
	case StatusRunning:
		return "Running"
	case StatusPassed:
		return "Passed"
	case StatusFailed:
		return "Failed"
	case StatusCancelled:
		return "Cancelled"
	case StatusBlocked:
		return "Failed (Blocked)"
	}
	return string(s)
}

// transitions is the whole allowed graph; anything not listed is refused.
var transitions = map[Status][]Status{
	StatusInitial: {StatusQueued, StatusRunning, StatusCancelled, StatusBlocked},
	StatusQueued:  {StatusRunning, StatusCancelled, StatusBlocked},
	StatusRunning: {StatusPassed, StatusFailed, StatusCancelled},
}

// CanTransition reports whether a run or member may go from one status to another.
func CanTransition(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// TransitionError is returned when a change of status is not in the lifecycle graph.
type TransitionError struct {
	From, To Status
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("status %s cannot change to %s", e.From, e.To)
}

// Substate is what a non-terminal run or member is doing while it waits.
type Substate string

// The substates of docs/lifecycle.md.
const (
	SubstateNone                Substate = ""
	SubstateQueued              Substate = "queued"
	SubstateQueuePosition       Substate = "queue_position"
	SubstateWaitingForPreceding Substate = "waiting_for_preceding"
	SubstateAnalysing           Substate = "analysing"
	SubstateStarting            Substate = "starting"
)

// Display is the text a person sees; position is used by queue_position.
func (s Substate) Display(position int) string {
	switch s {
	case SubstateQueued:
		return "Execution queued"
	case SubstateQueuePosition:
		return fmt.Sprintf("In queue (position %d)", position)
	case SubstateWaitingForPreceding:
		return "Waiting for preceding tests"
	case SubstateAnalysing:
		return "Analysing test steps"
	case SubstateStarting:
		return "Starting"
	}
	return string(s)
}

// StepStatus is the status of one step of one attempt of a member.
type StepStatus string

// Step statuses. Steps never run are pending; steps after a failing one are skipped.
const (
	StepPending   StepStatus = "pending"
	StepRunning   StepStatus = "running"
	StepPassed    StepStatus = "passed"
	StepFailed    StepStatus = "failed"
	StepSkipped   StepStatus = "skipped"
	StepCancelled StepStatus = "cancelled"
)

// Terminal reports whether the step has finished.
func (s StepStatus) Terminal() bool {
	return s == StepPassed || s == StepFailed || s == StepSkipped || s == StepCancelled
}

// Aggregate is a parent's terminal status from its members' terminal statuses:
// failed if any failed (blocked counts as failed), else cancelled if any was, else passed.
func Aggregate(members []Status) Status {
	out := StatusPassed
	for _, s := range members {
		switch s {
		case StatusFailed, StatusBlocked:
			return StatusFailed
		case StatusCancelled:
			out = StatusCancelled
		}
	}
	return out
}
