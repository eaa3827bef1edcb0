package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/reporters/console"
)

// Following limits (docs/cli.md "Following a run", docs/lifecycle.md).
const (
	// StuckInitialAfter: a run still initial this long is a fault the client warns about.
	StuckInitialAfter = 2 * time.Minute
	// stopWait bounds how long the follower waits for the terminal status after it
	// cancelled an embedded run (interrupt or deadline). The engine stops a run within 2 s
	// (lifecycle.md); the rest is room for stopping the environment's service.
	stopWait = 15 * time.Second
	// remoteStopWait is the same for a remote run. GitHub Actions sends SIGTERM 7.5 s after
	// SIGINT and SIGKILL 2.5 s later when a job is cancelled; the reports must be written first.
	remoteStopWait = 5 * time.Second
	// resyncTimeout bounds reading a snapshot after an event that does not fit.
	resyncTimeout = 10 * time.Second
	// waitRepeat: a wait reason of the same kind whose message changed (a count moved) is
	// said again at most this often; a new kind of wait is said at once.
	waitRepeat = 30 * time.Second
)

// source is where a followed run's changes come from: the embedded engine or a server.
type source interface {
	// watch sends the run's changes after seq after to ch, in order, until the run is
	// terminal (then it returns nil), ctx ends, or following cannot go on (a typed
	// error: a revoked token, a run that is gone). Every send
	// must give up when ctx ends.
	watch(ctx context.Context, after int64, ch chan<- change) error
	// cancel asks for the run to be cancelled; a run already terminal is not an error.
	cancel(ctx context.Context, reason string) error
	// snapshot reads the run as it is now.
	snapshot(ctx context.Context) (*api.Run, error)
}

// change is one thing a source reports. Exactly one field is set.
type change struct {
	event  *api.Event      // the next event of the log
	snap   *api.Run        // a polled snapshot: it replaces the fold
	notice string          // something the person should know now
	wait   *api.WaitReason // what holds the run now (zero: nothing), from the server
	fault  error           // a transient failure: the service is not reachable right now
	ok     bool            // the service answered again
}

// followOptions say how to follow.
type followOptions struct {
	RunID   string
	URL     string
	Timeout time.Duration
	// Deadline is when the verdict is due (zero: now + Timeout).
	Deadline          time.Time
	CancelOnInterrupt bool
	// CancelOnTimeout cancels the run at the deadline; the embedded engine always does.
	CancelOnTimeout bool
	StopWait        time.Duration
	StuckAfter      time.Duration
	Now             func() time.Time
}

// followed is an Outcome plus the event log it was folded from.
type followed struct {
	gate.Outcome
	events []api.Event
}

