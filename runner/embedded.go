package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/engine"
	"github.com/zof-ai/zof-ci/engine/memstore"
	"github.com/zof-ai/zof-ci/exitcode"
	"github.com/zof-ai/zof-ci/reporters"
	"github.com/zof-ai/zof-ci/reporters/console"
	"github.com/zof-ai/zof-ci/secret"
	"github.com/zof-ai/zof-ci/step"
)

// localTenant is the tenant of every embedded run: there is only one user.
const localTenant = "local"

// stopWait bounds how long the follower waits for the terminal status after it
// cancelled a run (interrupt or deadline). The engine stops a run within 2 s
// (lifecycle.md); the rest is room for stopping the environment's service.
const stopWait = 15 * time.Second

// RunOptions configure `zof run`.
type RunOptions struct {
	Select  SelectOptions
	Timeout time.Duration
	JUnit   string
	JSON    string
	// FailOn overrides the suite's gate.fail_on.
	FailOn            []string
	CancelOnInterrupt bool
	Stdout, Stderr    io.Writer
	TTY, Color        bool
	GitHubActions     bool
	// Now is the clock (nil: time.Now); tests pin it.
	Now func() time.Time
}

// RunEmbedded plans the run, executes it on an in-process engine with live
// progress, writes the reports and returns the gate's exit code. ctx is the
// interrupt: when it ends, the run is cancelled and the code is 130.
func RunEmbedded(ctx context.Context, o RunOptions) (exitcode.Code, error) {
	plan, err := MakePlan(ctx, o.Select)
	if err != nil {
		return 0, err
	}
	failOn := o.FailOn
	if len(failOn) == 0 {
		failOn = plan.Suite.Gate.FailOn
	}
	if failOn, err = ParseFailOn(failOn); err != nil {
		return 0, err
	}
	mask := secret.NewMasker(plan.Request.Secrets)
	fmt.Fprintln(o.Stdout, mask.String(planHeadline(plan)))
	if plan.Empty() {
		return emptyPlan(o.Stdout, plan), nil
	}

	con, err := console.NewConsole(reporters.Options{Out: o.Stdout, TTY: o.TTY, Color: o.Color, GitHubActions: o.GitHubActions, Mask: mask, Now: o.Now})
	if err != nil {
		return 0, err
	}
	dir, err := filepath.Abs(filepath.Dir(o.Select.SuitePath))
	if err != nil {
		return 0, exitcode.Wrap(exitcode.Usage, fmt.Errorf("suite directory: %w", err))
	}
	eng, err := engine.New(engine.Config{
		Store:    memstore.New(),
		Steps:    step.NewExecutor(step.ExecutorOptions{}),
		Services: services{opts: step.ServiceOptions{Dir: dir, Env: o.Select.Environ, Mask: mask}},
		Dir:      dir,
		Env:      o.Select.Environ,
		Now:      o.Now,
	})
	if err != nil {
		return 0, err
	}
	// The engine has its own context: an interrupt must cancel the run through
	// the lifecycle (so reports say what finished), not kill the engine under it.
	engCtx, stopEngine := context.WithCancel(context.Background())
	engDone := make(chan struct{})
	go func() {
		defer close(engDone)
		eng.Run(engCtx)
	}()
	defer func() {
		stopEngine()
		<-engDone
	}()

	run, _, err := eng.Create(engCtx, localTenant, plan.Request, engine.CreateOptions{})
	if err != nil {
		return 0, fmt.Errorf("starting the run: %w", err)
	}
	out := follow(ctx, eng, run.ID, con, o)
	code, verdict, notices := Verdict(out.Outcome, failOn)
	notices = append(selectionNotices(plan), notices...)
	res := &reporters.Result{Run: out.Run, Events: out.events, Exit: code, Verdict: verdict, Notices: notices}
	// Reports are written after an interrupt too: that is what the person needs then.
	writeReports(context.WithoutCancel(ctx), res, con, o, mask)
	return code, nil
}

// followed is an Outcome plus the event log it was folded from.
type followed struct {
	Outcome
	events []api.Event
}

