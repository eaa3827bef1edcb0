package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/zof-ai/zof-ci/api"
)

// target is one member with the case and variant it executes.
type target struct {
	member  string
	c       *api.Case
	variant api.Variant
}

// targets lists the members in api.NewRun's order.
func targets(req *api.RunRequest) []target {
	n := 0
	for i := range req.Cases {
		n += max(1, len(req.Cases[i].Variants))
	}
	ts := make([]target, 0, n)
	for i := range req.Cases {
		c := &req.Cases[i]
		vs := c.Variants
		if len(vs) == 0 {
			vs = []api.Variant{{}}
		}
		for _, v := range vs {
			ts = append(ts, target{member: api.MemberID(c.ID, v.Name), c: c, variant: v})
		}
	}
	return ts
}

// units groups the members into what may run in parallel: each member alone,
// except the members of an ordered (sequential) set, which form one unit run
// in the set's order (each case's variants in order). A unit takes the place
// of its first member in declaration order. A case in several sequential sets
// belongs to the first.
func units(req *api.RunRequest, ts []target) [][]target {
	if !slices.ContainsFunc(req.Sets, func(s api.Set) bool { return s.Sequential }) {
		// No ordered set: each member is a unit of its own.
		out := make([][]target, len(ts))
		for i := range ts {
			out[i] = ts[i : i+1 : i+1]
		}
		return out
	}
	byCase := map[string][]target{}
	for _, t := range ts {
		byCase[t.c.ID] = append(byCase[t.c.ID], t)
	}
	chainOf := map[string]int{} // case id → index into chains
	var chains [][]target
	for _, s := range req.Sets {
		if !s.Sequential {
			continue
		}
		var chain []target
		for _, id := range s.Cases {
			if _, taken := chainOf[id]; taken {
				continue
			}
			chainOf[id] = len(chains)
			chain = append(chain, byCase[id]...)
		}
		chains = append(chains, chain)
	}
	var out [][]target
	emitted := map[int]bool{}
	for _, t := range ts {
		ci, inChain := chainOf[t.c.ID]
		switch {
		case !inChain:
			out = append(out, []target{t})
		case !emitted[ci]:
			emitted[ci] = true
			out = append(out, chains[ci])
		}
	}
	return out
}

// pendingUnits are the units of the members still to finish, in order; for
// a resumed run the finished members are left out (each unit keeps its order).
func (rs *runState) pendingUnits() [][]target {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	us := units(rs.req, targets(rs.req))
	out := us[:0]
	for _, u := range us {
		pending := func(t target) bool {
			i, ok := rs.index[t.member]
			return ok && !rs.snap.Members[i].Status.Terminal()
		}
		if !slices.ContainsFunc(u, func(t target) bool { return !pending(t) }) {
			out = append(out, u) // the whole unit (a new run: every unit)
			continue
		}
		var left []target
		for _, t := range u {
			if pending(t) {
				left = append(left, t)
			}
		}
		if len(left) > 0 {
			out = append(out, left)
		}
	}
	return out
}

// execute runs a running run to its end: serve, members, stop, verdict.
func (e *Engine) execute(ctx context.Context, rs *runState) {
	defer e.retire(rs)
	env := rs.req.Environment
	us := rs.pendingUnits()
	if rs.resumed && len(us) == 0 {
		// Every member had finished before the restart: only the verdict is missing.
		e.finish(ctx, rs)
		return
	}
	var svc Service
	if env.Serve != nil {
		e.record(rs, api.Event{Type: api.EventRunSubstate, Substate: api.SubstateStarting})
		var err error
		svc, err = e.startService(ctx, env)
		if err != nil {
			if ctx.Err() == nil {
				// The why (exit status, the service's last output) is said once, in
				// the run's log; every member only points at it.
				e.record(rs, api.Event{Type: api.EventLog, Message: err.Error()})
				e.failAll(rs, fmt.Sprintf("not run: the service of environment %s did not start (the run's log says why)", env.Name))
			}
			e.finish(ctx, rs)
			return
		}
		e.record(rs, api.Event{Type: api.EventRunSubstate, Substate: api.SubstateNone})
	}
	e.runMembers(ctx, rs, us)
	if svc != nil {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.ServiceStopTimeout)
		if err := svc.Stop(stopCtx); err != nil {
			e.record(rs, api.Event{Type: api.EventLog, Message: fmt.Sprintf(
				"environment %s: serve did not stop cleanly: %v; check for leftover processes", env.Name, err)})
		}
		cancel()
	}
	e.finish(ctx, rs)
}

func (e *Engine) startService(ctx context.Context, env api.Environment) (Service, error) {
	if e.cfg.Services == nil {
		return nil, fmt.Errorf("environment %s has a serve command but this engine cannot start services", env.Name)
	}
	svc, err := e.cfg.Services.Start(ctx, *env.Serve, env.URL)
	if err != nil {
		return nil, fmt.Errorf("environment %s: serve failed to start: %w; check serve.command and serve.ready", env.Name, err)
	}
	return svc, nil
}

