package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/client"
	"github.com/zof-ai/zof-ci/internal/exitcode"
	"github.com/zof-ai/zof-ci/internal/reporters"
	"github.com/zof-ai/zof-ci/internal/runner"
)

// newClient builds the API client; a missing server is a usage error.
func newClient(server, token string) (*client.Client, error) {
	if server == "" {
		return nil, exitcode.Errorf(exitcode.Usage, "no execution service: set --server or ZOF_SERVER")
	}
	return client.New(server, token, client.Options{UserAgent: "zof/" + version})
}

// serverFlags are --server and --token, with ZOF_SERVER and ZOF_TOKEN.
type serverFlags struct{ server, token string }

func (s *serverFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.server, "server", "", "execution service URL (env ZOF_SERVER)")
	fs.StringVar(&s.token, "token", "", "execution service token (env ZOF_TOKEN)")
}

func (s *serverFlags) client(fs *flag.FlagSet, env Env) (*client.Client, error) {
	set := setFlags(fs)
	fromEnv(set, "server", env, "ZOF_SERVER", &s.server)
	fromEnv(set, "token", env, "ZOF_TOKEN", &s.token)
	return newClient(s.server, s.token)
}

// followFlags are the flags of following a run: watch and rerun --follow.
type followFlags struct {
	timeout, pollInterval              time.Duration
	junit, json, failOn                string
	noStream                           bool
	cancelOnInterrupt, cancelOnTimeout bool
}

func (f *followFlags) register(fs *flag.FlagSet, cancelOnInterrupt bool) {
	fs.DurationVar(&f.timeout, "timeout", 30*time.Minute, "overall deadline for a verdict; then exit 4")
	fs.BoolVar(&f.noStream, "no-stream", false, "poll instead of streaming events")
	fs.DurationVar(&f.pollInterval, "poll-interval", runner.DefaultPollInterval, "polling interval")
	fs.StringVar(&f.junit, "junit", "", "write JUnit XML to this path")
	fs.StringVar(&f.json, "json", "", "write the run result as JSON to this path")
	fs.StringVar(&f.failOn, "fail-on", "", "comma-separated statuses that fail the gate: failed,blocked,cancelled,timeout (default: all four)")
	fs.BoolVar(&f.cancelOnInterrupt, "cancel-on-interrupt", cancelOnInterrupt, "cancel the run on SIGINT/SIGTERM")
	fs.BoolVar(&f.cancelOnTimeout, "cancel-on-timeout", false, "cancel the run when --timeout passes")
}

func (f *followFlags) options(a *app) (runner.RunOptions, error) {
	if f.timeout <= 0 {
		return runner.RunOptions{}, exitcode.Errorf(exitcode.Usage, "--timeout %s: must be positive, e.g. 30m", f.timeout)
	}
	if f.pollInterval <= 0 {
		return runner.RunOptions{}, exitcode.Errorf(exitcode.Usage, "--poll-interval %s: must be positive, e.g. 2s", f.pollInterval)
	}
	var failOn []string
	if f.failOn != "" {
		failOn = strings.Split(f.failOn, ",")
	}
	tty, color, gha := reporters.Terminal(isTerminal(a.stdout), a.env.Lookup)
	return runner.RunOptions{
		Timeout: f.timeout, JUnit: f.junit, JSON: f.json, FailOn: failOn,
		CancelOnInterrupt: f.cancelOnInterrupt, CancelOnTimeout: f.cancelOnTimeout,
		NoStream: f.noStream, PollInterval: f.pollInterval,
		Stdout: a.stdout, Stderr: a.stderr, TTY: tty, Color: color, GitHubActions: gha,
		ExitOf: exitcode.Report,
	}, nil
}

// parseArgs parses flags that may come before or after the positional arguments
// ("zof watch RUN --server X" as well as "zof watch --server X RUN").
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parse(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// oneRun takes the RUN argument.
func oneRun(c *command, pos []string) (string, error) {
	switch {
	case len(pos) == 0:
		return "", exitcode.Errorf(exitcode.Usage, "name the run: zof %s [flags] RUN (zof runs lists them)", c.name)
	case len(pos) > 1:
		return "", exitcode.Errorf(exitcode.Usage, "unexpected argument %q: zof %s takes one run id", pos[1], c.name)
	}
	return pos[0], nil
}

// runAndClient parses a command that names one run: its flags, the run id and
// the client for the server flags.
func runAndClient(c *command, fs *flag.FlagSet, sf *serverFlags, a *app, args []string) (string, *client.Client, error) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return "", nil, err
	}
	id, err := oneRun(c, pos)
	if err != nil {
		return "", nil, err
	}
	cl, err := sf.client(fs, a.env)
	if err != nil {
		return "", nil, err
	}
	return id, cl, nil
}

