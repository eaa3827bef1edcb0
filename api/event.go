package api

import (
	"strconv"
	"time"
)

// EventType names what changed. The SSE stream uses it as the `event:` field.
type EventType string

// Event types of a run's log.
const (
	// EventRunCreated carries the whole initial snapshot in Run; it is always seq 1.
	EventRunCreated EventType = "run.created"
	// EventRunStatus: Status (and Reason for cancelled/blocked/failed runs).
	EventRunStatus EventType = "run.status"
	// EventRunSubstate: Substate and, for queue_position, Position.
	EventRunSubstate EventType = "run.substate"
	// EventMemberStatus: Member, Status, Attempt, Flaky, Reason.
	EventMemberStatus EventType = "member.status"
	// EventMemberSubstate: Member, Substate.
	EventMemberSubstate EventType = "member.substate"
	// EventStepStatus: Member, Step (1-based), Status, Duration, Failure, Output.
	EventStepStatus EventType = "step.status"
	// EventLog: a line of text for a person (Member and Step optional).
	EventLog EventType = "log"
)

// Event is one entry of a run's log. Seq is strictly increasing per run from 1.
type Event struct {
	Seq        int64      `json:"seq"`
	At         time.Time  `json:"at"`
	Type       EventType  `json:"type"`
	RunID      string     `json:"run_id"`
	Run        *Run       `json:"run,omitempty"`
	Member     string     `json:"member,omitempty"`
	Step       int        `json:"step,omitempty"`
	Attempt    int        `json:"attempt,omitempty"`
	Status     Status     `json:"status,omitempty"`
	StepStatus StepStatus `json:"step_status,omitempty"`
	Substate   Substate   `json:"substate,omitempty"`
	Position   int        `json:"position,omitempty"`
	Reason     string     `json:"reason,omitempty"`
	Flaky      bool       `json:"flaky,omitempty"`
	Duration   Duration   `json:"duration,omitempty"`
	Failure    *Failure   `json:"failure,omitempty"`
	Output     string     `json:"output,omitempty"`
	Message    string     `json:"message,omitempty"`
}

// Apply folds one event into the snapshot. Events must come in seq order; an
// event at or below LastSeq is a duplicate and is ignored (so a resumed stream
// that repeats an event is harmless).
func (r *Run) Apply(e Event) error {
	if e.Seq <= r.LastSeq {
		return nil
	}
	if e.Seq != r.LastSeq+1 {
		return &ApplyError{e.Seq, "out of order: expected seq " + strconv.FormatInt(r.LastSeq+1, 10)}
	}
	switch e.Type {
	case EventRunCreated:
		if e.Run == nil {
			return &ApplyError{e.Seq, "run.created without a run"}
		}
		*r = *e.Run.Clone()
	case EventRunStatus:
		if r.Status != e.Status && !CanTransition(r.Status, e.Status) {
			return &ApplyError{e.Seq, (&TransitionError{r.Status, e.Status}).Error()}
		}
		r.Status = e.Status
		if e.Reason != "" {
			r.Reason = e.Reason
		}
		if e.Status == StatusRunning && r.StartedAt.IsZero() {
			r.StartedAt = e.At
		}
		if e.Status.Terminal() {
			r.FinishedAt = e.At
			r.Substate, r.Position = SubstateNone, 0
		} else if e.Status == StatusRunning {
			r.Substate, r.Position = SubstateNone, 0
		}
	case EventRunSubstate:
		r.Substate, r.Position = e.Substate, e.Position
	case EventMemberStatus:
		m := r.Member(e.Member)
		if m == nil {
			return &ApplyError{e.Seq, "unknown member " + e.Member}
		}
		if e.Attempt > m.Attempt && m.Attempt > 0 {
			// A retry: keep the failure, start the steps over.
			m.FailedAttempts = append(m.FailedAttempts, firstFailure(m))
			for i := range m.Steps {
				m.Steps[i] = StepResult{Name: m.Steps[i].Name, Kind: m.Steps[i].Kind, Line: m.Steps[i].Line, Status: StepPending}
			}
		}
		if e.Attempt > 0 {
			m.Attempt = e.Attempt
		}
		if m.Status != e.Status && !CanTransition(m.Status, e.Status) {
			return &ApplyError{e.Seq, "member " + m.ID + ": " + (&TransitionError{m.Status, e.Status}).Error()}
		}
		m.Status = e.Status
		m.Flaky = m.Flaky || e.Flaky
		if e.Reason != "" {
			m.Reason = e.Reason
		}
		if e.Status == StatusRunning {
			m.Substate = SubstateNone
			if m.StartedAt.IsZero() {
				m.StartedAt = e.At
			}
		}
		if e.Status.Terminal() {
			m.FinishedAt = e.At
			m.Substate = SubstateNone
		}
	case EventMemberSubstate:
		m := r.Member(e.Member)
		if m == nil {
			return &ApplyError{e.Seq, "unknown member " + e.Member}
		}
		m.Substate = e.Substate
	case EventStepStatus:
		m := r.Member(e.Member)
		if m == nil {
			return &ApplyError{e.Seq, "unknown member " + e.Member}
		}
		if e.Step < 1 || e.Step > len(m.Steps) {
			return &ApplyError{e.Seq, "member " + m.ID + " has no step " + strconv.Itoa(e.Step)}
		}
		s := &m.Steps[e.Step-1]
		s.Status = e.StepStatus
		if e.Duration != 0 {
			s.Duration = e.Duration
		}
		if e.Failure != nil {
			s.Failure = e.Failure
		}
		if e.Output != "" {
			s.Output = e.Output
		}
	case EventLog:
		// Logs change nothing in the snapshot; reporters read them from the log.
	default:
		// Unknown types come from newer servers; skip them, keep the order.
	}
	r.LastSeq = e.Seq
	return nil
}

func firstFailure(m *Member) string {
	for _, s := range m.Steps {
		if s.Status == StepFailed && s.Failure != nil {
			return s.Name + ": " + s.Failure.Message
		}
	}
	for _, s := range m.Steps {
		// A new attempt after a cancelled step: the engine restarted under it.
		if s.Status == StepCancelled {
			return "attempt " + strconv.Itoa(m.Attempt) + " was interrupted at " + s.Name
		}
	}
	return "attempt " + strconv.Itoa(m.Attempt) + " failed"
}
