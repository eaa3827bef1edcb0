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
	"github.com/zof-ai/zof-ci/internal/cli/iostreams"
	"github.com/zof-ai/zof-ci/internal/exitcode"
	"github.com/zof-ai/zof-ci/internal/runner"
)

// newClient builds the API client; a missing server is a usage error.
func newClient(server, token string) (*client.Client, error) {
	if server == "" {
		return nil, exitcode.Errorf(exitcode.Usage, "no execution service: set --server or ZOF_SERVER")
	}
	return client.New(server, token, client.Options{UserAgent: "zof/" + version})
}

// serverOptions are --server and --token, with ZOF_SERVER and ZOF_TOKEN.
type serverOptions struct{ URL, Token string }

// register declares --server and --token; note ends --server's usage.
func (s *serverOptions) register(fs *flag.FlagSet, note string) {
	fs.StringVar(&s.URL, "server", "", "execution service URL (env ZOF_SERVER"+note+")")
	fs.StringVar(&s.Token, "token", "", "execution service token (env ZOF_TOKEN)")
}

func (s *serverOptions) fromEnv(set map[string]bool, env Env) {
	fromEnv(set, "server", env, "ZOF_SERVER", &s.URL)
	fromEnv(set, "token", env, "ZOF_TOKEN", &s.Token)
}

func (s *serverOptions) client() (*client.Client, error) { return newClient(s.URL, s.Token) }

// oneRun is the parse step shared by the commands that name one run: the RUN
// argument, and the server options from the environment; a missing server is a
// usage error before anything runs.
func oneRun(c *command, fs *flag.FlagSet, pos []string, env Env, s *serverOptions) (string, error) {
	switch {
	case len(pos) == 0:
		return "", exitcode.Errorf(exitcode.Usage, "name the run: zof %s [flags] RUN (zof runs lists them)", c.name)
	case len(pos) > 1:
		return "", exitcode.Errorf(exitcode.Usage, "unexpected argument %q: zof %s takes one run id", pos[1], c.name)
	}
	s.fromEnv(setFlags(fs), env)
	if s.URL == "" {
		return "", exitcode.Errorf(exitcode.Usage, "no execution service: set --server or ZOF_SERVER")
	}
	return pos[0], nil
}

// watchOptions are zof watch's.
type watchOptions struct {
	IO     *iostreams.IOStreams
	Env    Env
	Server serverOptions
	Follow followOptions
	RunID  string
}

func newCmdWatch(f *Factory, runF func(context.Context, *watchOptions) error) *command {
	o := &watchOptions{IO: f.IO, Env: f.Env}
	c := &command{
		name:  "watch",
		args:  "RUN",
		short: "attach to an existing run: same following, reports and exit code as run",
		long: "Follows the run live to its verdict, writes the reports and exits with the gate's code\n" +
			"(fail_on is --fail-on, or all four outcomes). Ctrl-C stops watching and leaves the run\n" +
			"alone unless --cancel-on-interrupt: watching is reading.",
		example: "zof watch --server https://zof.example.com run_7kq2m4x5 --junit junit.xml",
	}
	c.flags = func(fs *flag.FlagSet) {
		o.Server.register(fs, "")
		o.Follow.register(fs, false, false)
	}
	c.run = func(ctx context.Context, fs *flag.FlagSet, pos []string) (err error) {
		if o.RunID, err = oneRun(c, fs, pos, f.Env, &o.Server); err != nil {
			return err
		}
		if err := o.Follow.validate(); err != nil {
			return err
		}
		if runF != nil {
			return runF(ctx, o)
		}
		return watchRun(ctx, o)
	}
	return c
}

func watchRun(ctx context.Context, o *watchOptions) error {
	cl, err := o.Server.client()
	if err != nil {
		return err
	}
	v, err := runner.Watch(ctx, o.Follow.runner(o.IO, o.Env), runner.WatchOptions{Client: cl, RunID: o.RunID})
	if err != nil {
		return err
	}
	return exitcode.Reported(exitcode.OfVerdict(v))
}

// statusOptions are zof status's.
type statusOptions struct {
	IO         *iostreams.IOStreams
	Server     serverOptions
	RunID      string
	Output     string
	ExitStatus bool
}