func watchCommand() *command {
	c := &command{
		name:  "watch",
		args:  "RUN",
		short: "attach to an existing run: same following, reports and exit code as run",
		long: "Follows the run live to its verdict, writes the reports and exits with the gate's code\n" +
			"(fail_on is --fail-on, or all four outcomes). Ctrl-C stops watching and leaves the run\n" +
			"alone unless --cancel-on-interrupt: watching is reading.",
		example: "zof watch --server https://zof.example.com run_7kq2m4x5 --junit junit.xml",
	}
	c.run = func(ctx context.Context, a *app, args []string) error {
		fs := newFlags(a, c)
		var sf serverFlags
		var ff followFlags
		sf.register(fs)
		ff.register(fs, false)
		id, cl, err := runAndClient(c, fs, &sf, a, args)
		if err != nil {
			return err
		}
		opts, err := ff.options(a)
		if err != nil {
			return err
		}
		v, err := runner.Watch(ctx, opts, runner.WatchOptions{Client: cl, RunID: id})
		if err != nil {
			return err
		}
		return exitcode.Reported(exitcode.OfVerdict(v))
	}
	return c
}

func statusCommand() *command {
	c := &command{
		name:  "status",
		args:  "RUN",
		short: "show a run's status on a server",
		long: "One screen: status, substate, source, members and the failing steps. Exits 0 when the run\n" +
			"was shown, whatever its status. With --exit-status it exits with the gate's code instead:\n" +
			"for a finished run 0-3 as run would (fail_on: all four), for an unfinished one 4 (no verdict yet).",
		example: "zof status --server https://zof.example.com run_7kq2m4x5 --output json",
	}
	c.run = func(ctx context.Context, a *app, args []string) error {
		fs := newFlags(a, c)
		var sf serverFlags
		sf.register(fs)
		var output string
		var exitStatus bool
		fs.StringVar(&output, "output", "text", "text | json")
		fs.BoolVar(&exitStatus, "exit-status", false, "exit with the gate's code (0-3 finished, 4 unfinished)")
		id, cl, err := runAndClient(c, fs, &sf, a, args)
		if err != nil {
			return err
		}
		if output != "text" && output != "json" {
			return exitcode.Errorf(exitcode.Usage, "--output %q: use text or json", output)
		}
		run, err := cl.Get(ctx, id)
		if err != nil {
			return err
		}
		if run.URL == "" {
			run.URL = cl.RunURL(run.ID)
		}
		if output == "json" {
			err = writeJSON(a.stdout, run)
		} else {
			err = runner.WriteStatus(a.stdout, run, time.Now())
		}
		if err != nil {
			return err
		}
		if !exitStatus {
			return nil
		}
		return exitcode.Reported(exitcode.OfKind(runner.StatusKind(run)))
	}
	return c
}

func cancelCommand() *command {
	c := &command{
		name:    "cancel",
		args:    "RUN",
		short:   "cancel a run on a server",
		long:    "A queued run is cancelled at once; a running run stops at its next checkpoint (within seconds).\nA finished run cannot be cancelled (exit 64).",
		example: "zof cancel --server https://zof.example.com run_7kq2m4x5 --reason 'wrong environment'",
	}
	c.run = func(ctx context.Context, a *app, args []string) error {
		fs := newFlags(a, c)
		var sf serverFlags
		sf.register(fs)
		var reason string
		fs.StringVar(&reason, "reason", "", "why, recorded on the run (default: cancelled by request)")
		id, cl, err := runAndClient(c, fs, &sf, a, args)
		if err != nil {
			return err
		}
		run, err := cl.Cancel(ctx, id, reason)
		if err != nil {
			return err
		}
		if run.Status.Terminal() {
			fmt.Fprintf(a.stdout, "run %s %s\n", run.ID, strings.ToLower(run.Status.Display()))
		} else {
			fmt.Fprintf(a.stdout, "run %s: cancel requested (it was %s); it stops within seconds. Follow it with: zof watch %s\n", run.ID, run.Status.Display(), run.ID)
		}
		return nil
	}
	return c
}