// record commits events whose loss is logged but cannot stop the run. A
// run frozen by a stop records nothing, by design: that is not logged.
func (e *Engine) record(rs *runState, evs ...api.Event) {
	if err := e.commit(rs, evs...); err != nil && !errors.Is(err, errFrozen) {
		e.cfg.Logger.Error("recording run events", "run", rs.id, "err", err)
	}
}

// failAll fails every unfinished member of a run that could not execute at
// all: each goes running (as a new attempt) then failed (initial cannot
// become failed), its steps skipped.
func (e *Engine) failAll(rs *runState, reason string) {
	snap := rs.snapshot()
	var evs []api.Event
	for _, m := range snap.Members {
		if m.Status.Terminal() {
			continue
		}
		attempt := m.Attempt + 1
		evs = append(evs, api.Event{Type: api.EventMemberStatus, Member: m.ID, Status: api.StatusRunning, Attempt: attempt})
		for j := range m.Steps {
			evs = append(evs, api.Event{Type: api.EventStepStatus, Member: m.ID, Step: j + 1, StepStatus: api.StepSkipped})
		}
		evs = append(evs, api.Event{Type: api.EventMemberStatus, Member: m.ID, Status: api.StatusFailed, Attempt: attempt, Reason: reason})
	}
	e.record(rs, evs...)
}

// finish cancels the members that never started and ends the run with the
// aggregate of its members.
func (e *Engine) finish(ctx context.Context, rs *runState) {
	cancelled := ctx.Err() != nil
	var reason string
	if cancelled {
		reason = e.cancelReason(rs)
	}
	var evs []api.Event
	// The members are read in place under the run's lock: no copy of the
	// whole run.
	rs.mu.Lock()
	members := rs.snap.Members
	statuses := make([]api.Status, len(members))
	failed := 0
	firstFailure := ""
	for i := range members {
		m := &members[i]
		statuses[i] = m.Status
		if !m.Status.Terminal() {
			r := reason
			if r == "" {
				r = "not run"
			}
			evs = append(evs, api.Event{Type: api.EventMemberStatus, Member: m.ID, Status: api.StatusCancelled, Reason: r})
			statuses[i] = api.StatusCancelled
		}
		if m.Status == api.StatusFailed {
			failed++
			if firstFailure == "" {
				firstFailure = m.ID + ": " + m.Reason
			}
		}
	}
	rs.mu.Unlock()
	agg := api.Aggregate(statuses)
	switch {
	case agg == api.StatusFailed && cancelled:
		reason = fmt.Sprintf("%s; %d of %d members had failed (first: %s)", reason, failed, len(statuses), firstFailure)
	case agg == api.StatusFailed:
		reason = fmt.Sprintf("%d of %d members failed (first: %s)", failed, len(statuses), firstFailure)
	case agg == api.StatusCancelled && reason == "":
		reason = "members were cancelled"
	case agg == api.StatusPassed:
		reason = ""
	}
	evs = append(evs, api.Event{Type: api.EventRunStatus, Status: agg, Reason: reason})
	e.record(rs, evs...)
}

// runMembers executes the units' members, at most MaxParallel at once,
// units in declaration order. When ctx ends no further member starts.
func (e *Engine) runMembers(ctx context.Context, rs *runState, us [][]target) {
	var waits []api.Event
	for _, u := range us {
		for _, t := range u[min(1, len(u)):] {
			if m, _ := rs.member(t.member); m.Substate != api.SubstateWaitingForPreceding {
				waits = append(waits, api.Event{Type: api.EventMemberSubstate, Member: t.member, Substate: api.SubstateWaitingForPreceding})
			}
		}
	}
	e.record(rs, waits...)

	limit := rs.req.MaxParallel
	if limit <= 0 {
		limit = e.cfg.MaxParallel
	}
	// limit workers take the units in order (a counter, no hand-over): a
	// goroutine per worker, not per member, and each keeps one step
	// goroutine (stepWorker) for its steps.
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(limit, len(us)) {
		wg.Go(func() {
			var w stepWorker
			defer w.close()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(us) {
					return
				}
				for _, t := range us[i] {
					if ctx.Err() != nil {
						break
					}
					e.runMember(ctx, rs, t, &w)
				}
			}
		})
	}
	wg.Wait()
}