func newCmdStatus(f *Factory, runF func(context.Context, *statusOptions) error) *command {
	o := &statusOptions{IO: f.IO}
	c := &command{
		name:  "status",
		args:  "RUN",
		short: "show a run's status on a server",
		long: "One screen: status, substate, source, members and the failing steps. Exits 0 when the run\n" +
			"was shown, whatever its status. With --exit-status it exits with the gate's code instead:\n" +
			"for a finished run 0-3 as run would (fail_on: all four), for an unfinished one 4 (no verdict yet).",
		example: "zof status --server https://zof.example.com run_7kq2m4x5 --output json",
	}
	c.flags = func(fs *flag.FlagSet) {
		o.Server.register(fs, "")
		fs.StringVar(&o.Output, "output", "text", "text | json")
		fs.BoolVar(&o.ExitStatus, "exit-status", false, "exit with the gate's code (0-3 finished, 4 unfinished)")
	}
	c.run = func(ctx context.Context, fs *flag.FlagSet, pos []string) (err error) {
		if o.RunID, err = oneRun(c, fs, pos, f.Env, &o.Server); err != nil {
			return err
		}
		if err := checkOutput(o.Output); err != nil {
			return err
		}
		if runF != nil {
			return runF(ctx, o)
		}
		return statusRun(ctx, o)
	}
	return c
}

func statusRun(ctx context.Context, o *statusOptions) error {
	cl, err := o.Server.client()
	if err != nil {
		return err
	}
	run, err := cl.Get(ctx, o.RunID)
	if err != nil {
		return err
	}
	if run.URL == "" {
		run.URL = cl.RunURL(run.ID)
	}
	if o.Output == "json" {
		err = writeJSON(o.IO.Out, run)
	} else {
		err = runner.WriteStatus(o.IO.Out, run, time.Now())
	}
	if err != nil {
		return err
	}
	if !o.ExitStatus {
		return nil
	}
	return exitcode.Reported(exitcode.OfKind(runner.StatusKind(run)))
}

// cancelOptions are zof cancel's.
type cancelOptions struct {
	IO     *iostreams.IOStreams
	Server serverOptions
	RunID  string
	Reason string
}

func newCmdCancel(f *Factory, runF func(context.Context, *cancelOptions) error) *command {
	o := &cancelOptions{IO: f.IO}
	c := &command{
		name:    "cancel",
		args:    "RUN",
		short:   "cancel a run on a server",
		long:    "A queued run is cancelled at once; a running run stops at its next checkpoint (within seconds).\nA finished run cannot be cancelled (exit 64).",
		example: "zof cancel --server https://zof.example.com run_7kq2m4x5 --reason 'wrong environment'",
	}
	c.flags = func(fs *flag.FlagSet) {
		o.Server.register(fs, "")
		fs.StringVar(&o.Reason, "reason", "", "why, recorded on the run (default: cancelled by request)")
	}
	c.run = func(ctx context.Context, fs *flag.FlagSet, pos []string) (err error) {
		if o.RunID, err = oneRun(c, fs, pos, f.Env, &o.Server); err != nil {
			return err
		}
		if runF != nil {
			return runF(ctx, o)
		}
		return cancelRun(ctx, o)
	}
	return c
}

func cancelRun(ctx context.Context, o *cancelOptions) error {
	cl, err := o.Server.client()
	if err != nil {
		return err
	}
	run, err := cl.Cancel(ctx, o.RunID, o.Reason)
	if err != nil {
		return err
	}
	if run.Status.Terminal() {
		fmt.Fprintf(o.IO.Out, "run %s %s\n", run.ID, strings.ToLower(run.Status.Display()))
	} else {
		fmt.Fprintf(o.IO.Out, "run %s: cancel requested (it was %s); it stops within seconds. Follow it with: zof watch %s\n", run.ID, run.Status.Display(), run.ID)
	}
	return nil
}

// rerunOptions are zof rerun's.
type rerunOptions struct {
	IO     *iostreams.IOStreams
	Env    Env
	Server serverOptions
	Follow followOptions
	RunID  string
	// Follows the new run to its verdict (with Follow's options).
	FollowRun bool
}

