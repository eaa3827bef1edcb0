package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// Attempt is one attempt of one member, apart from any run's state: the
// engine runs its local members' attempts with it, and `zof agent` the
// attempts it leases (docs/agents.md), so both keep the same captures,
// timeouts and skipped steps.
type Attempt struct {
	Member  string
	Case    *api.Case
	Variant api.Variant
	// Input is every step's input except Vars (the variant's) and Captures
	// (the earlier steps'), which the attempt sets.
	Input StepInput
	Steps StepRunner
	// CancelGrace is how long a step may take to return after its context
	// ends before it is abandoned (0: DefaultCancelGrace).
	CancelGrace time.Duration
	// Record commits events as the attempt goes: each step's start, with the
	// previous step's end (and, the first time, the events RunAttempt was
	// given). It may block; the step starts once it returns.
	Record func(evs ...api.Event)
	// Failed, when set, is given each failed step's output (1-based step)
	// before its events are recorded: the engine keeps its evidence.
	Failed func(step int, out StepOutput)
	// worker, when set, runs the steps (the engine's members); nil: each
	// step on a goroutine of its own.
	worker *stepWorker
	// sink, when set, takes the place of Record and Failed: the engine's
	// members record through their worker's sink, no closure per attempt.
	sink attemptSink
}

// attemptSink is Record and Failed as an interface, for the engine's own
// attempts: a worker's one memberSink serves each of its members in turn.
type attemptSink interface {
	record(evs []api.Event)
	failed(step int, out StepOutput)
}

// record commits evs through the sink or Record.
func (a *Attempt) record(evs []api.Event) {
	if a.sink != nil {
		a.sink.record(evs)
		return
	}
	a.Record(evs...)
}

// timeoutCause is the cause of a context ended by a case or step timeout.
type timeoutCause struct {
	step bool
	d    time.Duration
}

func (t *timeoutCause) Error() string {
	if t.step {
		return fmt.Sprintf("timed out after %s (the step's timeout); raise `timeout:` on the step or find what is slow", t.d)
	}
	return fmt.Sprintf("timed out: the case timeout of %s ran out during this step; raise the case's `timeout:` or find what is slow", t.d)
}

// RunAttempt runs a member's steps in order with captures flowing forward.
// The first step that does not pass ends the attempt; the steps after it are
// skipped. It returns passed, failed or cancelled (ctx ended), for a failure
// a line naming the failing step, and the attempt's last events, not yet
// recorded: the caller commits them with the member's status. A step's end
// shares a commit with the next step's start, so a member of n steps costs
// n+1 commits (two for one step) where each event on its own would be 2n+2.
// first are events to commit with the first step's start (the member's
// running status).
func RunAttempt(ctx context.Context, a Attempt, first []api.Event) (status api.Status, why string, last []api.Event) {
	grace := a.CancelGrace
	if grace <= 0 {
		grace = DefaultCancelGrace
	}
	caseCtx := ctx
	if d := a.Case.Timeout.D(); d > 0 {
		var cancel context.CancelFunc
		caseCtx, cancel = context.WithTimeoutCause(ctx, d, &timeoutCause{d: d})
		defer cancel()
	}
	var captures map[string]string // made by the first capture
	for i, s := range a.Case.Steps {
		var ev api.Event
		switch {
		case ctx.Err() != nil:
			// Cancelled between steps: nothing is in flight.
			return api.StatusCancelled, "cancelled", append(first, a.skipped(i)...)
		case caseCtx.Err() != nil:
			// The case deadline passed between steps: this step is the one it stopped.
			ev = api.Event{StepStatus: api.StepFailed, Failure: &api.Failure{Message: context.Cause(caseCtx).Error()}}
		default:
			a.record(append(first, api.Event{Type: api.EventStepStatus, Member: a.Member, Step: i + 1, StepStatus: api.StepRunning}))
			first = nil
			in := a.Input
			in.Vars = a.Variant.Vars
			in.Captures = maps.Clone(captures)
			out := runStep(ctx, caseCtx, a.worker, a.Steps, grace, s, in)
			if out.Status == api.StepFailed {
				switch {
				case a.sink != nil:
					a.sink.failed(i+1, out)
				case a.Failed != nil:
					a.Failed(i+1, out)
				}
			}
			ev = api.Event{StepStatus: out.Status, Failure: out.Failure, Output: out.Output, Duration: api.Duration(out.Duration)}
			if out.Status == api.StepPassed && len(out.Captures) > 0 {
				if captures == nil {
					captures = make(map[string]string, len(out.Captures))
				}
				maps.Copy(captures, out.Captures)
			}
		}
		ev.Type, ev.Member, ev.Step = api.EventStepStatus, a.Member, i+1
		if ev.StepStatus == api.StepPassed {
			// Committed with the next step's start, or with the member's end
			// (room for either).
			if first == nil {
				first = make([]api.Event, 0, 2)
			}
			first = append(first, ev)
			continue
		}
		last = append(append(first, ev), a.skipped(i+1)...)
		if ev.StepStatus == api.StepCancelled {
			return api.StatusCancelled, fmt.Sprintf("step %d (%s) was cancelled", i+1, s.Title()), last
		}
		msg := "failed"
		if ev.Failure != nil {
			msg = ev.Failure.Message
		}
		return api.StatusFailed, fmt.Sprintf("step %d (%s): %s", i+1, s.Title(), msg), last
	}
	return api.StatusPassed, "", first
}

