package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/secret"
)

// errRunClosed: an append to a run whose terminal event is already stored.
var errRunClosed = errors.New("the run is finished; its event log is closed")

// errFrozen: an append to a run the engine left for its next start to resume
// (it stopped with LeaveQueuedOnStop). Nothing more is recorded, so the store
// holds the run exactly as a crash at that moment would have left it.
var errFrozen = fmt.Errorf("the run is left for the next start to resume: %w", ErrStopped)

// commit appends events to the run's log. It masks their text, stamps seq,
// time and run id, checks every event against the lifecycle by folding it into
// a copy of the snapshot (checkedApply), stores the batch and the new snapshot
// in one Store.Append, and only then publishes them. A refused batch changes
// nothing anywhere.
func (e *Engine) commit(rs *runState, evs ...api.Event) error {
	if len(evs) == 0 {
		return nil
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.done {
		return errRunClosed
	}
	if rs.frozen {
		return errFrozen
	}
	next := rs.snap.Clone()
	now := e.cfg.Now()
	terminal := false
	for i := range evs {
		ev := &evs[i]
		ev.Seq = next.LastSeq + 1
		ev.At = now
		ev.RunID = rs.id
		maskEvent(rs.mask, ev)
		if err := checkedApply(next, *ev); err != nil {
			return fmt.Errorf("run %s: %w", rs.id, err)
		}
		terminal = terminal || (ev.Type == api.EventRunStatus && ev.Status.Terminal())
	}
	// Store writes are not tied to any caller's context: an event that
	// happened must be recorded even while the engine is shutting down.
	if err := e.cfg.Store.Append(context.Background(), rs.id, next, evs); err != nil {
		return fmt.Errorf("storing events of run %s: %w", rs.id, err)
	}
	rs.snap = next
	rs.publish(evs)
	if terminal {
		rs.done = true
		rs.closeSubs(nil)
	}
	return nil
}

// freeze stops all recording for rs and ends its subscriptions with
// ErrStopped (their readers resume against the next start).
func (rs *runState) freeze() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.done {
		return
	}
	rs.frozen = true
	rs.closeSubs(ErrStopped)
}

// maskEvent masks every free text of an event with the run's secrets.
func maskEvent(m *secret.Masker, ev *api.Event) {
	ev.Reason = m.String(ev.Reason)
	ev.Message = m.String(ev.Message)
	ev.Output = m.String(ev.Output)
	if f := ev.Failure; f != nil {
		ev.Failure = &api.Failure{Message: m.String(f.Message), Expected: m.String(f.Expected), Actual: m.String(f.Actual)}
	}
}

// transition is the one gate every status change of a run or member passes:
// only the lifecycle graph's edges (api.CanTransition) are allowed, so a
// status never changes to itself nor leaves a terminal status.
func transition(from, to api.Status) error {
	if !api.CanTransition(from, to) {
		return &api.TransitionError{From: from, To: to}
	}
	return nil
}

// checkedApply folds ev into snap after checking the rules Apply does not
// enforce: statuses change only along transition; a member runs only while
// the run runs and keeps running across retries (a new Attempt); steps change
// only in a running member; a run ends only when every member has, with the
// aggregate of its members when it ran; nothing follows the run's end.
func checkedApply(snap *api.Run, ev api.Event) error {
	if snap.LastSeq > 0 && snap.Status.Terminal() {
		return errRunClosed
	}
	switch ev.Type {
	case api.EventRunCreated:
		if snap.LastSeq != 0 {
			return errors.New("run.created after the start of the log")
		}
	case api.EventRunStatus:
		if err := transition(snap.Status, ev.Status); err != nil {
			return err
		}
		if ev.Status.Terminal() {
			statuses := make([]api.Status, len(snap.Members))
			for i, m := range snap.Members {
				if !m.Status.Terminal() {
					return fmt.Errorf("run cannot become %s while member %s is %s", ev.Status, m.ID, m.Status)
				}
				statuses[i] = m.Status
			}
			if agg := api.Aggregate(statuses); snap.Status == api.StatusRunning && ev.Status != agg {
				return fmt.Errorf("run cannot become %s: its members make it %s", ev.Status, agg)
			}
		}
	case api.EventMemberStatus, api.EventMemberSubstate, api.EventStepStatus:
		m := snap.Member(ev.Member)
		if m == nil {
			return fmt.Errorf("unknown member %q", ev.Member)
		}
		switch ev.Type {
		case api.EventMemberStatus:
			retry := m.Status == api.StatusRunning && ev.Status == api.StatusRunning && ev.Attempt > m.Attempt
			if !retry {
				if err := transition(m.Status, ev.Status); err != nil {
					return fmt.Errorf("member %s: %w", m.ID, err)
				}
			}
			if ev.Status == api.StatusRunning && snap.Status != api.StatusRunning {
				return fmt.Errorf("member %s cannot run while the run is %s", m.ID, snap.Status)
			}
		case api.EventMemberSubstate:
			if m.Status.Terminal() {
				return fmt.Errorf("member %s is %s; it has no substate", m.ID, m.Status)
			}
		case api.EventStepStatus:
			if m.Status != api.StatusRunning {
				return fmt.Errorf("member %s is %s; its steps cannot change", m.ID, m.Status)
			}
		}
	}
	return snap.Apply(ev)
}
