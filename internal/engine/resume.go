// Resuming after a restart what a previous process left unfinished.

package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/zof-ai/zof-ci/api"
)

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
			case ev.Member != "" && (strings.HasPrefix(ev.Message, interruptedPrefix) || strings.HasPrefix(ev.Message, lostPrefix)):
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