// follow folds the run's events into a snapshot, feeding the console live, until
// a terminal status, the deadline or an interrupt.
func follow(ctx context.Context, eng *engine.Engine, id string, con *console.Reporter, o RunOptions) followed {
	out := followed{Outcome: Outcome{Run: &api.Run{}, Timeout: o.Timeout}}
	snap := out.Run
	deadline := time.NewTimer(o.Timeout)
	defer deadline.Stop()
	interrupt := ctx.Done()
	var giveUp <-chan time.Time
	cancel := func(reason string) {
		if _, err := eng.Cancel(context.Background(), localTenant, id, reason); err != nil {
			var se *engine.StateError
			if !errors.As(err, &se) { // already terminal is fine
				con.Notice(now(o), "could not cancel the run: "+err.Error())
			}
		}
		giveUp = time.After(stopWait)
	}
	sub, err := eng.Subscribe(context.Background(), localTenant, id, 0)
	for err == nil && !(snap.LastSeq > 0 && snap.Status.Terminal()) {
		select {
		case e, ok := <-sub.C:
			if !ok {
				switch serr := sub.Err(); {
				case errors.Is(serr, engine.ErrDropped):
					// Fell behind (a slow terminal): resume from the last event seen.
					sub, err = eng.Subscribe(context.Background(), localTenant, id, snap.LastSeq)
				case serr == nil:
					err = errors.New("the event stream ended before the run finished")
				default:
					err = serr
				}
				continue
			}
			if aerr := snap.Apply(e); aerr != nil {
				con.Notice(now(o), "event log: "+aerr.Error())
				continue
			}
			out.events = append(out.events, e)
			con.Event(snap, e)
		case <-interrupt:
			interrupt = nil
			out.Interrupted = true
			con.Notice(now(o), "interrupted: cancelling the run, writing reports with what finished")
			cancel("interrupted (SIGINT/SIGTERM)")
		case <-deadline.C:
			out.TimedOut = true
			con.Notice(now(o), fmt.Sprintf("no verdict within --timeout %s: cancelling the run", o.Timeout))
			cancel(fmt.Sprintf("timed out: no verdict within %s", o.Timeout))
		case <-giveUp:
			con.Notice(now(o), "the run did not stop in time; reporting its last state")
			err = errors.New("gave up waiting")
		}
	}
	if err != nil && !out.Interrupted && !out.TimedOut {
		con.Notice(now(o), "lost the run's events: "+err.Error())
	}
	return out
}

func now(o RunOptions) time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// writeReports feeds every reporter the same result. A report that cannot be
// written is said plainly but never changes the gate's code.
func writeReports(ctx context.Context, res *reporters.Result, con *console.Reporter, o RunOptions, mask *secret.Masker) {
	if err := con.Report(ctx, res); err != nil {
		fmt.Fprintf(o.Stderr, "zof: writing the console summary: %v\n", err)
	}
	reg := reporters.Default()
	for _, f := range []struct{ name, path string }{{"junit", o.JUnit}, {"json", o.JSON}} {
		if f.path == "" {
			continue
		}
		r, err := reg.New(f.name, reporters.Options{Path: f.path, Mask: mask, Now: o.Now})
		if err == nil {
			err = r.Report(ctx, res)
		}
		if err != nil {
			fmt.Fprintf(o.Stderr, "zof: could not write the %s report to %s: %v (the gate's exit code is unchanged)\n", f.name, f.path, err)
			continue
		}
		fmt.Fprintf(o.Stdout, "Wrote %s report to %s\n", f.name, f.path)
	}
}

// services adapts step's service starter to the engine's interface.
type services struct{ opts step.ServiceOptions }

func (s services) Start(ctx context.Context, sv api.Serve, baseURL string) (engine.Service, error) {
	return step.StartService(ctx, sv, baseURL, s.opts)
}

var _ engine.ServiceStarter = services{}
var _ engine.StepRunner = (*step.Executor)(nil)

// planHeadline is the first line of a run: what is about to happen.
func planHeadline(p *Plan) string {
	sel := p.Selection
	members := 0
	for _, c := range p.Request.Cases {
		if n := len(c.Variants); n > 0 {
			members += n
		} else {
			members++
		}
	}
	line := fmt.Sprintf("zof: %s · environment %s · scope %s", p.Request.Project, p.Request.Environment.Name, sel.Scope)
	if sel.Effective != "" && sel.Effective != sel.Scope {
		line += " → " + sel.Effective
	}
	line += fmt.Sprintf(" · %d of %d %s selected", len(sel.Cases), len(p.Suite.Cases), plural(len(p.Suite.Cases), "case", "cases"))
	if members != len(sel.Cases) {
		line += fmt.Sprintf(" (%d with variants)", members)
	}
	return line
}

// selectionNotices tell the person when the selection was widened or warned.
func selectionNotices(p *Plan) []string {
	var n []string
	if w := p.Selection.Widened; w != nil {
		n = append(n, fmt.Sprintf("scope %s widened to %s: %s", p.Selection.Scope, p.Selection.Effective, w.String()))
	}
	return append(n, p.Selection.Warnings...)
}

// emptyPlan reports an empty selection per gate.on_empty.
func emptyPlan(w io.Writer, p *Plan) exitcode.Code {
	why := fmt.Sprintf("scope %s selected none of the %d %s", p.Selection.Scope, len(p.Suite.Cases), plural(len(p.Suite.Cases), "case", "cases"))
	if len(p.Suite.Cases) == 0 {
		why = "the suite has no cases"
	}
	if n := len(p.Selection.Unmapped) + len(p.Selection.Ignored); n > 0 && p.Selection.Scope == "changed" {
		why += fmt.Sprintf(" (%d changed %s selected nothing: see zof plan)", n, plural(n, "file", "files"))
	}
	if p.Exit() == exitcode.Empty {
		fmt.Fprintf(w, "nothing to run: no cases selected or suite empty: %s. gate.on_empty is fail (exit 5); set it to pass if an empty selection is fine.\n", why)
		return exitcode.Empty
	}
	fmt.Fprintf(w, "notice: nothing to run: %s. gate.on_empty is pass, so the gate passes.\n", why)
	return exitcode.OK
}
