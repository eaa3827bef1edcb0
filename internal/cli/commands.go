package cli

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/internal/ci"
	"github.com/zof-ai/zof-ci/internal/cli/iostreams"
	"github.com/zof-ai/zof-ci/internal/exitcode"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/reporters"
	"github.com/zof-ai/zof-ci/internal/runner"
)

// version is stamped at build time: -ldflags "-X github.com/zof-ai/zof-ci/internal/cli.version=v1.2.3".
var version = "dev"

// versionOptions are zof version's: none but where to print.
type versionOptions struct {
	IO *iostreams.IOStreams
}

func newCmdVersion(f *Factory, runF func(context.Context, *versionOptions) error) *command {
	o := &versionOptions{IO: f.IO}
	c := &command{name: "version", short: "print the version, commit and Go version", example: "zof version"}
	c.run = func(ctx context.Context, fs *flag.FlagSet, pos []string) error {
		if err := noArgs(c, pos, ""); err != nil {
			return err
		}
		if runF != nil {
			return runF(ctx, o)
		}
		return versionRun(o)
	}
	return c
}

func versionRun(o *versionOptions) error {
	commit := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
	}
	fmt.Fprintf(o.IO.Out, "zof %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// selectOptions are shared by run and plan: which suite, which cases. An empty
// Env leaves the environment to the suite file (defaults.environment), an empty
// Base leaves it to git (the upstream default branch).
type selectOptions struct {
	Suite, Scope, Env, Base, ChangedFiles string
}

func (s *selectOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&s.Suite, "suite", "zof.yaml", "suite file (env ZOF_SUITE)")
	fs.StringVar(&s.Scope, "scope", "all", "all | smoke | changed | tag:NAME | set:NAME | id:A,B (env ZOF_SCOPE)")
	fs.StringVar(&s.Env, "env", "", "environment from the suite file (env ZOF_ENV; default: the suite's defaults.environment)")
	fs.StringVar(&s.Base, "base", "", "base ref for --scope changed (env ZOF_BASE; default: the upstream default branch)")
	fs.StringVar(&s.ChangedFiles, "changed-files", "", "file with one changed path per line, or - for stdin; overrides diff acquisition")
}

// fromEnv applies ZOF_SUITE, ZOF_SCOPE, ZOF_ENV and ZOF_BASE where no flag was given.
func (s *selectOptions) fromEnv(set map[string]bool, env Env) {
	fromEnv(set, "suite", env, "ZOF_SUITE", &s.Suite)
	fromEnv(set, "scope", env, "ZOF_SCOPE", &s.Scope)
	fromEnv(set, "env", env, "ZOF_ENV", &s.Env)
	fromEnv(set, "base", env, "ZOF_BASE", &s.Base)
}

func (s *selectOptions) runner(io *iostreams.IOStreams, env Env) runner.SelectOptions {
	return runner.SelectOptions{
		SuitePath:    s.Suite,
		Scope:        s.Scope,
		Environment:  s.Env,
		Base:         s.Base,
		ChangedFiles: s.ChangedFiles,
		Stdin:        io.In,
		Lookup:       env.Lookup,
		Environ:      env.List(),
	}
}

// validateOptions are zof validate's. An empty Environment is the suite's
// defaults.environment.
type validateOptions struct {
	IO          *iostreams.IOStreams
	Env         Env
	Suite       string
	Environment string
}

func newCmdValidate(f *Factory, runF func(context.Context, *validateOptions) error) *command {
	o := &validateOptions{IO: f.IO, Env: f.Env}
	c := &command{
		name:    "validate",
		short:   "check a suite file; every problem as file:line:col: message",
		long:    "Exits 0 when the file is valid (warnings are shown but do not fail), 64 when it is not.",
		example: "zof validate --suite zof.yaml",
	}
	c.flags = func(fs *flag.FlagSet) {
		fs.StringVar(&o.Suite, "suite", "zof.yaml", "suite file (env ZOF_SUITE)")
		fs.StringVar(&o.Environment, "env", "", "environment whose ${VAR}s must be set (env ZOF_ENV; default: defaults.environment)")
	}
	c.run = func(ctx context.Context, fs *flag.FlagSet, pos []string) error {
		if err := noArgs(c, pos, " (the file is --suite FILE)"); err != nil {
			return err
		}
		set := setFlags(fs)
		fromEnv(set, "suite", f.Env, "ZOF_SUITE", &o.Suite)
		fromEnv(set, "env", f.Env, "ZOF_ENV", &o.Environment)
		if runF != nil {
			return runF(ctx, o)
		}
		return runner.Validate(o.IO.Out, o.IO.ErrOut, o.Suite, o.Environment, o.Env.Lookup)
	}
	return c
}

