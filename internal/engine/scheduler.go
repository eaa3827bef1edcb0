package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// Run schedules and executes runs until ctx ends. It first resumes what the
// store holds: initial and queued runs are queued again in creation order; a
// run left running by a previous process is resumed (finished members keep
// their results, unfinished ones run again from their first step as a new
// attempt), or, when a cancel had been requested, its cancel is finished.
// When ctx ends it stops every running run (in-flight steps cancelled,
// services stopped). Without Config.LeaveQueuedOnStop they and the initial
// and queued runs are recorded as cancelled; with it nothing more is recorded
// and the next Run on the store resumes them all. Run waits for that and
// returns nil. Run may be called once.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return errors.New("engine: Run called twice")
	}
	e.started = true
	e.baseCtx = ctx
	e.mu.Unlock()

	err := e.resume(ctx)
	e.resumedOnce.Do(func() { close(e.resumed) })
	if err != nil {
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
	// Under e.mu: a run a Create is still storing or registering is skipped
	// (e.creating); Create registers it.
	e.mu.Lock()
	defer e.mu.Unlock()
	recs, err := e.cfg.Store.NonTerminal(ctx)
	if err != nil {
		return fmt.Errorf("engine: loading unfinished runs from the store: %w", err)
	}
	for _, rec := range recs {
		if e.active[rec.Run.ID] != nil || e.creating[rec.Run.ID] {
			continue // created by this process before Run, or being created now
		}
		rs := newRunState(rec)
		switch rec.Run.Status {
		case api.StatusInitial, api.StatusQueued:
			e.active[rs.id] = rs
			e.insertWaiting(rs)
		case api.StatusRunning:
			facts, err := e.readLog(ctx, rs.id)
			if err != nil {
				return err
			}
			if facts.cancelRequested {
				e.cfg.Logger.Info("finishing the cancel of a run interrupted by a restart", "run", rs.id, "tenant", rs.tenant, "reason", facts.cancelReason)
				if err := e.commit(rs, interruptEvents(rs.snapshot(), facts.cancelReason)...); err != nil {
					e.cfg.Logger.Error("ending a run interrupted by a restart", "run", rs.id, "err", err)
				}
				continue
			}
			rs.interrupted = facts.interrupted
			e.resumeRunning(rs)
		}
	}
	return nil
}

// Log lines the engine reads back after a restart. cancelRequestPrefix
// starts the run-level line recording a cancel request (its Reason is the
// cancel's reason); interruptedPrefix the member's line that starts a new
// attempt after a restart cut the previous one short.
const (
	cancelRequestPrefix = "cancel requested: "
	interruptedPrefix   = "interrupted by a restart of the run engine: "
)

func cancelRequestEvent(reason string) api.Event {
	return api.Event{Type: api.EventLog, Reason: reason,
		Message: cancelRequestPrefix + reason + "; the run stops at its next safe checkpoint"}
}

// logFacts are what a run's log tells beyond its snapshot.
type logFacts struct {
	cancelRequested bool
	cancelReason    string
	// interrupted counts each member's attempts cut short by a restart: they
	// are in Member.FailedAttempts but were not failures.
	interrupted map[string]int
}

// readLog reads an unfinished run's log for the facts a resume needs.
func (e *Engine) readLog(ctx context.Context, id string) (logFacts, error) {
	f := logFacts{interrupted: map[string]int{}}
	var after int64
	for {
		evs, err := e.cfg.Store.Events(ctx, id, after, eventPage)
		if err != nil {
			return f, fmt.Errorf("engine: reading the log of unfinished run %s: %w", id, err)
		}
		for _, ev := range evs {
			switch {
			case ev.Type != api.EventLog:
			case ev.Member == "" && ev.Reason != "" && strings.HasPrefix(ev.Message, cancelRequestPrefix):
				if !f.cancelRequested {
					f.cancelRequested, f.cancelReason = true, ev.Reason
				}
			case ev.Member != "" && strings.HasPrefix(ev.Message, interruptedPrefix):
				f.interrupted[ev.Member]++
			}
		}
		if len(evs) < eventPage {
			return f, nil
		}
		after = evs[len(evs)-1].Seq
	}
}

// resumeRunning continues a run a previous process was executing. Members
// whose interrupted attempt had already completed get the status it earned;
// the others run again from their first step as their next attempt (see
// runMember). The environment's serve is started again. Caller holds e.mu.
func (e *Engine) resumeRunning(rs *runState) {
	snap := rs.snapshot()
	kept, rerun := 0, 0
	var settle []api.Event
	for _, t := range targets(rs.req) {
		var m *api.Member
		if i, ok := rs.index[t.member]; ok {
			m = &snap.Members[i]
		}
		switch {
		case m == nil || m.Status.Terminal():
			kept++
			continue
		case m.Status != api.StatusRunning:
			rerun++ // not started yet
			continue
		}
		switch st, why := attemptOutcome(m); {
		case st == api.StatusPassed:
			settle = append(settle, api.Event{Type: api.EventMemberStatus, Member: m.ID, Status: api.StatusPassed, Attempt: m.Attempt, Flaky: rs.failures(m) > 0})
			kept++
		case st == api.StatusFailed && rs.failures(m)+1 > t.c.Retries:
			settle = append(settle, api.Event{Type: api.EventMemberStatus, Member: m.ID, Status: api.StatusFailed, Attempt: m.Attempt, Reason: why})
			kept++
		default:
			rerun++
		}
	}
	e.cfg.Logger.Info("resuming a run interrupted by a restart", "run", rs.id, "tenant", rs.tenant,
		"members_rerun", rerun, "members_kept", kept)
	msg := fmt.Sprintf("the run engine restarted while this run was executing; resuming it: %d of %d members run from their first step, %d that had finished keep their results",
		rerun, len(snap.Members), kept)
	if rs.req.Environment.Serve != nil && rerun > 0 {
		msg += "; the environment's serve is started again"
	}
	if err := e.commit(rs, append(settle, api.Event{Type: api.EventLog, Message: msg})...); err != nil {
		e.cfg.Logger.Error("resuming run", "run", rs.id, "err", err)
	}
	rs.resumed = true
	ctx, cancel := e.runContext()
	rs.cancel = cancel
	e.active[rs.id] = rs
	e.running[rs.tenant]++
	if key, excl := rs.exclusiveKey(); excl {
		e.exclusive[key] = rs
	}
	e.wg.Add(1)
	go e.execute(ctx, rs)
}

