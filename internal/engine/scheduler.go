// Scheduling: one pass over the waiting runs starts what may start and moves queue positions.

package engine

import (
	"fmt"
	"slices"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// insertWaiting adds rs to the waiting list in creation order. Caller holds e.mu.
func (e *Engine) insertWaiting(rs *runState) {
	i, _ := slices.BinarySearchFunc(e.waiting, rs.order, func(w *runState, o int64) int {
		switch {
		case w.order < o:
			return -1
		case w.order > o:
			return 1
		}
		return 0
	})
	e.waiting = slices.Insert(e.waiting, i, rs)
}

func (e *Engine) removeWaiting(rs *runState) {
	e.waiting = slices.DeleteFunc(e.waiting, func(w *runState) bool { return w == rs })
}

// Queue positions are events in each queued run's log, so a run that ends
// rewrites the position of every run queued behind it. The first
// livePositions of a tenant's queue count down on every change (what a person
// watching waits for); runs further back learn their new position at most
// every deepPositionEvery, and beyond farPositions only once its place has
// halved. So a queue of thousands of short runs does not cost thousands of
// writes per finished run, nor per second: a run at place p hears about
// log2(p/farPositions) updates before it reaches farPositions, whatever the
// rate the queue drains at. (With "a tenth" instead of "half", every run up
// to place ten times the drain rate per second was due every second: the
// writes per finished run grew with the depth of the queue.)
const (
	livePositions     = 10
	deepPositionEvery = time.Second
	farPositions      = 100
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
	return e.queuePass(func(rs *runState) (string, bool) {
		key, excl := rs.exclusiveKey()
		var holder *runState
		if excl {
			holder = e.exclusive[key]
		}
		limit := e.cfg.TenantLimit(rs.tenant)
		if holder == nil && (limit <= 0 || e.running[rs.tenant] < limit) {
			if err := e.start(rs); err == nil {
				return "", true
			} else {
				e.cfg.Logger.Error("starting run", "run", rs.id, "err", err)
			}
		}
		if holder != nil {
			return holder.id, false
		}
		return "", false
	})
}

// queuePass walks the waiting runs oldest first. start decides each: it
// starts the run (or leaves it to a claim) and returns true, or returns
// false and the run holding its exclusive environment, if that is what it
// waits for. A run that does not start is queued with its position, or
// blocked after block_after. Caller holds e.mu.
func (e *Engine) queuePass(start func(rs *runState) (holder string, started bool)) time.Time {
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
		holder, started := start(rs)
		if started {
			continue
		}
		if holder != "" {
			if rs.exSince.IsZero() {
				rs.exSince = now
			}
			if rs.exHolder != holder {
				rs.exHolder = holder
				_ = e.commit(rs, api.Event{Type: api.EventLog, Message: fmt.Sprintf(
					"waiting for environment %s: it is exclusive and run %s is using it", rs.req.Environment.Name, holder)})
			}
			blockAfter := e.cfg.BlockAfter
			if rs.req.BlockAfter > 0 {
				blockAfter = rs.req.BlockAfter.D()
			}
			if deadline := rs.exSince.Add(blockAfter); !now.Before(deadline) {
				reason := fmt.Sprintf("environment %s is exclusive and run %s was using it for %s; re-run when it finishes or raise block_after",
					rs.req.Environment.Name, holder, blockAfter)
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
		case position != p && p > livePositions && (now.Before(rs.posAt.Add(deepPositionEvery)) || farBehind(p, position)):
			// Deep in a long queue: say the new position with the next round of
			// updates, not on every run that ends (see deepPositionEvery).
			if due := rs.posAt.Add(deepPositionEvery); now.Before(due) && !farBehind(p, position) && (next.IsZero() || due.Before(next)) {
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

// farBehind: a run at position p, told position before, is beyond
// farPositions and its place has not halved since (see farPositions).
func farBehind(p, before int) bool {
	return p > farPositions && p < before && p*2 > before
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
	if e.active[rs.id] == rs {
		// (With a Cluster store this replica may have taken the run over
		// again under a new lease: that run state is not this one's to drop.)
		delete(e.active, rs.id)
	}
	rs.cancel(nil)
	rs.markReleased()
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