// planOptions are zof plan's.
type planOptions struct {
	IO     *iostreams.IOStreams
	Env    Env
	Select selectOptions
	Output string
	Plan   runner.PlanOutput
}

func newCmdPlan(f *Factory, runF func(context.Context, *planOptions) error) *command {
	o := &planOptions{IO: f.IO, Env: f.Env}
	c := &command{
		name:  "plan",
		short: "show which cases would run and why; nothing is submitted",
		long: "The selection only. --output json prints the same as stable JSON (schema zof.plan/v2, see\n" +
			"docs/plan-json.md). Each case shows its first 5 reasons and counts the rest; --all-reasons\n" +
			"lists every one. Exits 0 when cases are selected, 5 when none are and gate.on_empty is fail.",
		example: "zof plan --scope changed --base origin/main",
	}
	c.flags = func(fs *flag.FlagSet) {
		o.Select.register(fs)
		fs.StringVar(&o.Output, "output", "text", "text | json")
		fs.BoolVar(&o.Plan.AllReasons, "all-reasons", false, "list every reason of every case, not the first 5 and counts")
	}
	c.run = func(ctx context.Context, fs *flag.FlagSet, pos []string) error {
		if err := noArgs(c, pos, ""); err != nil {
			return err
		}
		o.Select.fromEnv(setFlags(fs), f.Env)
		if err := checkOutput(o.Output); err != nil {
			return err
		}
		if runF != nil {
			return runF(ctx, o)
		}
		return planRun(ctx, o)
	}
	return c
}

func planRun(ctx context.Context, o *planOptions) error {
	p, err := runner.MakePlan(ctx, o.Select.runner(o.IO, o.Env))
	if err != nil {
		return err
	}
	if o.Output == "json" {
		err = runner.WritePlanJSON(o.IO.Out, p, o.Plan)
	} else {
		err = runner.WritePlanText(o.IO.Out, p, o.Plan)
	}
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, fmt.Errorf("writing the plan: %w", err))
	}
	return exitcode.Reported(exitcode.OfKind(p.Kind()))
}

// followOptions are how a run is followed to its verdict: run, watch and rerun --follow.
type followOptions struct {
	Timeout, PollInterval              time.Duration
	JUnit, JSON, HTML                  string
	Artifacts                          string // --artifacts DIR
	FailOn                             string // comma-separated; "" is the default (run: the suite's gate.fail_on)
	NoStream                           bool
	CancelOnInterrupt, CancelOnTimeout bool
}

// register declares the follow flags; forRun words them for zof run, where the run
// may execute here (embedded) rather than on a server.
func (o *followOptions) register(fs *flag.FlagSet, forRun, cancelOnInterrupt bool) {
	serverOnly, failOnDefault := "", "all four"
	interruptUsage, timeoutUsage := "cancel the run on SIGINT/SIGTERM", "cancel the run when --timeout passes"
	if forRun {
		serverOnly, failOnDefault = " (server runs)", "the suite's gate.fail_on"
		interruptUsage = "cancel the remote run on SIGINT/SIGTERM (an embedded run always stops)"
		timeoutUsage += " (the embedded engine always stops)"
	}
	fs.DurationVar(&o.Timeout, "timeout", 30*time.Minute, "overall deadline for a verdict; then exit 4")
	fs.BoolVar(&o.NoStream, "no-stream", false, "poll instead of streaming events"+serverOnly)
	fs.DurationVar(&o.PollInterval, "poll-interval", runner.DefaultPollInterval, "polling interval"+serverOnly)
	fs.StringVar(&o.JUnit, "junit", "", "write JUnit XML to this path")
	fs.StringVar(&o.JSON, "json", "", "write the run result as JSON to this path")
	fs.StringVar(&o.HTML, "html", "", "write a self-contained HTML report of the run to this path (opens from file://)")
	fs.StringVar(&o.Artifacts, "artifacts", "", "write the evidence of failed steps (requests, responses, output) to this directory; the JUnit report attaches the files")
	fs.StringVar(&o.FailOn, "fail-on", "", "comma-separated statuses that fail the gate: failed,blocked,cancelled,timeout (default: "+failOnDefault+")")
	fs.BoolVar(&o.CancelOnInterrupt, "cancel-on-interrupt", cancelOnInterrupt, interruptUsage)
	fs.BoolVar(&o.CancelOnTimeout, "cancel-on-timeout", false, timeoutUsage)
}

