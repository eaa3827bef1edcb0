package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/ci"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/memstore"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/reporters/console"
	"github.com/zof-ai/zof-ci/internal/reporters/jsonreport"
	"github.com/zof-ai/zof-ci/internal/reporters/junit"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/secret"
	"github.com/zof-ai/zof-ci/internal/step"
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
	// JUnitLocations adds file and line to the JUnit testcases (see package junit).
	JUnitLocations bool
	JSON           string
	// HTML is where to write the self-contained HTML report of the run ("": none).
	HTML string
	// Artifacts is the directory `--artifacts DIR` writes the run's artifacts
	// to (the evidence of its failed steps), for the JUnit report's
	// attachment lines ("": none written; the reports still link them).
	Artifacts string
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
	// CI is the CI context of an embedded run (RemoteOptions.CI is a remote run's): in a
	// CI job (GitHub, GitLab) the run records its source (commit, ref, CI run) and gets the
	// idempotency key a remote run would, so reports and outputs name them. The zero
	// value (or ci.Local) leaves an embedded run as it is on a laptop.
	CI ci.Context
	// Reporters, when set, is called once the plan is made (mask masks the suite's
	// secrets) and returns reporters besides the console, JUnit and JSON ones: CI
	// reports (a check run, a step summary, outputs, a merge request note). Those that
	// are Starters hear Start with the first snapshot as soon as the run is created or
	// submitted; all are fed the same final Result, after the built-in reports, also
	// when nothing was selected (Run is then nil). Their errors are said on Stderr and
	// never change the gate's code.
	Reporters func(p *gate.Plan, mask *secret.Masker) []report.Reporter
	// ExitOf is the process exit code a verdict ends zof with (the CLI's
	// table, internal/exitcode), for the reports that state it (the JSON
	// report, the action's outputs). Required: the runner knows no exit codes.
	ExitOf func(gate.Verdict) report.Exit
}

