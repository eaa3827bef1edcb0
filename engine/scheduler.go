package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// Run schedules and executes runs until ctx ends. It first resumes what the
// store holds (initial and queued runs are queued again in creation order; a
// run left running by a crash is ended as cancelled, since its service and
// steps died with the old process). When ctx ends it cancels every running
// run (their in-flight steps are cancelled and services stopped), cancels the
// initial and queued ones unless Config.LeaveQueuedOnStop, waits for all of
// that to be recorded and returns nil. Run may be called once.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return errors.New("engine: Run called twice")
	}
	e.started = true
	e.baseCtx = ctx
	e.mu.Unlock()

	if err := e.resume(ctx); err != nil {
		e.shutdown()
		return err
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		var tick <-chan time.Time
		if next := e.schedule(); !next.IsZero() {
			timer.Reset(max(next.Sub(e.cfg.Now()), time.Millisecond))
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			e.shutdown()
			return nil
		case <-e.wake:
		case <-tick:
		}
		timer.Stop()
	}
}

// resume loads the runs a previous process left unfinished.
func (e *Engine) resume(ctx context.Context) error {
	// Under e.mu: a Create that stored its run but has not registered it yet
	// finds it registered here and keeps this runState (see Create).
	e.mu.Lock()
	defer e.mu.Unlock()
	recs, err := e.cfg.Store.NonTerminal(ctx)
	if err != nil {
		return fmt.Errorf("engine: loading unfinished runs from the store: %w", err)
	}
	for _, rec := range recs {
		if e.active[rec.Run.ID] != nil {
			continue // created by this process before Run
		}
		rs := newRunState(rec)
		switch rec.Run.Status {
		case api.StatusInitial, api.StatusQueued:
			e.active[rs.id] = rs
			e.insertWaiting(rs)
		case api.StatusRunning:
			if err := e.commit(rs, interruptEvents(rs.snapshot())...); err != nil {
				e.cfg.Logger.Error("ending a run interrupted by a restart", "run", rs.id, "err", err)
			}
		}
	}
	return nil
}

const reasonRestarted = "interrupted: the run engine restarted while this run was executing; rerun it"

// interruptEvents end a running run whose executor is gone: the in-flight
// steps are cancelled, the steps that never ran skipped, unfinished members
// cancelled, and the run takes its members' aggregate.
func interruptEvents(snap *api.Run) []api.Event {
	var evs []api.Event
	statuses := make([]api.Status, len(snap.Members))
	for i, m := range snap.Members {
		statuses[i] = m.Status
		if m.Status.Terminal() {
			continue
		}
		if m.Status == api.StatusRunning {
			for j, s := range m.Steps {
				switch s.Status {
				case api.StepRunning:
					evs = append(evs, api.Event{Type: api.EventStepStatus, Member: m.ID, Step: j + 1, StepStatus: api.StepCancelled})
				case api.StepPending:
					evs = append(evs, api.Event{Type: api.EventStepStatus, Member: m.ID, Step: j + 1, StepStatus: api.StepSkipped})
				}
			}
		}
		evs = append(evs, api.Event{Type: api.EventMemberStatus, Member: m.ID, Status: api.StatusCancelled, Attempt: m.Attempt, Reason: reasonRestarted})
		statuses[i] = api.StatusCancelled
	}
	return append(evs, api.Event{Type: api.EventRunStatus, Status: api.Aggregate(statuses), Reason: reasonRestarted})
}