func rerunCommand() *command {
	c := &command{
		name:  "rerun",
		args:  "RUN",
		short: "start a new run with the same definition (goes to the back of the queue)",
		long: "Prints the new run's id on stdout. With --follow it then follows the new run like run does\n" +
			"(reports, exit code; Ctrl-C cancels it unless --cancel-on-interrupt=false).",
		example: "zof rerun --server https://zof.example.com run_7kq2m4x5 --follow",
	}
	c.run = func(ctx context.Context, a *app, args []string) error {
		fs := newFlags(a, c)
		var sf serverFlags
		var ff followFlags
		sf.register(fs)
		ff.register(fs, true)
		var follow bool
		fs.BoolVar(&follow, "follow", false, "follow the new run to its verdict and exit with the gate's code")
		id, cl, err := runAndClient(c, fs, &sf, a, args)
		if err != nil {
			return err
		}
		opts, err := ff.options(a)
		if err != nil {
			return err
		}
		run, err := cl.Rerun(ctx, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stderr, "run %s reruns %s\n", run.ID, id)
		fmt.Fprintln(a.stdout, run.ID)
		if !follow {
			return nil
		}
		v, err := runner.Watch(ctx, opts, runner.WatchOptions{Client: cl, RunID: run.ID})
		if err != nil {
			return err
		}
		return exitcode.Reported(exitcode.OfVerdict(v))
	}
	return c
}

// statusList is a repeatable --status flag that also takes comma-separated values.
type statusList []api.Status

func (s *statusList) String() string {
	out := make([]string, len(*s))
	for i, v := range *s {
		out[i] = string(v)
	}
	return strings.Join(out, ",")
}

func (s *statusList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		st := api.Status(strings.ToLower(strings.TrimSpace(p)))
		if !st.Valid() {
			return fmt.Errorf("unknown status %q: use %s", p, joinStatuses())
		}
		*s = append(*s, st)
	}
	return nil
}

func joinStatuses() string {
	out := make([]string, len(api.Statuses))
	for i, s := range api.Statuses {
		out[i] = string(s)
	}
	return strings.Join(out, ", ")
}

func runsCommand() *command {
	c := &command{
		name:    "runs",
		short:   "list runs on a server, newest first",
		long:    "--status may repeat (or take a comma-separated list). --output json prints the page as the API returns it.",
		example: "zof runs --server https://zof.example.com --status queued --status initial",
	}
	c.run = func(ctx context.Context, a *app, args []string) error {
		fs := newFlags(a, c)
		var sf serverFlags
		sf.register(fs)
		var (
			statuses                          statusList
			project, environment, cursor, out string
			limit                             int
		)
		fs.Var(&statuses, "status", "only runs with this status (repeatable): "+joinStatuses())
		fs.StringVar(&project, "project", "", "only runs of this project")
		fs.StringVar(&environment, "environment", "", "only runs against this environment")
		fs.IntVar(&limit, "limit", 20, "at most this many runs")
		fs.StringVar(&cursor, "cursor", "", "the next page, as printed by the previous one")
		fs.StringVar(&out, "output", "text", "text | json")
		pos, err := parseArgs(fs, args)
		if err != nil {
			return err
		}
		if len(pos) > 0 {
			return exitcode.Errorf(exitcode.Usage, "unexpected argument %q: runs takes only flags", pos[0])
		}
		if out != "text" && out != "json" {
			return exitcode.Errorf(exitcode.Usage, "--output %q: use text or json", out)
		}
		if limit <= 0 {
			return exitcode.Errorf(exitcode.Usage, "--limit %d: must be positive", limit)
		}
		cl, err := sf.client(fs, a.env)
		if err != nil {
			return err
		}
		list, err := cl.List(ctx, client.ListOptions{Statuses: statuses, Project: project, Environment: environment, Limit: limit, Cursor: cursor})
		if err != nil {
			return err
		}
		if out == "json" {
			return writeJSON(a.stdout, list)
		}
		return runner.WriteRunList(a.stdout, list, time.Now())
	}
	return c
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
