package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/zof-ai/zof-ci/api"
)

// RemoteRunner executes the members of pool runs on endpoint agents
// (docs/agents.md). Run-level scheduling stays the engine's (FIFO per
// tenant, exclusive environments, cancel, rerun, resume); only a member's
// attempt runs elsewhere, so retries, flaky and the member's status events
// stay the engine's too. zof serve passes its fleet (package fleet).
type RemoteRunner interface {
	// Pool names the pool whose agents execute the run's members; "" runs
	// them here. It must give the same answer for the same run every time.
	Pool(tenant string, req *api.RunRequest) string
	// RunAttempt executes one attempt of a member on an agent of a.Pool and
	// returns when it ended. record commits step events (step_status and
	// log of a.Member only) as the agent reports them. When ctx ends the
	// attempt is stopped on the agent and its outcome is cancelled.
	RunAttempt(ctx context.Context, a RemoteAttempt, record func([]api.Event)) RemoteOutcome
}

// RemoteAttempt is one attempt of one member of a pool run.
type RemoteAttempt struct {
	Tenant  string
	Pool    string
	RunID   string
	Member  string
	Attempt int
	Case    *api.Case
	Variant api.Variant
	BaseURL string
	Headers map[string]string
	Secrets []string
	// Started, when set, is called when an agent takes the attempt, before
	// the agent hears of it: the engine records the member's running status
	// then, so a member waiting for an agent does not show as running (its
	// wait reason says what holds it). Calls after the attempt ended, and
	// every call but the first, do nothing.
	Started func()
}

// RemoteOutcome is how a remote attempt ended: Status passed, failed or
// cancelled with Why (for a failure, the line naming the failing step), and
// the step events not yet recorded (committed with the member's status).
// Lost, when set, says why the attempt was lost with its agent (lease
// expired): the engine runs it again as a new attempt that counts neither as
// a retry nor as flaky, and Status is ignored.
type RemoteOutcome struct {
	Status api.Status
	Why    string
	Events []api.Event
	Lost   string
	// Evidence is the failed step's evidence by step (from 1), kept as the
	// run's artifacts like a local step's (not for a lost attempt).
	Evidence map[int][]Evidence
}

// lostPrefix starts the member's log line of an attempt lost with its agent;
// resume counts these lines, like interruptedPrefix, as attempts that were
// not failures.
const lostPrefix = "lease lost: "

// remotePool is the pool executing rs's members, "" when local.
func (e *Engine) remotePool(rs *runState) string {
	if e.cfg.Remote == nil {
		return ""
	}
	return e.cfg.Remote.Pool(rs.tenant, rs.req)
}

// remoteAttempt runs one attempt of t on an agent of pool: first (the
// member's running status and what precedes it) is committed before the
// attempt is handed out. It returns like runAttempt, and for an attempt lost
// with its agent lost is the why.
func (e *Engine) remoteAttempt(ctx context.Context, rs *runState, t target, pool string, attempt int, first []api.Event) (status api.Status, why string, last []api.Event, lost string) {
	// first (the member's running status and what precedes it) is recorded
	// when an agent takes the attempt (Started), or with its outcome.
	var (
		startMu          sync.Mutex
		started, settled bool
	)
	start := func() {
		startMu.Lock()
		defer startMu.Unlock()
		if started || settled {
			return
		}
		started = true
		if len(first) > 0 {
			e.record(rs, first...)
		}
	}
	env := rs.req.Environment
	record := func(evs []api.Event) {
		start()
		if evs = memberStepEvents(t, evs); len(evs) > 0 {
			e.record(rs, evs...)
		}
	}
	out := e.cfg.Remote.RunAttempt(ctx, RemoteAttempt{
		Tenant: rs.tenant, Pool: pool, RunID: rs.id, Member: t.member, Attempt: attempt,
		Case: t.c, Variant: t.variant, BaseURL: env.URL, Headers: env.Headers, Secrets: rs.req.Secrets,
		Started: start,
	}, record)
	if out.Lost != "" || (out.Status != api.StatusCancelled && out.Status != "") {
		// An outcome from an agent: the attempt did start (a runner that
		// never calls Started included).
		start()
	}
	startMu.Lock()
	settled = true
	startMu.Unlock()
	last = memberStepEvents(t, out.Events)
	if out.Lost != "" {
		// What the agent was doing is cut short: its running step is
		// cancelled, the steps not reached skipped, for the new attempt.
		if len(last) > 0 {
			e.record(rs, last...)
		}
		m, _ := rs.member(t.member)
		return "", "", interruptedSteps(&m, "interrupted: "+out.Lost), out.Lost
	}
	for _, step := range slices.Sorted(maps.Keys(out.Evidence)) {
		if step >= 1 && step <= len(t.c.Steps) {
			e.keepEvidence(rs, t.member, step, out.Evidence[step])
		}
	}
	switch out.Status {
	case api.StatusPassed, api.StatusFailed, api.StatusCancelled:
	default:
		out.Status, out.Why = api.StatusFailed, fmt.Sprintf("the agent reported status %q; this is a bug in zof, please report it", out.Status)
	}
	if ctx.Err() != nil {
		out.Status = api.StatusCancelled
	}
	if out.Why == "" && out.Status != api.StatusPassed {
		out.Why = string(out.Status)
	}
	if out.Status == api.StatusCancelled {
		// An agent stopped mid-step may not have said so: its running step
		// is cancelled, the steps not reached skipped.
		if len(last) > 0 {
			e.record(rs, last...)
		}
		m, _ := rs.member(t.member)
		last = interruptedSteps(&m, "cancelled")
	}
	return out.Status, out.Why, last, ""
}

// memberStepEvents keeps the step_status and log events of t's member (the
// agent may report nothing else), with step numbers in range.
func memberStepEvents(t target, evs []api.Event) []api.Event {
	out := make([]api.Event, 0, len(evs))
	for _, ev := range evs {
		switch {
		case ev.Type == api.EventLog:
			out = append(out, api.Event{Type: api.EventLog, Member: t.member, Message: ev.Message})
		case ev.Type == api.EventStepStatus && ev.Step >= 1 && ev.Step <= len(t.c.Steps):
			out = append(out, api.Event{Type: api.EventStepStatus, Member: t.member, Step: ev.Step, StepStatus: ev.StepStatus,
				Failure: ev.Failure, Output: ev.Output, Duration: ev.Duration})
		}
	}
	return out
}