// schedule is one pass over the waiting runs, oldest first. A run starts when
// its tenant is under max_concurrent_runs and its environment, if exclusive,
// is free; otherwise it is queued with its position among the tenant's
// waiting runs. A run waiting for an exclusive environment does not hold back
// later runs that can start. It returns when the next block_after expires
// (zero: none pending).
func (e *Engine) schedule() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return time.Time{}
	}
	now := e.cfg.Now()
	var next time.Time
	pos := map[string]int{}
	kept := make([]*runState, 0, len(e.waiting))
	for _, rs := range e.waiting {
		status, position := rs.status()
		if status.Terminal() {
			continue
		}
		key, excl := rs.exclusiveKey()
		var holder *runState
		if excl {
			holder = e.exclusive[key]
		}
		limit := e.cfg.TenantLimit(rs.tenant)
		if holder == nil && (limit <= 0 || e.running[rs.tenant] < limit) {
			if err := e.start(rs); err == nil {
				continue
			} else {
				e.cfg.Logger.Error("starting run", "run", rs.id, "err", err)
			}
		}
		if holder != nil {
			if rs.exSince.IsZero() {
				rs.exSince = now
			}
			if rs.exHolder != holder.id {
				rs.exHolder = holder.id
				_ = e.commit(rs, api.Event{Type: api.EventLog, Message: fmt.Sprintf(
					"waiting for environment %s: it is exclusive and run %s is using it", rs.req.Environment.Name, holder.id)})
			}
			blockAfter := e.cfg.BlockAfter
			if rs.req.BlockAfter > 0 {
				blockAfter = rs.req.BlockAfter.D()
			}
			if deadline := rs.exSince.Add(blockAfter); !now.Before(deadline) {
				reason := fmt.Sprintf("environment %s is exclusive and run %s was using it for %s; re-run when it finishes or raise block_after",
					rs.req.Environment.Name, holder.id, blockAfter)
				_ = e.endWaiting(rs, api.StatusBlocked, reason)
				continue
			} else if next.IsZero() || deadline.Before(next) {
				next = deadline
			}
		} else {
			rs.exSince, rs.exHolder = time.Time{}, ""
		}
		pos[rs.tenant]++
		p := pos[rs.tenant]
		var evs []api.Event
		if status == api.StatusInitial {
			evs = append(evs, api.Event{Type: api.EventRunStatus, Status: api.StatusQueued})
		}
		if status == api.StatusInitial || position != p {
			evs = append(evs, api.Event{Type: api.EventRunSubstate, Substate: api.SubstateQueuePosition, Position: p})
		}
		if err := e.commit(rs, evs...); err != nil {
			e.cfg.Logger.Error("queueing run", "run", rs.id, "err", err)
		}
		kept = append(kept, rs)
	}
	e.waiting = kept
	return next
}

// start makes rs running and launches its executor. Caller holds e.mu.
func (e *Engine) start(rs *runState) error {
	ctx, cancel := context.WithCancelCause(e.baseCtx)
	if err := e.commit(rs, api.Event{Type: api.EventRunStatus, Status: api.StatusRunning}); err != nil {
		cancel(nil)
		return err
	}
	rs.cancel = cancel
	e.running[rs.tenant]++
	if key, excl := rs.exclusiveKey(); excl {
		e.exclusive[key] = rs
	}
	e.wg.Add(1)
	go e.execute(ctx, rs)
	return nil
}

// retire releases what a finished run held and lets the queue move.
func (e *Engine) retire(rs *runState) {
	e.mu.Lock()
	e.running[rs.tenant]--
	if e.running[rs.tenant] <= 0 {
		delete(e.running, rs.tenant)
	}
	if key, excl := rs.exclusiveKey(); excl && e.exclusive[key] == rs {
		delete(e.exclusive, key)
	}
	delete(e.active, rs.id)
	rs.cancel(nil)
	e.mu.Unlock()
	e.kick()
	e.wg.Done()
}

// cancelReason is why a running run's context ended.
func (e *Engine) cancelReason(rs *runState) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if rs.cancelReason != "" {
		return rs.cancelReason
	}
	return reasonStopped
}

func (e *Engine) shutdown() {
	e.mu.Lock()
	e.stopped = true
	for _, rs := range e.active {
		if rs.cancel != nil {
			if rs.cancelReason == "" {
				rs.cancelReason = reasonStopped
			}
			rs.cancel(errCancelled)
		}
	}
	if !e.cfg.LeaveQueuedOnStop {
		for _, rs := range e.waiting {
			if st, _ := rs.status(); !st.Terminal() {
				_ = e.endWaiting(rs, api.StatusCancelled, reasonStopped)
			}
		}
		e.waiting = nil
	}
	e.mu.Unlock()
	e.wg.Wait()
}
