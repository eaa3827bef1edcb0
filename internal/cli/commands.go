package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/internal/ci"
	"github.com/zof-ai/zof-ci/internal/exitcode"
	"github.com/zof-ai/zof-ci/internal/reporters"
	"github.com/zof-ai/zof-ci/internal/runner"
)

// version is stamped at build time: -ldflags "-X github.com/zof-ai/zof-ci/cli.version=v1.2.3".
var version = "dev"

func versionCommand() *command {
	c := &command{name: "version", short: "print the version, commit and Go version", example: "zof version"}
	c.run = func(ctx context.Context, a *app, args []string) error {
		fs := newFlags(a, c)
		if err := parse(fs, args); err != nil {
			return err
		}
		commit := "unknown"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					commit = s.Value
				}
			}
		}
		fmt.Fprintf(a.stdout, "zof %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	}
	return c
}

// selectFlags are the flags shared by run and plan: which suite, which cases.
type selectFlags struct {
	suite, scope, env, base, changedFiles string
}

func (s *selectFlags) register(fs interface {
	StringVar(*string, string, string, string)
}) {
	fs.StringVar(&s.suite, "suite", "zof.yaml", "suite file (env ZOF_SUITE)")
	fs.StringVar(&s.scope, "scope", "all", "all | smoke | changed | tag:NAME | set:NAME | id:A,B (env ZOF_SCOPE)")
	fs.StringVar(&s.env, "env", "", "environment from the suite file (env ZOF_ENV; default: the suite's defaults.environment)")
	fs.StringVar(&s.base, "base", "", "base ref for --scope changed (env ZOF_BASE; default: the upstream default branch)")
	fs.StringVar(&s.changedFiles, "changed-files", "", "file with one changed path per line, or - for stdin; overrides diff acquisition")
}

func (s *selectFlags) fromEnv(set map[string]bool, env Env) {
	fromEnv(set, "suite", env, "ZOF_SUITE", &s.suite)
	fromEnv(set, "scope", env, "ZOF_SCOPE", &s.scope)
	fromEnv(set, "env", env, "ZOF_ENV", &s.env)
	fromEnv(set, "base", env, "ZOF_BASE", &s.base)
}

func (s *selectFlags) options(a *app) runner.SelectOptions {
	return runner.SelectOptions{
		SuitePath:    s.suite,
		Scope:        s.scope,
		Environment:  s.env,
		Base:         s.base,
		ChangedFiles: s.changedFiles,
		Stdin:        a.stdin,
		Lookup:       a.env.Lookup,
		Environ:      a.env.List(),
	}
}

func validateCommand() *command {
	c := &command{
		name:    "validate",
		short:   "check a suite file; every problem as file:line:col: message",
		long:    "Exits 0 when the file is valid (warnings are shown but do not fail), 64 when it is not.",
		example: "zof validate --suite zof.yaml",
	}
	c.run = func(ctx context.Context, a *app, args []string) error {
		fs := newFlags(a, c)
		var suitePath, env string
		fs.StringVar(&suitePath, "suite", "zof.yaml", "suite file (env ZOF_SUITE)")
		fs.StringVar(&env, "env", "", "environment whose ${VAR}s must be set (env ZOF_ENV; default: defaults.environment)")
		if err := parse(fs, args); err != nil {
			return err
		}
		set := setFlags(fs)
		fromEnv(set, "suite", a.env, "ZOF_SUITE", &suitePath)
		fromEnv(set, "env", a.env, "ZOF_ENV", &env)
		return runner.Validate(a.stdout, a.stderr, suitePath, env, a.env.Lookup)
	}
	return c
}

func planCommand() *command {
	c := &command{
		name:  "plan",
		short: "show which cases would run and why; nothing is submitted",
		long: "The selection only. --output json prints the same as stable JSON (schema zof.plan/v1, see\n" +
			"docs/plan-json.md). Exits 0 when cases are selected, 5 when none are and gate.on_empty is fail.",
		example: "zof plan --scope changed --base origin/main",
	}
	c.run = func(ctx context.Context, a *app, args []string) error {
		fs := newFlags(a, c)
		var sf selectFlags
		sf.register(fs)
		var output string
		fs.StringVar(&output, "output", "text", "text | json")
		if err := parse(fs, args); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return exitcode.Errorf(exitcode.Usage, "unexpected argument %q: plan takes only flags", fs.Arg(0))
		}
		sf.fromEnv(setFlags(fs), a.env)
		if output != "text" && output != "json" {
			return exitcode.Errorf(exitcode.Usage, "--output %q: use text or json", output)
		}
		p, err := runner.MakePlan(ctx, sf.options(a))
		if err != nil {
			return err
		}
		if output == "json" {
			err = runner.WritePlanJSON(a.stdout, p)
		} else {
			err = runner.WritePlanText(a.stdout, p)
		}
		if err != nil {
			return exitcode.Wrap(exitcode.Usage, fmt.Errorf("writing the plan: %w", err))
		}
		return exitcode.Reported(p.Exit())
	}
	return c
}