// skipped marks the steps from index `from` on as skipped.
func (a *Attempt) skipped(from int) []api.Event {
	var evs []api.Event
	for j := from; j < len(a.Case.Steps); j++ {
		evs = append(evs, api.Event{Type: api.EventStepStatus, Member: a.Member, Step: j + 1, StepStatus: api.StepSkipped})
	}
	return evs
}

// runStep runs one step under its timeout and decides its status: a step
// stopped by the run's cancellation is cancelled; one stopped by a case or
// step timeout is failed with a message naming the timeout; a step that does
// not return within grace of its context ending is abandoned. It runs on w
// (nil: a goroutine of its own).
func runStep(runCtx, caseCtx context.Context, w *stepWorker, steps StepRunner, grace time.Duration, s api.Step, in StepInput) StepOutput {
	stepCtx := caseCtx
	if d := s.Timeout.D(); d > 0 {
		var cancel context.CancelFunc
		stepCtx, cancel = context.WithTimeoutCause(caseCtx, d, &timeoutCause{step: true, d: d})
		defer cancel()
	}
	start := time.Now()
	if w == nil {
		w = new(stepWorker)
		defer w.close()
	}
	ch := w.start(stepJob{ctx: stepCtx, steps: steps, s: s, in: in})
	var out StepOutput
	select {
	case out = <-ch:
	case <-stepCtx.Done():
		timer := time.NewTimer(grace)
		select {
		case out = <-ch:
		case <-timer.C:
			w.abandon()
			out = StepOutput{Status: api.StepCancelled, Failure: &api.Failure{
				Message: fmt.Sprintf("the step did not stop within %s of being told to; it was abandoned", grace)}}
		}
		timer.Stop()
	}
	if out.Duration == 0 {
		out.Duration = time.Since(start)
	}
	var tc *timeoutCause
	if out.Status != api.StepPassed && runCtx.Err() == nil && stepCtx.Err() != nil {
		tc = timeoutOf(stepCtx)
	}
	switch {
	case out.Status == api.StepPassed:
	case runCtx.Err() != nil:
		out.Status = api.StepCancelled
	case tc != nil:
		if out.Status != api.StepFailed || out.Failure == nil {
			out.Failure = &api.Failure{Message: tc.Error()}
		}
		out.Status = api.StepFailed
	case out.Status == api.StepFailed, out.Status == api.StepCancelled:
	default:
		out.Failure = &api.Failure{Message: fmt.Sprintf("the step runner returned status %q; this is a bug in zof, please report it", out.Status)}
		out.Status = api.StepFailed
	}
	return out
}

// timeoutOf is the case or step timeout that ended ctx, or nil. A function
// of its own so that only a step that ended this way allocates the target
// errors.As needs.
func timeoutOf(ctx context.Context) *timeoutCause {
	var tc *timeoutCause
	if errors.As(context.Cause(ctx), &tc) {
		return tc
	}
	return nil
}

// stepWorker runs steps one at a time on a goroutine of its own, so that a
// step that ignores its cancellation can be abandoned, and keeps that
// goroutine for the next step: one goroutine per engine worker instead of
// one per step, whose stack grows anew through the http client each time.
// The zero value is ready; close it when done.
type stepWorker struct {
	jobs chan stepJob
	out  chan StepOutput
	// sink records the attempts of the member the worker runs now.
	sink memberSink
}

type stepJob struct {
	ctx   context.Context
	steps StepRunner
	s     api.Step
	in    StepInput
}

// start hands j to the worker's goroutine (started on first use); its
// output arrives on the channel returned.
func (w *stepWorker) start(j stepJob) <-chan StepOutput {
	if w.jobs == nil {
		w.jobs, w.out = make(chan stepJob), make(chan StepOutput, 1)
		go serveSteps(w.jobs, w.out)
	}
	w.jobs <- j
	return w.out
}

// abandon leaves the step in flight to finish alone: its goroutine ends
// after it, and the next step starts another.
func (w *stepWorker) abandon() { w.close() }

// close ends the worker's goroutine once its step (if any) returns.
func (w *stepWorker) close() {
	if w.jobs != nil {
		close(w.jobs)
		w.jobs, w.out = nil, nil
	}
}

// serveSteps runs each job and sends its output to out (buffered: an
// abandoned step's output is dropped there).
func serveSteps(jobs <-chan stepJob, out chan<- StepOutput) {
	for j := range jobs {
		out <- runGuarded(j)
	}
}

// runGuarded runs one step, turning a panic of the step runner into a failed step.
func runGuarded(j stepJob) (out StepOutput) {
	defer func() {
		if r := recover(); r != nil {
			out = StepOutput{Status: api.StepFailed, Failure: &api.Failure{Message: fmt.Sprintf("internal error in the step runner: %v (please report this)", r)}}
		}
	}()
	return j.steps.Run(j.ctx, j.s, j.in)
}