// follow folds the run's changes into a snapshot, feeding the console live, until a
// terminal status, the deadline or an interrupt (ctx). It never returns before the source's
// goroutine has ended.
func follow(ctx context.Context, src source, con *console.Reporter, o followOptions) followed {
	out := followed{Outcome: gate.Outcome{Run: &api.Run{ID: o.RunID, URL: o.URL}, Timeout: o.Timeout}}
	now := func() time.Time {
		if o.Now != nil {
			return o.Now()
		}
		return time.Now()
	}
	deadline := o.Deadline
	if deadline.IsZero() {
		deadline = time.Now().Add(o.Timeout)
	}
	dl := time.NewTimer(time.Until(deadline))
	defer dl.Stop()
	stuckAfter := o.StuckAfter
	if stuckAfter <= 0 {
		stuckAfter = StuckInitialAfter
	}
	stuck := time.NewTimer(stuckAfter)
	defer stuck.Stop()

	wctx, stopWatch := context.WithCancel(context.Background())
	ch := make(chan change, 64)
	var watchErr error
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		watchErr = src.watch(wctx, 0, ch)
		close(ch)
	}()
	defer func() {
		stopWatch()
		for range ch { // let a source blocked on a send see the end
		}
		<-watchDone
	}()

	var (
		fault     error
		interrupt = ctx.Done()
		giveUp    <-chan time.Time
		cancelled bool
	)
	cancel := func(reason string) {
		cancelled = true
		wait := o.StopWait
		if wait <= 0 {
			wait = stopWait
		}
		giveUp = time.After(wait)
		cctx, done := context.WithTimeout(context.Background(), wait)
		go func() {
			defer done()
			if err := src.cancel(cctx, reason); err != nil {
				con.Notice(now(), "could not cancel run "+o.RunID+": "+err.Error())
			}
		}()
	}
	terminal := func() bool { return out.Run.LastSeq > 0 && out.Run.Status.Terminal() }
	var waits waitNotes

	for !terminal() {
		select {
		case c, ok := <-ch:
			if !ok {
				<-watchDone
				if watchErr != nil && !errors.Is(watchErr, context.Canceled) {
					out.Lost = watchErr
					con.Notice(now(), "lost run "+o.RunID+": "+watchErr.Error())
				} else if !terminal() {
					out.Lost = errors.New("the run's events ended before its terminal status")
					con.Notice(now(), "lost run "+o.RunID+": the run's events ended before its terminal status")
				}
				return out
			}
			switch {
			case c.event != nil:
				fault = nil
				if c.event.Seq <= out.Run.LastSeq {
					continue // already folded (a snapshot covered it): never twice
				}
				if err := out.Run.Apply(*c.event); err != nil {
					con.Notice(now(), "event log: "+err.Error()+"; reading the run's snapshot instead")
					resync(src, con, &out, now)
					continue
				}
				out.events = append(out.events, *c.event)
				con.Event(out.Run, *c.event)
			case c.snap != nil:
				fault = nil
				replaceSnapshot(con, &out, c.snap, now())
			case c.notice != "":
				con.Notice(now(), c.notice)
			case c.wait != nil:
				if msg := waits.say(*c.wait, now()); msg != "" {
					con.Notice(now(), fmt.Sprintf("run %s is waiting: %s", o.RunID, msg))
				}
			case c.fault != nil:
				fault = c.fault
			case c.ok:
				fault = nil
			}
		case <-interrupt:
			interrupt = nil
			out.Interrupted = true
			if !o.CancelOnInterrupt {
				con.Notice(now(), fmt.Sprintf("interrupted: run %s goes on (--cancel-on-interrupt=false); follow it with zof watch %s", o.RunID, o.RunID))
				return out
			}
			if !cancelled {
				con.Notice(now(), "interrupted: cancelling run "+o.RunID+", writing reports with what finished")
				cancel("interrupted (SIGINT/SIGTERM)")
			}
		case <-dl.C:
			out.TimedOut = true
			if fault != nil {
				out.Lost = fault
			}
			if fault != nil {
				con.Notice(now(), fmt.Sprintf("no verdict within --timeout %s, and the execution service is still unreachable: %v", o.Timeout, fault))
			}
			if w := waitReason(src); w != "" && w != waits.msg {
				// What holds it, from the server (docs/agents.md, Why a run waits).
				con.Notice(now(), fmt.Sprintf("run %s is waiting: %s", o.RunID, w))
			}
			if !o.CancelOnTimeout {
				con.Notice(now(), fmt.Sprintf("no verdict within --timeout %s: run %s is left running (%s); follow it with zof watch %s, or pass --cancel-on-timeout", o.Timeout, o.RunID, o.URL, o.RunID))
				return out
			}
			if !cancelled {
				con.Notice(now(), fmt.Sprintf("no verdict within --timeout %s: cancelling run %s", o.Timeout, o.RunID))
				cancel(fmt.Sprintf("timed out: no verdict within %s", o.Timeout))
			}
		case <-giveUp:
			con.Notice(now(), fmt.Sprintf("run %s did not stop in time; reporting its last state", o.RunID))
			return out
		case <-stuck.C:
			if out.Run.LastSeq > 0 && out.Run.Status == api.StatusInitial {
				con.Notice(now(), fmt.Sprintf("run %s is still Initial after %s: the scheduler has not picked it up, which is a fault (lifecycle.md); check the server's logs", o.RunID, stuckAfter))
			}
		}
	}
	return out
}

// waitNotes decides which of a run's wait reasons the person is told while it waits
// (docs/cli.md "Following a run"): a new kind at once, the same kind with a new message (a
// count that moved) at most every waitRepeat, nothing twice. The "queue" kind is the moment
// before the scheduler takes the run, which every run passes through: never said.
type waitNotes struct {
	kind, msg string
	at        time.Time
}