func runCommand() *command {
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
	c.run = func(ctx context.Context, a *app, args []string) error {
		fs := newFlags(a, c)
		var sf selectFlags
		sf.register(fs)
		var (
			server, token, junit, jsonPath, failOn, idemKey string
			timeout, pollInterval                           time.Duration
			noStream, supersede, detach                     bool
			cancelOnInterrupt, cancelOnTimeout              bool
			junitLocations                                  bool
		)
		fs.StringVar(&server, "server", "", "execution service URL (env ZOF_SERVER); empty: embedded engine")
		fs.StringVar(&token, "token", "", "execution service token (env ZOF_TOKEN)")
		fs.DurationVar(&timeout, "timeout", 30*time.Minute, "overall deadline for a verdict; then exit 4")
		fs.BoolVar(&noStream, "no-stream", false, "poll instead of streaming events (server runs)")
		fs.DurationVar(&pollInterval, "poll-interval", 2*time.Second, "polling interval (server runs)")
		fs.StringVar(&junit, "junit", "", "write JUnit XML to this path")
		gitlabCI, _ := a.env.Lookup("GITLAB_CI")
		fs.BoolVar(&junitLocations, "junit-locations", gitlabCI == "true", "add file and line attributes to JUnit testcases, read by GitLab and test-report actions but outside the Jenkins XSD (default: on in GitLab CI)")
		fs.StringVar(&jsonPath, "json", "", "write the run result as JSON to this path")
		fs.StringVar(&failOn, "fail-on", "", "comma-separated statuses that fail the gate: failed,blocked,cancelled,timeout (default: the suite's gate.fail_on)")
		fs.BoolVar(&supersede, "supersede", false, "cancel older runs of the same concurrency group (server runs)")
		fs.BoolVar(&detach, "detach", false, "submit, print the run id, exit 0 (server runs)")
		fs.BoolVar(&cancelOnInterrupt, "cancel-on-interrupt", true, "cancel the remote run on SIGINT/SIGTERM (an embedded run always stops)")
		fs.BoolVar(&cancelOnTimeout, "cancel-on-timeout", false, "cancel the run when --timeout passes (the embedded engine always stops)")
		fs.StringVar(&idemKey, "idempotency-key", "", "override the idempotency key derived from the CI context (server runs)")
		if err := parse(fs, args); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return exitcode.Errorf(exitcode.Usage, "unexpected argument %q: run takes only flags", fs.Arg(0))
		}
		set := setFlags(fs)
		sf.fromEnv(set, a.env)
		fromEnv(set, "server", a.env, "ZOF_SERVER", &server)
		fromEnv(set, "token", a.env, "ZOF_TOKEN", &token)
		if timeout <= 0 {
			return exitcode.Errorf(exitcode.Usage, "--timeout %s: must be positive, e.g. 30m", timeout)
		}
		if pollInterval <= 0 {
			return exitcode.Errorf(exitcode.Usage, "--poll-interval %s: must be positive, e.g. 2s", pollInterval)
		}
		var failOnList []string
		if failOn != "" {
			failOnList = strings.Split(failOn, ",")
		}
		tty, color, gha := reporters.Terminal(isTerminal(a.stdout), a.env.Lookup)
		opts := runner.RunOptions{
			Select:            sf.options(a),
			Timeout:           timeout,
			JUnit:             junit,
			JUnitLocations:    junitLocations,
			JSON:              jsonPath,
			FailOn:            failOnList,
			CancelOnInterrupt: cancelOnInterrupt,
			CancelOnTimeout:   cancelOnTimeout,
			NoStream:          noStream,
			PollInterval:      pollInterval,
			Stdout:            a.stdout,
			Stderr:            a.stderr,
			TTY:               tty,
			Color:             color,
			GitHubActions:     gha,
		}
		ciCtx := ci.Detect(a.env.Lookup)
		opts.CI = ciCtx
		if ciCtx.Provider == ci.GitLab {
			log := a.stdout
			if detach {
				log = a.stderr // stdout carries only the run id
			}
			if j := detectGitLab(a.env, log); j != nil {
				// --base, ZOF_BASE and --changed-files are the person's own choice of change.
				if sf.base == "" && sf.changedFiles == "" {
					opts.Select.Diff = j.diffSource(filepath.Dir(sf.suite), a.env.List())
				}
				opts.Reporters = j.reporters
			}
		}
		var (
			code exitcode.Code
			err  error
		)
		if server == "" {
			for _, f := range []string{"detach", "supersede", "idempotency-key", "no-stream", "poll-interval", "cancel-on-timeout", "token"} {
				if set[f] {
					return exitcode.Errorf(exitcode.Usage, "--%s needs an execution service: set --server or ZOF_SERVER (without one the run executes here, on the embedded engine)", f)
				}
			}
			code, err = runner.RunEmbedded(ctx, opts)
		} else {
			cl, cerr := newClient(server, token)
			if cerr != nil {
				return cerr
			}
			code, err = runner.RunRemote(ctx, opts, runner.RemoteOptions{
				Client:         cl,
				IdempotencyKey: idemKey,
				Supersede:      supersede,
				Detach:         detach,
				CI:             ciCtx,
			})
		}
		if err != nil {
			return err
		}
		return exitcode.Reported(code)
	}
	return c
}

// isTerminal reports whether w is a character device (a terminal), without a
// dependency: CI logs are pipes and files, so plain lines are the default.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