// runMember runs one member's attempts: a failed attempt is retried up to
// the case's Retries (the member stays running, with the next Attempt); a
// pass after a failure is flaky. A member a restart found running (resumed
// run) continues with its next attempt: after a failed attempt as a retry,
// after an interrupted one from its first step, the interruption counting
// neither as a failure nor against Retries.
func (e *Engine) runMember(ctx context.Context, rs *runState, t target, w *stepWorker) {
	mv, _ := rs.member(t.member) // t comes from the run's own request
	m := &mv
	attempt := m.Attempt + 1
	failures := rs.failures(m)
	var evs []api.Event
	if m.Status == api.StatusRunning {
		if st, why := attemptOutcome(m); st == api.StatusFailed {
			// resumeRunning settled the other outcomes: this one has retries left.
			failures++
			evs = append(evs, api.Event{Type: api.EventLog, Member: t.member, Message: fmt.Sprintf("attempt %d failed: %s; retrying (retry %d of %d)", m.Attempt, why, failures, t.c.Retries)})
		} else {
			evs = append(interruptedSteps(m, "interrupted: the run engine restarted during this step"),
				api.Event{Type: api.EventLog, Member: t.member, Message: fmt.Sprintf("%sattempt %d is run again from its first step as attempt %d", interruptedPrefix, m.Attempt, attempt)})
		}
	}
	// The member's status events share a commit with its steps' events: the
	// start with the first step's, the end with the last step's (one commit
	// before the step runs and one after, for a one-step member).
	// Room for the first step's start too, which RunAttempt adds.
	start := append(make([]api.Event, 0, len(evs)+2), evs...)
	start = append(start, api.Event{Type: api.EventMemberStatus, Member: t.member, Status: api.StatusRunning, Attempt: attempt})
	pool := e.remotePool(rs)
	for {
		var status api.Status
		var why, lost string
		var last []api.Event
		if pool != "" {
			status, why, last, lost = e.remoteAttempt(ctx, rs, t, pool, attempt, start)
		} else {
			status, why, last = e.runAttempt(ctx, rs, t, w, start)
		}
		start = nil
		if lost != "" && ctx.Err() == nil {
			// The agent died with the attempt: it runs again elsewhere, counting
			// neither as a retry nor as flaky (docs/agents.md).
			attempt++
			start = append(last,
				api.Event{Type: api.EventLog, Member: t.member, Message: fmt.Sprintf("%s%s; the attempt runs again on another agent as attempt %d", lostPrefix, lost, attempt)},
				api.Event{Type: api.EventMemberStatus, Member: t.member, Status: api.StatusRunning, Attempt: attempt})
			continue
		}
		if lost != "" {
			status, why = api.StatusCancelled, lost
		}
		switch {
		case status == api.StatusPassed:
			e.record(rs, append(last, api.Event{Type: api.EventMemberStatus, Member: t.member, Status: api.StatusPassed, Attempt: attempt, Flaky: failures > 0})...)
			return
		case status == api.StatusCancelled:
			reason := why
			if ctx.Err() != nil {
				reason = e.cancelReason(rs)
			}
			e.record(rs, append(last, api.Event{Type: api.EventMemberStatus, Member: t.member, Status: api.StatusCancelled, Attempt: attempt, Reason: reason})...)
			return
		case failures < t.c.Retries && ctx.Err() == nil:
			failures++
			attempt++
			start = append(last,
				api.Event{Type: api.EventLog, Member: t.member, Message: fmt.Sprintf("attempt %d failed: %s; retrying (retry %d of %d)", attempt-1, why, failures, t.c.Retries)},
				api.Event{Type: api.EventMemberStatus, Member: t.member, Status: api.StatusRunning, Attempt: attempt})
		default:
			e.record(rs, append(last, api.Event{Type: api.EventMemberStatus, Member: t.member, Status: api.StatusFailed, Attempt: attempt, Reason: why})...)
			return
		}
	}
}

// runAttempt runs one attempt of a local member (RunAttempt, attempt.go),
// recording each step's start in the run as it goes.
func (e *Engine) runAttempt(ctx context.Context, rs *runState, t target, w *stepWorker, first []api.Event) (status api.Status, why string, last []api.Event) {
	env := rs.req.Environment
	in := StepInput{
		BaseURL: env.URL,
		Headers: env.Headers,
		Dir:     e.cfg.Dir,
		Env:     e.cfg.Env,
		Mask:    rs.mask,
	}
	if e.cfg.URLPolicy != nil {
		in.AllowURL = e.cfg.URLPolicy(rs.tenant)
	}
	return RunAttempt(ctx, Attempt{
		Member:      t.member,
		Case:        t.c,
		Variant:     t.variant,
		Input:       in,
		Steps:       e.cfg.Steps,
		CancelGrace: e.cfg.CancelGrace,
		worker:      w,
		sink:        w.memberSink(e, rs, t.member),
	}, first)
}

// memberSink records one member's attempts in its run: an Attempt's Record
// and Failed, kept in the member's worker instead of two closures per
// attempt.
type memberSink struct {
	e      *Engine
	rs     *runState
	member string
}

var _ attemptSink = (*memberSink)(nil)

// memberSink points w's sink at member of rs.
func (w *stepWorker) memberSink(e *Engine, rs *runState, member string) *memberSink {
	w.sink = memberSink{e: e, rs: rs, member: member}
	return &w.sink
}

func (s *memberSink) record(evs []api.Event) { s.e.record(s.rs, evs...) }

func (s *memberSink) failed(step int, out StepOutput) {
	s.e.keepEvidence(s.rs, s.member, step, out.Evidence)
}