func (n *waitNotes) say(w api.WaitReason, now time.Time) string {
	switch {
	case w.Kind == "" || w.Kind == engine.WaitQueue:
		n.kind, n.msg = "", "" // no longer waits: the next wait is news
		return ""
	case w.Kind == n.kind && (w.Message == n.msg || now.Sub(n.at) < waitRepeat):
		return ""
	}
	n.kind, n.msg, n.at = w.Kind, w.Message, now
	return w.Message
}

// waitReason is the server's reason the run still waits (Run.Wait), "" when
// it does not say or cannot be read in time.
func waitReason(src source) string {
	ctx, cancel := context.WithTimeout(context.Background(), resyncTimeout)
	defer cancel()
	snap, err := src.snapshot(ctx)
	if err != nil || snap.Wait == nil {
		return ""
	}
	return snap.Wait.Message
}

// resync replaces the fold with the source's snapshot after an event that does not fit it.
func resync(src source, con *console.Reporter, out *followed, now func() time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), resyncTimeout)
	defer cancel()
	snap, err := src.snapshot(ctx)
	if err != nil {
		con.Notice(now(), "could not read the run's snapshot: "+err.Error())
		return
	}
	replaceSnapshot(con, out, snap, now())
}

// replaceSnapshot makes a polled snapshot the fold, and shows what changed with the
// console's own lines (the same a stream gives), so a log reads the same either way.
func replaceSnapshot(con *console.Reporter, out *followed, snap *api.Run, at time.Time) {
	if snap.LastSeq < out.Run.LastSeq {
		return // older than what was folded (a lagging replica): keep the newer
	}
	old := out.Run
	next := snap.Clone()
	if next.URL == "" {
		next.URL = old.URL
	}
	out.Run = next
	for _, e := range snapshotChanges(old, next, at) {
		con.Event(next, e)
	}
}

// snapshotChanges lists, as events for the console only, how a run changed between two
// snapshots: run status, run substate and queue position, member status and substate.
func snapshotChanges(old, cur *api.Run, at time.Time) []api.Event {
	var evs []api.Event
	if old.LastSeq == 0 {
		evs = append(evs, api.Event{At: at, Type: api.EventRunCreated, RunID: cur.ID, Run: cur})
		base := cur.Clone()
		base.Status, base.Substate, base.Position, base.Reason = api.StatusInitial, api.SubstateNone, 0, ""
		for i := range base.Members {
			base.Members[i].Status, base.Members[i].Substate = api.StatusInitial, api.SubstateNone
		}
		old = base
	}
	if cur.Status != old.Status && !cur.Status.Terminal() {
		evs = append(evs, api.Event{At: at, Type: api.EventRunStatus, RunID: cur.ID, Status: cur.Status, Reason: cur.Reason})
	}
	if !cur.Status.Terminal() && (cur.Substate != old.Substate || cur.Position != old.Position) && cur.Substate != api.SubstateNone {
		evs = append(evs, api.Event{At: at, Type: api.EventRunSubstate, RunID: cur.ID, Substate: cur.Substate, Position: cur.Position})
	}
	for _, m := range cur.Members {
		var was *api.Member
		if was = old.Member(m.ID); was == nil {
			was = &api.Member{Status: api.StatusInitial}
		}
		if m.Status != was.Status {
			evs = append(evs, api.Event{At: at, Type: api.EventMemberStatus, RunID: cur.ID, Member: m.ID, Status: m.Status, Attempt: m.Attempt, Flaky: m.Flaky, Reason: m.Reason})
		}
		if !m.Status.Terminal() && m.Substate != was.Substate && m.Substate != api.SubstateNone {
			evs = append(evs, api.Event{At: at, Type: api.EventMemberSubstate, RunID: cur.ID, Member: m.ID, Substate: m.Substate})
		}
	}
	if cur.Status != old.Status && cur.Status.Terminal() {
		evs = append(evs, api.Event{At: at, Type: api.EventRunStatus, RunID: cur.ID, Status: cur.Status, Reason: cur.Reason})
	}
	return evs
}