// attemptOutcome tells how the latest attempt of a member that was running
// when its process died had gone: passed when every step had passed, failed
// (with the line runAttempt would give) when a step had failed, "" when it
// was still under way.
func attemptOutcome(m *api.Member) (api.Status, string) {
	for i, s := range m.Steps {
		switch s.Status {
		case api.StepPassed:
		case api.StepFailed:
			msg := "failed"
			if s.Failure != nil {
				msg = s.Failure.Message
			}
			return api.StatusFailed, fmt.Sprintf("step %d (%s): %s", i+1, s.Name, msg)
		default:
			return "", ""
		}
	}
	return api.StatusPassed, ""
}

// interruptEvents end a running run whose executor is gone and whose cancel
// had been requested: the in-flight steps are cancelled, the steps that never
// ran skipped, unfinished members cancelled, and the run takes its members'
// aggregate, with the cancel's reason.
func interruptEvents(snap *api.Run, reason string) []api.Event {
	var evs []api.Event
	statuses := make([]api.Status, len(snap.Members))
	for i, m := range snap.Members {
		statuses[i] = m.Status
		if m.Status.Terminal() {
			continue
		}
		if m.Status == api.StatusRunning {
			evs = append(evs, interruptedSteps(&m, "cancelled")...)
		}
		evs = append(evs, api.Event{Type: api.EventMemberStatus, Member: m.ID, Status: api.StatusCancelled, Attempt: m.Attempt, Reason: reason})
		statuses[i] = api.StatusCancelled
	}
	return append(evs, api.Event{Type: api.EventRunStatus, Status: api.Aggregate(statuses), Reason: reason})
}

// interruptedSteps close the steps of an attempt its process did not finish:
// the one in flight is cancelled with why, those not reached are skipped.
func interruptedSteps(m *api.Member, why string) []api.Event {
	var evs []api.Event
	for j, s := range m.Steps {
		switch s.Status {
		case api.StepRunning:
			evs = append(evs, api.Event{Type: api.EventStepStatus, Member: m.ID, Step: j + 1, StepStatus: api.StepCancelled, Failure: &api.Failure{Message: why}})
		case api.StepPending:
			evs = append(evs, api.Event{Type: api.EventStepStatus, Member: m.ID, Step: j + 1, StepStatus: api.StepSkipped})
		}
	}
	return evs
}

// Queue positions are events in each queued run's log, so a run that ends
// rewrites the position of every run queued behind it. The first
// livePositions of a tenant's queue count down on every change (what a person
// watching waits for); runs further back learn their new position at most
// every deepPositionEvery, so a queue of thousands of short runs does not cost
// thousands of writes per finished run.
const (
	livePositions     = 10
	deepPositionEvery = time.Second
)

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
	var queued []runEvents // position changes, committed together at the end
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
		switch {
		case status == api.StatusInitial:
			evs = append(evs, api.Event{Type: api.EventRunSubstate, Substate: api.SubstateQueuePosition, Position: p})
			rs.posAt = now
		case position != p && p > livePositions && now.Before(rs.posAt.Add(deepPositionEvery)):
			// Deep in a long queue: say the new position with the next round of
			// updates, not on every run that ends (see deepPositionEvery).
			if due := rs.posAt.Add(deepPositionEvery); next.IsZero() || due.Before(next) {
				next = due
			}
		case position != p:
			evs = append(evs, api.Event{Type: api.EventRunSubstate, Substate: api.SubstateQueuePosition, Position: p})
			rs.posAt = now
		}
		if len(evs) > 0 {
			queued = append(queued, runEvents{rs: rs, evs: evs})
		}
		kept = append(kept, rs)
	}
	e.commitAll(queued)
	e.waiting = kept
	return next
}

// start makes rs running and launches its executor. Caller holds e.mu.
func (e *Engine) start(rs *runState) error {
	ctx, cancel := e.runContext()
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

// runContext is the context of one run's execution. It does not end with
// Run's context: shutdown ends each run's context itself, after deciding how
// the run is left (cancelled, or frozen for the next start), so no executor
// records anything before that decision.
func (e *Engine) runContext() (context.Context, context.CancelCauseFunc) {
	return context.WithCancelCause(context.WithoutCancel(e.baseCtx))
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
		switch {
		case e.cfg.LeaveQueuedOnStop:
			// Left as a crash would leave it, for the next start to resume;
			// the executor still stops the steps and the service.
			rs.freeze()
			if rs.cancel != nil {
				rs.cancel(errCancelled)
			}
		case rs.cancel != nil:
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