func (o *followOptions) validate() error {
	if o.Timeout <= 0 {
		return exitcode.Errorf(exitcode.Usage, "--timeout %s: must be positive, e.g. 30m", o.Timeout)
	}
	if o.PollInterval <= 0 {
		return exitcode.Errorf(exitcode.Usage, "--poll-interval %s: must be positive, e.g. 2s", o.PollInterval)
	}
	return nil
}

// runner is the runner's options for following: the streams, and how the
// terminal was found (decided once, in Main).
func (o *followOptions) runner(io *iostreams.IOStreams, env Env) runner.RunOptions {
	var failOn []string
	if o.FailOn != "" {
		failOn = strings.Split(o.FailOn, ",")
	}
	tty, color, gha := reporters.Terminal(io.IsStdoutTTY(), env.Lookup)
	return runner.RunOptions{
		Timeout: o.Timeout, JUnit: o.JUnit, JSON: o.JSON, HTML: o.HTML, Artifacts: o.Artifacts, FailOn: failOn,
		CancelOnInterrupt: o.CancelOnInterrupt, CancelOnTimeout: o.CancelOnTimeout,
		NoStream: o.NoStream, PollInterval: o.PollInterval,
		Stdout: io.Out, Stderr: io.ErrOut, TTY: tty, Color: color, GitHubActions: gha,
		ExitOf: exitcode.Report,
	}
}

// runOptions are zof run's. An empty Server runs on the embedded engine.
type runOptions struct {
	IO             *iostreams.IOStreams
	Env            Env
	Select         selectOptions
	Server         serverOptions
	Follow         followOptions
	Supersede      bool
	Detach         bool
	IdempotencyKey string
	// JUnitLocations adds file and line to JUnit testcases; on by default in GitLab CI.
	JUnitLocations bool
	// Shadow is --shadow: run every case, report what the scope's subset would have concluded.
	Shadow shadowFlag
	// Coverage is --coverage: send the checkout's coverage map by module with a server run.
	Coverage bool
}

// serverOnlyFlags need --server: without one they would be silently ignored.
var serverOnlyFlags = []string{"detach", "supersede", "idempotency-key", "no-stream", "poll-interval", "cancel-on-timeout", "token", "coverage"}

