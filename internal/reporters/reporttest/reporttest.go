// Package reporttest builds realistic run results for reporter tests: an
// api.RunRequest, then api.NewRun and Apply of events with pinned timestamps
// (from 2026-01-02T03:04:05Z), so golden files are stable.
package reporttest

import (
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
)

// T0 is when every built run is created.
var T0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Now is the pinned clock for reporters (Options.Now): ten minutes after T0.
func Now() time.Time { return T0.Add(10 * time.Minute) }

// RunID is the id of every built run.
const RunID = "r-0001"

// Builder appends events to a run's log and folds them into its snapshot,
// failing the test on any event Apply refuses.
type Builder struct {
	tb     testing.TB
	Run    *api.Run
	Events []api.Event
	at     time.Time
}

// NewBuilder starts a run from req with its run.created event at T0.
func NewBuilder(tb testing.TB, req *api.RunRequest) *Builder {
	tb.Helper()
	b := &Builder{tb: tb, Run: &api.Run{}, at: T0}
	initial := api.NewRun(RunID, req, T0)
	initial.URL = "https://zof.example.test/runs/" + RunID
	b.Emit(api.Event{Type: api.EventRunCreated, Run: initial})
	return b
}

// After moves the builder's clock forward.
func (b *Builder) After(d time.Duration) *Builder {
	b.at = b.at.Add(d)
	return b
}

// Emit stamps e with the next seq, the clock and the run id, and applies it.
func (b *Builder) Emit(e api.Event) *Builder {
	b.tb.Helper()
	e.Seq = int64(len(b.Events) + 1)
	e.At = b.at
	e.RunID = RunID
	if err := b.Run.Apply(e); err != nil {
		b.tb.Fatalf("reporttest: apply %s: %v", e.Type, err)
	}
	b.Events = append(b.Events, e)
	return b
}

// RunStatus changes the run's status.
func (b *Builder) RunStatus(s api.Status, reason string) *Builder {
	b.tb.Helper()
	return b.Emit(api.Event{Type: api.EventRunStatus, Status: s, Reason: reason})
}

// RunSubstate changes the run's substate (and queue position).
func (b *Builder) RunSubstate(s api.Substate, position int) *Builder {
	b.tb.Helper()
	return b.Emit(api.Event{Type: api.EventRunSubstate, Substate: s, Position: position})
}

// Member changes a member's status on the given attempt (0: unchanged).
func (b *Builder) Member(id string, s api.Status, attempt int, reason string) *Builder {
	b.tb.Helper()
	return b.Emit(api.Event{Type: api.EventMemberStatus, Member: id, Status: s, Attempt: attempt, Reason: reason})
}

// MemberSubstate changes a member's substate.
func (b *Builder) MemberSubstate(id string, s api.Substate) *Builder {
	b.tb.Helper()
	return b.Emit(api.Event{Type: api.EventMemberSubstate, Member: id, Substate: s})
}

// Step changes the status of a member's step n (1-based).
func (b *Builder) Step(id string, n int, s api.StepStatus, d time.Duration, output string, f *api.Failure) *Builder {
	b.tb.Helper()
	return b.Emit(api.Event{Type: api.EventStepStatus, Member: id, Step: n, StepStatus: s, Duration: api.Duration(d), Output: output, Failure: f})
}

// Log appends a log line (member may be empty).
func (b *Builder) Log(member string, step int, msg string) *Builder {
	b.tb.Helper()
	return b.Emit(api.Event{Type: api.EventLog, Member: member, Step: step, Message: msg})
}

// Pass runs a member through every step to passed, each step taking d.
func (b *Builder) Pass(id string, d time.Duration) *Builder {
	b.tb.Helper()
	b.Member(id, api.StatusRunning, 1, "")
	m := b.Run.Member(id)
	if m == nil {
		b.tb.Fatalf("reporttest: no member %s", id)
	}
	for i := range m.Steps {
		b.Step(id, i+1, api.StepRunning, 0, "", nil)
		b.After(d)
		b.Step(id, i+1, api.StepPassed, d, "", nil)
	}
	return b.Member(id, api.StatusPassed, 0, "")
}

// Result is the report.Result of the run as built so far, decided as kind.
func (b *Builder) Result(kind gate.Kind, verdict string, notices ...string) *report.Result {
	return &report.Result{Run: b.Run.Clone(), Events: append([]api.Event(nil), b.Events...), Gate: kind, Exit: Exits[kind], Verdict: verdict, Notices: notices}
}

// Exits are the exit codes the CLI states in reports for the gate's decisions
// that have one code (README's exit-code table); the reporters' fixtures use
// them. internal/exitcode's tests check that they agree with its table.
var Exits = map[gate.Kind]report.Exit{
	gate.Passed:      {Code: 0, Name: "ok"},
	gate.Failed:      {Code: 1, Name: "failed"},
	gate.Blocked:     {Code: 2, Name: "blocked"},
	gate.Cancelled:   {Code: 3, Name: "cancelled"},
	gate.TimedOut:    {Code: 4, Name: "timeout"},
	gate.Empty:       {Code: 5, Name: "empty"},
	gate.Interrupted: {Code: 130, Name: "interrupted"},
}