func newCmdRerun(f *Factory, runF func(context.Context, *rerunOptions) error) *command {
	o := &rerunOptions{IO: f.IO, Env: f.Env}
	c := &command{
		name:  "rerun",
		args:  "RUN",
		short: "start a new run with the same definition (goes to the back of the queue)",
		long: "Prints the new run's id on stdout. With --follow it then follows the new run like run does\n" +
			"(reports, exit code; Ctrl-C cancels it unless --cancel-on-interrupt=false).",
		example: "zof rerun --server https://zof.example.com run_7kq2m4x5 --follow",
	}
	c.flags = func(fs *flag.FlagSet) {
		o.Server.register(fs, "")
		o.Follow.register(fs, false, true)
		fs.BoolVar(&o.FollowRun, "follow", false, "follow the new run to its verdict and exit with the gate's code")
	}
	c.run = func(ctx context.Context, fs *flag.FlagSet, pos []string) (err error) {
		if o.RunID, err = oneRun(c, fs, pos, f.Env, &o.Server); err != nil {
			return err
		}
		if err := o.Follow.validate(); err != nil {
			return err
		}
		if runF != nil {
			return runF(ctx, o)
		}
		return rerunRun(ctx, o)
	}
	return c
}

func rerunRun(ctx context.Context, o *rerunOptions) error {
	cl, err := o.Server.client()
	if err != nil {
		return err
	}
	run, err := cl.Rerun(ctx, o.RunID)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.IO.ErrOut, "run %s reruns %s\n", run.ID, o.RunID)
	fmt.Fprintln(o.IO.Out, run.ID)
	if !o.FollowRun {
		return nil
	}
	v, err := runner.Watch(ctx, o.Follow.runner(o.IO, o.Env), runner.WatchOptions{Client: cl, RunID: run.ID})
	if err != nil {
		return err
	}
	return exitcode.Reported(exitcode.OfVerdict(v))
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

// runsOptions are zof runs's.
type runsOptions struct {
	IO     *iostreams.IOStreams
	Server serverOptions
	List   client.ListOptions
	Output string
}

func newCmdRuns(f *Factory, runF func(context.Context, *runsOptions) error) *command {
	o := &runsOptions{IO: f.IO}
	c := &command{
		name:    "runs",
		short:   "list runs on a server, newest first",
		long:    "--status may repeat (or take a comma-separated list). --output json prints the page as the API returns it.",
		example: "zof runs --server https://zof.example.com --status queued --status initial",
	}
	c.flags = func(fs *flag.FlagSet) {
		o.Server.register(fs, "")
		fs.Var((*statusList)(&o.List.Statuses), "status", "only runs with this status (repeatable): "+joinStatuses())
		fs.StringVar(&o.List.Project, "project", "", "only runs of this project")
		fs.StringVar(&o.List.Environment, "environment", "", "only runs against this environment")
		fs.IntVar(&o.List.Limit, "limit", 20, "at most this many runs")
		fs.StringVar(&o.List.Cursor, "cursor", "", "the next page, as printed by the previous one")
		fs.StringVar(&o.Output, "output", "text", "text | json")
	}
	c.run = func(ctx context.Context, fs *flag.FlagSet, pos []string) error {
		if err := noArgs(c, pos, ""); err != nil {
			return err
		}
		if err := checkOutput(o.Output); err != nil {
			return err
		}
		if o.List.Limit <= 0 {
			return exitcode.Errorf(exitcode.Usage, "--limit %d: must be positive", o.List.Limit)
		}
		o.Server.fromEnv(setFlags(fs), f.Env)
		if o.Server.URL == "" {
			return exitcode.Errorf(exitcode.Usage, "no execution service: set --server or ZOF_SERVER")
		}
		if runF != nil {
			return runF(ctx, o)
		}
		return runsRun(ctx, o)
	}
	return c
}

func runsRun(ctx context.Context, o *runsOptions) error {
	cl, err := o.Server.client()
	if err != nil {
		return err
	}
	list, err := cl.List(ctx, o.List)
	if err != nil {
		return err
	}
	if o.Output == "json" {
		return writeJSON(o.IO.Out, list)
	}
	return runner.WriteRunList(o.IO.Out, list, time.Now())
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