// RunEmbedded plans the run, executes it on an in-process engine with live
// progress, writes the reports and returns the gate's verdict. ctx is the
// interrupt: when it ends, the run is cancelled and the verdict is Interrupted.
func RunEmbedded(ctx context.Context, o RunOptions) (gate.Verdict, error) {
	plan, failOn, err := planAndGate(ctx, o)
	if err != nil {
		return gate.Verdict{}, err
	}
	mask := secret.NewMasker(plan.Request.Secrets)
	fmt.Fprintln(o.Stdout, mask.String(planHeadline(plan)))
	extra := extraReporters(o, plan, mask)
	if plan.Empty() {
		v := emptyPlan(o.Stdout, plan)
		reportEmpty(ctx, o, plan, v, mask, extra)
		return v, nil
	}
	key := embeddedIdentity(plan, o.CI)

	con, err := console.NewConsole(report.Options{Out: o.Stdout, TTY: o.TTY, Color: o.Color, GitHubActions: o.GitHubActions, Mask: mask, Now: o.Now})
	if err != nil {
		return gate.Verdict{}, err
	}
	dir, err := filepath.Abs(filepath.Dir(o.Select.SuitePath))
	if err != nil {
		return gate.Verdict{}, gate.Usage(fmt.Errorf("suite directory: %w", err))
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
		return gate.Verdict{}, err
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

	run, _, err := eng.Create(engCtx, localTenant, plan.Request, engine.CreateOptions{IdempotencyKey: key})
	if err != nil {
		return gate.Verdict{}, fmt.Errorf("starting the run: %w", err)
	}
	startReporters(ctx, o, run, extra)
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
	if out.Run.IdempotencyKey == "" {
		out.Run.IdempotencyKey = key
	}
	v := gate.Judge(out.Outcome, failOn)
	res := &report.Result{Run: out.Run, Events: out.events, Gate: v.Kind, Exit: o.ExitOf(v), Verdict: v.Line, Notices: v.Notices, Shadow: gate.ShadowOf(out.Run, failOn)}
	res.Artifacts = collectArtifacts(ctx, o, engineArtifacts{eng}, out.Run, mask)
	// Reports are written after an interrupt too: that is what the person needs then.
	writeReports(context.WithoutCancel(ctx), res, con, o, mask, extra)
	return v, nil
}

// embeddedIdentity fills an embedded run's source from the CI context and returns its
// idempotency key: derived as for a remote run when the context names a CI job execution,
// else "" (a laptop: the key would identify nothing).
func embeddedIdentity(plan *gate.Plan, c ci.Context) string {
	if c.Provider == "" || c.Provider == ci.Local {
		return ""
	}
	plan.Request.Source = requestSource(c)
	if !c.HasIdentity() {
		return ""
	}
	return gate.IdempotencyKey(gate.KeyInput{Project: plan.Request.Project, Environment: plan.Request.Environment.Name, Cases: plan.SelectedIDs(), SuiteDigest: plan.Suite.Digest, SHA: c.SHA, CI: c})
}

// extraReporters builds RunOptions.Reporters for the plan.
func extraReporters(o RunOptions, plan *gate.Plan, mask *secret.Masker) []report.Reporter {
	if o.Reporters == nil {
		return nil
	}
	return o.Reporters(plan, mask)
}

// startReporters tells the Starters among the extra reporters that the run exists. A
// failure is said and never changes the gate.
func startReporters(ctx context.Context, o RunOptions, run *api.Run, extra []report.Reporter) {
	for _, r := range extra {
		s, ok := r.(report.Starter)
		if !ok {
			continue
		}
		if err := s.Start(ctx, run); err != nil {
			fmt.Fprintf(o.Stderr, "zof: %v (the gate's exit code is unchanged)\n", err)
		}
	}
}

// reportEmpty writes the requested reports of a plan that selected nothing: JUnit
// and JSON files exist (valid, zero tests, the reason as a property) so CI's
// test-report steps find them, and the extra reporters say why nothing ran.
func reportEmpty(ctx context.Context, o RunOptions, plan *gate.Plan, v gate.Verdict, mask *secret.Masker, extra []report.Reporter) {
	verdict := "nothing to run: " + emptyReason(plan)
	if v.Kind == gate.Passed {
		verdict += " (gate.on_empty is pass)"
	}
	run := &api.Run{
		Project:     plan.Request.Project,
		Environment: plan.Request.Environment.Name,
		Selection:   plan.Selection,
		Source:      plan.Request.Source,
		SuiteFile:   plan.Request.SuiteFile,
		Members:     []api.Member{},
	}
	res := &report.Result{Gate: v.Kind, Exit: o.ExitOf(v), Verdict: verdict, Notices: selectionNotices(plan)}
	ctx = context.WithoutCancel(ctx)
	// The files describe the selection that came out empty; the CI reporters
	// (check run, MR note) know no run exists and say why nothing ran.
	files := *res
	files.Run = run
	writeFileReports(ctx, &files, o, mask)
	feedExtra(ctx, o, res, extra)
}

// feedExtra gives every extra reporter the result.
func feedExtra(ctx context.Context, o RunOptions, res *report.Result, extra []report.Reporter) {
	for _, r := range extra {
		if err := r.Report(ctx, res); err != nil {
			fmt.Fprintf(o.Stderr, "zof: %v (the gate's exit code is unchanged)\n", err)
		}
	}
}

// planAndGate makes the plan and settles which outcomes fail the gate:
// --fail-on, else the suite's gate.fail_on.
func planAndGate(ctx context.Context, o RunOptions) (*gate.Plan, []string, error) {
	plan, err := MakePlan(ctx, o.Select)
	if err != nil {
		return nil, nil, err
	}
	failOn := o.FailOn
	if len(failOn) == 0 {
		failOn = plan.Suite.Gate.FailOn
	}
	failOn, err = gate.ParseFailOn(failOn)
	if err != nil {
		return nil, nil, err
	}
	return plan, failOn, nil
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

// writeReports feeds every reporter the same result. A report that cannot be
// written is said plainly but never changes the gate's code.
func writeReports(ctx context.Context, res *report.Result, con *console.Reporter, o RunOptions, mask *secret.Masker, extra []report.Reporter) {
	if err := con.Report(ctx, res); err != nil {
		fmt.Fprintf(o.Stderr, "zof: writing the console summary: %v\n", err)
	}
	writeFileReports(ctx, res, o, mask)
	feedExtra(ctx, o, res, extra)
}

// writeFileReports writes the --junit and --json files. A report that cannot be
// written is said plainly but never changes the gate's code.
func writeFileReports(ctx context.Context, res *report.Result, o RunOptions, mask *secret.Masker) {
	for _, f := range []struct {
		name, path string
		new        report.Factory
	}{{junit.Name, o.JUnit, junit.New}, {jsonreport.Name, o.JSON, jsonreport.New}, {htmlName, o.HTML, newHTMLReport}} {
		if f.path == "" {
			continue
		}
		r, err := f.new(report.Options{Path: f.path, Mask: mask, Now: o.Now, JUnitLocations: o.JUnitLocations})
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
func planHeadline(p *gate.Plan) string {
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

// selectionNotices say the selection's widening and warnings as notices, for the reports of
// an empty selection, which have no run whose selection shows them. A run's reports show its
// selection with them (console, step summary, merge request note, JSON), so they are not
// notices there too: each fact once per report.
func selectionNotices(p *gate.Plan) []string {
	var n []string
	if w := p.Selection.Widened; w != nil {
		n = append(n, fmt.Sprintf("scope %s widened to %s: %s", p.Selection.Scope, p.Selection.Effective, w.String()))
	}
	return append(n, p.Selection.Warnings...)
}

// emptyPlan reports an empty selection per gate.on_empty.
func emptyPlan(w io.Writer, p *gate.Plan) gate.Verdict {
	why := emptyReason(p)
	if p.Kind() == gate.Empty {
		fmt.Fprintf(w, "nothing to run: no cases selected or suite empty: %s. gate.on_empty is fail (exit 5); set it to pass if an empty selection is fine.\n", why)
		return gate.Verdict{Kind: gate.Empty}
	}
	fmt.Fprintf(w, "notice: nothing to run: %s. gate.on_empty is pass, so the gate passes.\n", why)
	return gate.Verdict{Kind: gate.Passed}
}

// emptyReason says why nothing was selected.
func emptyReason(p *gate.Plan) string {
	why := fmt.Sprintf("scope %s selected none of the %d %s", p.Selection.Scope, len(p.Suite.Cases), plural(len(p.Suite.Cases), "case", "cases"))
	if len(p.Suite.Cases) == 0 {
		why = "the suite has no cases"
	}
	if n := len(p.Selection.Unmapped) + len(p.Selection.Ignored); n > 0 && p.Selection.Scope == "changed" {
		why += fmt.Sprintf(" (%d changed %s selected nothing: see zof plan)", n, plural(n, "file", "files"))
	}
	return why
}