func newCmdRun(f *Factory, runF func(context.Context, *runOptions) error) *command {
	o := &runOptions{IO: f.IO, Env: f.Env}
	c := &command{
		name:  "run",
		short: "select → execute (embedded) or submit → follow live → report → exit with the gate's code",
		long: "With no --server (or ZOF_SERVER) the run executes here on the embedded engine: the\n" +
			"environment's serve command is started, the cases run, the service is stopped.\n\n" +
			"With --server the run is submitted to zof serve with an idempotency key derived from the CI\n" +
			"context (project, environment, cases, suite digest, commit, CI run id, attempt, job, ZOF_SHARD):\n" +
			"a retried step attaches to the run it already started. Without a CI run identity (a laptop)\n" +
			"the key is random, so every invocation starts a new run. The run is followed over the event\n" +
			"stream (polling when the stream is unavailable) and reported like an embedded run. At\n" +
			"--timeout the run is left running (exit 4) unless --cancel-on-timeout.\n\n" +
			"In a GitLab CI job, --scope changed diffs the pipeline's range by git\n" +
			"(CI_MERGE_REQUEST_DIFF_BASE_SHA..CI_COMMIT_SHA in merge request pipelines), with the merge\n" +
			"request's diffs API as fallback, unless --base or --changed-files say otherwise; with\n" +
			"ZOF_GITLAB_TOKEN (a token with api scope) it posts a commit status and one merge request\n" +
			"note, updated in place. See docs/ci.md.",
		example: "zof run --suite examples/checkout/zof.yaml --junit junit.xml",
	}
	c.flags = func(fs *flag.FlagSet) {
		o.Select.register(fs)
		o.Server.register(fs, "; empty: embedded engine")
		o.Follow.register(fs, true, true)
		fs.BoolVar(&o.Supersede, "supersede", false, "cancel older runs of the same concurrency group (server runs)")
		fs.BoolVar(&o.Detach, "detach", false, "submit, print the run id, exit 0 (server runs)")
		fs.StringVar(&o.IdempotencyKey, "idempotency-key", "", "override the idempotency key derived from the CI context (server runs)")
		fs.BoolVar(&o.Coverage, "coverage", true, "send the checkout's coverage map by module with the run, for the console's home page (server runs; docs/coverage.md)")
		gitlabCI, _ := f.Env.Lookup("GITLAB_CI")
		fs.Var(&o.Shadow, "shadow", "shadow run: select --scope changed or smoke as usual, run every case, gate on all, report what the subset would have concluded (--shadow=sample:N: one in N pull requests)")
		fs.BoolVar(&o.JUnitLocations, "junit-locations", gitlabCI == "true", "add file and line attributes to JUnit testcases, read by GitLab and test-report actions but outside the Jenkins XSD (default: on in GitLab CI)")
	}
	c.run = func(ctx context.Context, fs *flag.FlagSet, pos []string) error {
		if err := noArgs(c, pos, ""); err != nil {
			return err
		}
		set := setFlags(fs)
		o.Select.fromEnv(set, f.Env)
		o.Server.fromEnv(set, f.Env)
		if err := o.Follow.validate(); err != nil {
			return err
		}
		if err := checkShadow(o.Shadow, o.Select.Scope); err != nil {
			return err
		}
		if o.Server.URL == "" {
			for _, name := range serverOnlyFlags {
				if set[name] {
					return exitcode.Errorf(exitcode.Usage, "--%s needs an execution service: set --server or ZOF_SERVER (without one the run executes here, on the embedded engine)", name)
				}
			}
		}
		if runF != nil {
			return runF(ctx, o)
		}
		return runRun(ctx, o)
	}
	return c
}

func runRun(ctx context.Context, o *runOptions) error {
	opts := o.Follow.runner(o.IO, o.Env)
	opts.Select = o.Select.runner(o.IO, o.Env)
	opts.JUnitLocations = o.JUnitLocations
	ciCtx := ci.Detect(o.Env.Lookup)
	opts.CI = ciCtx
	shadowLog := o.IO.Out
	if o.Detach {
		shadowLog = o.IO.ErrOut // stdout carries only the run id
	}
	opts.Select.Shadow = o.Shadow.decide(ciCtx, shadowLog)
	if ciCtx.Provider == ci.GitLab {
		log := o.IO.Out
		if o.Detach {
			log = o.IO.ErrOut // stdout carries only the run id
		}
		if j := detectGitLab(o.Env, log); j != nil {
			// --base, ZOF_BASE and --changed-files are the person's own choice of change.
			if o.Select.Base == "" && o.Select.ChangedFiles == "" {
				opts.Select.Diff = j.diffSource(filepath.Dir(o.Select.Suite), o.Env.List())
			}
			opts.Reporters = j.reporters
		}
	}
	var (
		v   gate.Verdict
		err error
	)
	if o.Server.URL == "" {
		v, err = runner.RunEmbedded(ctx, opts)
	} else {
		cl, cerr := o.Server.client()
		if cerr != nil {
			return cerr
		}
		v, err = runner.RunRemote(ctx, opts, runner.RemoteOptions{
			Client:         cl,
			IdempotencyKey: o.IdempotencyKey,
			Supersede:      o.Supersede,
			Detach:         o.Detach,
			CI:             ciCtx,
			Coverage:       o.Coverage,
		})
	}
	if err != nil {
		return err
	}
	return exitcode.Reported(exitcode.OfVerdict(v))
}
