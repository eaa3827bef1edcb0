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

// stepsExitWait bounds the wait for abandoned steps at exit: their process
// groups get SIGKILL after step.DefaultKillGrace, so this is ample.
const stepsExitWait = 5 * time.Second

// RunOptions configure `zof run` and `zof watch`.
type RunOptions struct {
	Select  SelectOptions
	Timeout time.Duration
	JUnit   string
	JSON    string
	// FailOn overrides the suite's gate.fail_on.
	FailOn []string
	// CancelOnInterrupt cancels a remote run on SIGINT/SIGTERM (an embedded run always stops).
	CancelOnInterrupt bool
	// CancelOnTimeout cancels a remote run at the deadline (an embedded run always stops).
	CancelOnTimeout bool
	// NoStream polls instead of streaming; PollInterval is the polling period (remote runs).
	NoStream       bool
	PollInterval   time.Duration
	Stdout, Stderr io.Writer
	TTY, Color     bool
	GitHubActions  bool
	// Now is the clock (nil: time.Now); tests pin it.
	Now func() time.Time
	// StuckAfter (default StuckInitialAfter) and StopWait (default: 15 s embedded, 5 s
	// remote) are shortened by tests.
	StuckAfter time.Duration
	StopWait   time.Duration
	// Sleep replaces the waits between reconnects and polls of a remote run (tests scale
	// them down); nil sleeps for real.
	Sleep func(ctx context.Context, d time.Duration) error
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
	steps := step.NewExecutor(step.ExecutorOptions{})
	eng, err := engine.New(engine.Config{
		Store:    memstore.New(),
		Steps:    steps,
		Services: Services(step.ServiceOptions{Dir: dir, Env: o.Select.Environ, Mask: mask}),
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
		// A step the engine abandoned (it ignored its cancel) is still being
		// killed: zof must not exit and leave its process group behind.
		waitCtx, cancel := context.WithTimeout(context.Background(), stepsExitWait)
		defer cancel()
		if err := steps.Wait(waitCtx); err != nil {
			fmt.Fprintf(o.Stderr, "zof: %v; some step processes may still be running\n", err)
		}
	}()

	run, _, err := eng.Create(engCtx, localTenant, plan.Request, engine.CreateOptions{})
	if err != nil {
		return 0, fmt.Errorf("starting the run: %w", err)
	}
	out := follow(ctx, &embeddedSource{eng: eng, id: run.ID}, con, followOptions{
		RunID:   run.ID,
		Timeout: o.Timeout,
		// The engine lives in this process: its run cannot be left running.
		CancelOnInterrupt: true,
		CancelOnTimeout:   true,
		StopWait:          o.StopWait,
		StuckAfter:        o.StuckAfter,
		Now:               o.Now,
	})
	code, verdict, notices := Verdict(out.Outcome, failOn)
	notices = append(selectionNotices(plan), notices...)
	res := &reporters.Result{Run: out.Run, Events: out.events, Exit: code, Verdict: verdict, Notices: notices}
	// Reports are written after an interrupt too: that is what the person needs then.
	writeReports(context.WithoutCancel(ctx), res, con, o, mask)
	return code, nil
}

// embeddedSource follows a run of the in-process engine.
type embeddedSource struct {
	eng *engine.Engine
	id  string
}

var _ source = (*embeddedSource)(nil)

func (s *embeddedSource) watch(ctx context.Context, after int64, ch chan<- change) error {
	for {
		sub, err := s.eng.Subscribe(ctx, localTenant, s.id, after)
		if err != nil {
			return err
		}
		for e := range sub.C {
			after = e.Seq
			select {
			case ch <- change{event: &e}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		switch err := sub.Err(); {
		case errors.Is(err, engine.ErrDropped):
			// Fell behind (a slow terminal): resume from the last event seen.
		case err == nil:
			return nil
		default:
			return err
		}
	}
}

func (s *embeddedSource) cancel(ctx context.Context, reason string) error {
	_, err := s.eng.Cancel(ctx, localTenant, s.id, reason)
	var se *engine.StateError
	if errors.As(err, &se) {
		return nil // already terminal
	}
	return err
}

func (s *embeddedSource) snapshot(ctx context.Context) (*api.Run, error) {
	return s.eng.Get(ctx, localTenant, s.id)
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

// Services starts environments' services for an engine (`zof run` and `zof serve`).
func Services(opts step.ServiceOptions) engine.ServiceStarter { return services{opts: opts} }

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
