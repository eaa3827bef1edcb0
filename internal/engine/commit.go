package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/secret"
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
	p, err := e.prepare(rs, evs)
	if err != nil {
		return err
	}
	// Store writes are not tied to any caller's context: an event that
	// happened must be recorded even while the engine is shutting down.
	if err := e.cfg.Store.Append(context.Background(), rs.id, p.next, p.evs); err != nil {
		return fmt.Errorf("storing events of run %s: %w", rs.id, err)
	}
	p.install(e)
	return nil
}

// prepared is a commit checked and folded but not yet stored. Caller holds rs.mu.
type prepared struct {
	rs       *runState
	base     int64 // the log's last seq the events follow
	next     *api.Run
	evs      []api.Event
	terminal bool
}

// prepare stamps, masks and checks evs against a copy of rs's snapshot.
// Caller holds rs.mu.
func (e *Engine) prepare(rs *runState, evs []api.Event) (*prepared, error) {
	if rs.done {
		return nil, errRunClosed
	}
	if rs.frozen {
		return nil, errFrozen
	}
	p := &prepared{rs: rs, base: rs.snap.LastSeq, next: rs.snap.Clone(), evs: evs}
	now := e.cfg.Now()
	for i := range evs {
		ev := &evs[i]
		ev.Seq = p.next.LastSeq + 1
		ev.At = now
		ev.RunID = rs.id
		maskEvent(rs.mask, ev)
		if err := checkedApply(p.next, *ev); err != nil {
			return nil, fmt.Errorf("run %s: %w", rs.id, err)
		}
		p.terminal = p.terminal || (ev.Type == api.EventRunStatus && ev.Status.Terminal())
	}
	return p, nil
}

// install makes a stored commit the run's snapshot and publishes its events.
// Caller holds rs.mu.
func (p *prepared) install(e *Engine) {
	rs := p.rs
	rs.snap = p.next
	rs.publish(p.evs)
	for _, fn := range e.observers {
		fn(rs.tenant, p.next, p.evs)
	}
	if p.terminal {
		rs.done = true
		rs.closeSubs(nil)
	}
}

// runEvents are events for one run, for commitAll.
type runEvents struct {
	rs  *runState
	evs []api.Event
}

// commitAll commits events of several runs. When the store can append to many
// runs at once (BatchAppender) it is one store operation: a finished run moves
// the queue position of every queued run of its tenant, and one transaction
// for a thousand queued runs instead of a thousand keeps the scheduler (and
// every Create waiting on it) fast. Otherwise, or if the batch is refused, each
// run is committed on its own. Errors are logged: a queue position is not
// worth failing the pass over.
func (e *Engine) commitAll(items []runEvents) {
	ba, ok := e.cfg.Store.(BatchAppender)
	if !ok || len(items) < 2 {
		e.commitEach(items)
		return
	}
	var (
		ps      []*prepared
		batch   []Append
		pending []runEvents // items to retry one by one if the batch fails
	)
	for _, it := range items {
		it.rs.mu.Lock()
		p, err := e.prepare(it.rs, slices.Clone(it.evs))
		it.rs.mu.Unlock()
		if err != nil {
			e.cfg.Logger.Error("queueing run", "run", it.rs.id, "err", err)
			continue
		}
		ps = append(ps, p)
		batch = append(batch, Append{RunID: it.rs.id, Snapshot: p.next, Events: p.evs})
		pending = append(pending, it)
	}
	if err := ba.AppendBatch(context.Background(), batch); err != nil {
		e.cfg.Logger.Warn("appending to queued runs in one batch failed; one by one instead", "runs", len(batch), "err", err)
		e.commitEach(pending)
		return
	}
	for _, p := range ps {
		p.rs.mu.Lock()
		if p.rs.snap.LastSeq == p.base {
			p.install(e)
		} else {
			// Only the scheduler (holding e.mu) appends to waiting runs, so this
			// cannot happen; if it did, the store refused the later append.
			e.cfg.Logger.Error("a queued run changed during a batch append", "run", p.rs.id)
		}
		p.rs.mu.Unlock()
	}
}

func (e *Engine) commitEach(items []runEvents) {
	for _, it := range items {
		if err := e.commit(it.rs, it.evs...); err != nil {
			e.cfg.Logger.Error("queueing run", "run", it.rs.id, "err", err)
		}
	}
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
