package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	gh "github.com/google/go-github/v62/github"
	"github.com/sethvargo/go-githubactions"

	"github.com/zof-ai/zof-ci/internal/ci"
	cigithub "github.com/zof-ai/zof-ci/internal/ci/github"
	"github.com/zof-ai/zof-ci/internal/cli/iostreams"
	"github.com/zof-ai/zof-ci/internal/diff"
	"github.com/zof-ai/zof-ci/internal/exitcode"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/reporters"
	ghreport "github.com/zof-ai/zof-ci/internal/reporters/github"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/runner"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// defaultActionTimeout is the action's `timeout` when the input is empty: zof run's default.
const defaultActionTimeout = 30 * time.Minute

// actionOptions are zof action's: it has no flags, its inputs are INPUT_*
// variables of Env (read by runAction, which masks the secrets among them first).
type actionOptions struct {
	IO  *iostreams.IOStreams
	Env Env
}

func newCmdAction(f *Factory, runF func(context.Context, *actionOptions) error) *command {
	o := &actionOptions{IO: f.IO, Env: f.Env}
	c := &command{
		name:  "action",
		short: "the GitHub Action's entrypoint: reads the action's inputs and the event, then does run",
		long: "The container action's entrypoint (action.yml). The inputs come from the INPUT_* variables\n" +
			"the runner sets (with: in the workflow), the change from the workflow's event\n" +
			"(GITHUB_EVENT_PATH: a pull request's files or a push's comparison, from GitHub's API), and\n" +
			"the reports go to a check run with annotations (or workflow-command annotations without\n" +
			"checks: write), the step summary and the step outputs. The job fails with the gate's exit\n" +
			"code. Outside GitHub Actions it refuses (exit 64): use zof run there. See docs/ci.md.",
		example: "uses: zof-ai/zof-ci@v1   # a workflow step, with: {suite: zof.yaml, environment: staging}",
	}
	c.run = func(ctx context.Context, fs *flag.FlagSet, pos []string) error {
		if len(pos) > 0 {
			return exitcode.Errorf(exitcode.Usage, "unexpected argument %q: zof action takes its inputs from INPUT_* variables (the step's with:), not from arguments", pos[0])
		}
		if runF != nil {
			return runF(ctx, o)
		}
		return runAction(ctx, o)
	}
	return c
}

// action is one `zof action`: the inputs, the event and what was said on the way.
type action struct {
	io     *iostreams.IOStreams
	env    Env
	getenv func(string) string
	in     *cigithub.Inputs
	mask   *secret.Masker // the action's own secrets (token, github-token)

	workspace   string
	ev          *cigithub.Event
	owner, repo string
	checkSHA    string
	gh          *gh.Client
	ghErr       error
	// notices are said in the log as they happen and repeated in the step summary.
	notices []string
	// reported is set once the step outputs were written from the run's result.
	reported bool
}

// runAction is `zof action`: the steps of the GitHub Action in the order that keeps
// secrets out of the log and git usable, then zof run with the action's reporters.
func runAction(ctx context.Context, o *actionOptions) error {
	getenv := o.Env.Get
	if !cigithub.InActions(getenv) {
		return exitcode.Errorf(exitcode.Usage, "zof action is the GitHub Action's entrypoint and runs only as a step of a GitHub Actions workflow (GITHUB_ACTIONS is not true); elsewhere use 'zof run', whose flags match the action's inputs (--suite, --scope, --env, --server, --junit, ...)")
	}
	in, inErr := cigithub.ReadInputs(getenv)
	// Mask the secrets before anything could print them, even when an input is invalid.
	if err := cigithub.Mask(o.IO.Out, in.Token, in.GitHubToken); err != nil {
		return exitcode.Wrap(exitcode.Usage, fmt.Errorf("%w: nothing was run, so that no secret reaches the log unmasked", err))
	}
	x := &action{io: o.IO, env: o.Env, getenv: getenv, in: in, mask: secret.NewMasker([]string{in.Token, in.GitHubToken})}
	if inErr != nil {
		return x.fail(exitcode.Usage, fmt.Errorf("invalid action inputs (the step's with:): %w", inErr))
	}

	x.workspace = getenv("GITHUB_WORKSPACE")
	if x.workspace == "" {
		wd, err := os.Getwd()
		if err != nil {
			return x.fail(exitcode.Usage, fmt.Errorf("no GITHUB_WORKSPACE and no current directory: %w", err))
		}
		x.workspace = wd
	}
	// Absolute before the directory changes: annotations are relative to it.
	if abs, err := filepath.Abs(x.workspace); err == nil {
		x.workspace = abs
	}
	dir := x.workspace
	if wd := in.WorkingDirectory; wd != "" {
		if filepath.IsAbs(wd) {
			dir = wd
		} else {
			dir = filepath.Join(x.workspace, wd)
		}
	}
	// The action is its own process (the container's entrypoint): changing its directory
	// is what `working-directory` means, for the suite, the JUnit path and git alike.
	if err := os.Chdir(dir); err != nil {
		return x.fail(exitcode.Usage, fmt.Errorf("input working-directory %q: %w (a directory relative to the repository root)", in.WorkingDirectory, err))
	}
	// Inside the container the checkout belongs to the runner's user: git refuses it until
	// it is marked safe, and every git call below needs it. zof's own image has no git
	// (nothing here needs it there): that is no reason to warn.
	if getenv("GITHUB_WORKSPACE") != "" {
		if err := cigithub.MarkSafeDirectory(ctx, "", x.workspace, o.Env.List()); err != nil && !errors.Is(err, exec.ErrNotFound) {
			x.warn(fmt.Sprintf("%v: git may refuse the checkout, so a change computed by git may be unknown", err))
		}
	}

	x.gh, x.ghErr = cigithub.NewClient(in.GitHubToken, getenv("GITHUB_API_URL"), nil)
	scope, src := x.event()
	c := ci.Detect(o.Env.Lookup)
	if x.ev != nil && x.ev.PR > 0 {
		c.PR = x.ev.PR // pull_request_target's GITHUB_REF is the base branch
	}

	timeout := in.Timeout
	if timeout <= 0 {
		timeout = defaultActionTimeout
	}
	suitePath := in.Suite
	if suitePath == "" {
		suitePath = "zof.yaml"
	}
	tty, color, gha := reporters.Terminal(o.IO.IsStdoutTTY(), o.Env.Lookup)
	// The suite's commands and ${VAR}s see the job's environment, but not the action's
	// secrets: those are for zof alone.
	stepEnv := make(Env, len(o.Env))
	for k, v := range o.Env {
		if k != "INPUT_TOKEN" && k != "INPUT_GITHUB-TOKEN" {
			stepEnv[k] = v
		}
	}
	var shadow shadowFlag
	if in.Shadow != "" {
		if err := shadow.Set(in.Shadow); err != nil {
			return x.fail(exitcode.Usage, fmt.Errorf("input shadow: %q: %w", in.Shadow, err))
		}
		if err := checkShadow(shadow, scope); err != nil {
			if in.Scope != "" {
				return x.fail(exitcode.Usage, fmt.Errorf("input shadow: %w", err))
			}
			// The event chose scope all (a push): there is no subset to measure.
			x.notice(fmt.Sprintf("shadow has no subset to measure on this event (scope %s): a plain run", scope))
			shadow = shadowFlag{}
		}
	}
	opts := runner.RunOptions{
		Select: runner.SelectOptions{
			SuitePath:   suitePath,
			Scope:       scope,
			Environment: in.Environment,
			Stdin:       o.IO.In,
			Lookup:      stepEnv.Lookup,
			Environ:     stepEnv.List(),
			Diff:        src,
			RepoRoot:    x.workspace,
			Shadow:      shadow.decide(c, o.IO.Out),
		},
		Timeout:           timeout,
		JUnit:             in.JUnit,
		HTML:              in.HTML,
		FailOn:            in.FailOn,
		CancelOnInterrupt: true,
		PollInterval:      runner.DefaultPollInterval,
		Stdout:            o.IO.Out,
		Stderr:            o.IO.ErrOut,
		TTY:               tty,
		Color:             color,
		GitHubActions:     gha,
		CI:                c,
		Reporters:         x.reporters,
		ExitOf:            exitcode.Report,
	}
	var (
		v   gate.Verdict
		err error
	)
	if in.Server == "" {
		if in.Token != "" {
			x.notice("the token input is set but server is not: the run executes inside this job and the token is unused")
		}
		if in.Supersede {
			x.notice("supersede has no effect without a server: the run executes inside this job")
		}
		v, err = runner.RunEmbedded(ctx, opts)
	} else {
		cl, cerr := newClient(in.Server, in.Token)
		if cerr != nil {
			return x.fail(exitcode.Of(cerr), fmt.Errorf("input server: %w", cerr))
		}
		v, err = runner.RunRemote(ctx, opts, runner.RemoteOptions{Client: cl, Supersede: in.Supersede, CI: c, Coverage: in.Coverage,
			CoverageOff: "the input coverage: false"})
	}
	if err != nil {
		if x.reported {
			return err
		}
		return x.fail(exitcode.Of(err), err)
	}
	return exitcode.Reported(exitcode.OfVerdict(v))
}

// event reads the workflow's event and decides the scope and where the change comes from
// (docs/ci.md "How the change is found"). Problems with the event never stop the run:
// it falls back to scope all and says why.
func (x *action) event() (string, diff.Source) {
	scope := x.in.Scope
	ev, err := cigithub.LoadEvent(x.env.Lookup)
	x.owner, x.repo, _ = strings.Cut(x.getenv("GITHUB_REPOSITORY"), "/")
	x.checkSHA = x.getenv("GITHUB_SHA")
	if err != nil {
		unsupported := errors.Is(err, cigithub.ErrUnsupportedEvent)
		switch {
		case scope == "" || scope == "changed":
			msg := err.Error()
			if !unsupported {
				msg += ": running scope all"
			}
			x.notice(msg)
			scope = "all"
		case !unsupported:
			x.notice(err.Error())
		}
		return scope, nil
	}
	x.ev = ev
	x.owner, x.repo = ev.Owner, ev.Repo
	if sha := ev.CheckSHA(); sha != "" {
		x.checkSHA = sha // a pull request's head, not GITHUB_SHA (a merge commit)
	}
	if scope == "" {
		scope = "all"
		if ev.IsPullRequest() || ev.Kind == cigithub.KindMergeGroup {
			scope = "changed"
		}
	}
	if scope != "changed" {
		return scope, nil
	}
	if ev.IsPullRequest() {
		what := fmt.Sprintf("could not list the files of pull request #%d", ev.PR)
		if x.gh == nil {
			return scope, &unknownDiff{source: diff.SourceAPI, base: ev.BaseSHA, head: ev.HeadSHA, err: x.ghErr, what: what, warn: x.warn}
		}
		prf, err := cigithub.NewPRFiles(x.gh, ev)
		if err != nil {
			return scope, &unknownDiff{source: diff.SourceAPI, err: err, what: what, warn: x.warn}
		}
		return scope, &unknownDiff{src: prf, source: diff.SourceAPI, base: ev.BaseSHA, head: ev.HeadSHA, what: what, warn: x.warn}
	}
	src := x.pushChange(ev)
	if src == nil {
		return "all", nil
	}
	return scope, src
}

// pushChange is the change of a push or a merge group (docs/ci.md "How the change is
// found"): the compare API first, like a pull request's files API, since zof's image has no
// git; git in the checkout when the API fails or lists its 300-file maximum, if git is
// installed and can compute the range. Without a github-token it is git alone. When
// nothing can, the change is unknown, with a warning, and on_unknown_diff applies. nil
// (with a notice) when the event has no range at all: scope all then.
func (x *action) pushChange(ev *cigithub.Event) diff.Source {
	// A validated push or merge group always has a git range except a deleted branch, which
	// has no comparison either.
	gbase, ghead, gitOK := ev.GitRange()
	if !gitOK {
		x.notice(fmt.Sprintf("the %s event changes nothing to run against (a deleted branch?): running scope all", ev.Kind))
		return nil
	}
	cbase, chead, cerr := ev.CompareRange()
	what := fmt.Sprintf("could not compute the %s change", ev.Kind)
	git := &diff.Git{Base: gbase, Head: ghead, Env: x.env.List(), Deepen: true}
	gitWhat := fmt.Sprintf("git (%s..%s)", short(gbase), short(ghead))
	if x.in.GitHubToken == "" || x.gh == nil || cerr != nil {
		why := "no github-token"
		switch {
		case cerr != nil:
			why = cerr.Error()
		case x.in.GitHubToken != "":
			why = x.ghErr.Error()
		}
		f := &fallbackDiff{primary: git, primaryWhat: gitWhat, noFallback: "the compare API was not asked: " + why}
		return &unknownDiff{src: f, source: diff.SourceGit, base: gbase, head: ghead, what: what, warn: x.warn}
	}
	f := &fallbackDiff{
		primary:      &cigithub.Compare{Client: x.gh, Owner: ev.Owner, Repo: ev.Repo, Base: cbase, Head: chead},
		primaryWhat:  "the compare API", // its answers name the range
		fallback:     git,
		fallbackWhat: gitWhat,
		say:          x.notice,
	}
	return &unknownDiff{src: f, source: diff.SourceAPI, base: cbase, head: chead, what: what, warn: x.warn}
}

// reporters are the action's reports, built once the plan is known (runner.RunOptions.Reporters).
func (x *action) reporters(p *gate.Plan, mask *secret.Masker) []reporters.Reporter {
	suiteFile := p.Request.SuiteFile
	blob := ""
	if server := strings.TrimRight(x.getenv("GITHUB_SERVER_URL"), "/"); server != "" && x.owner != "" && x.checkSHA != "" {
		blob = server + "/" + x.owner + "/" + x.repo + "/blob/" + x.checkSHA
	}
	commands := func(notice string) *ghreport.Commands {
		if notice != "" {
			x.notices = append(x.notices, notice)
		}
		return &ghreport.Commands{Out: x.io.Out, SuiteFile: suiteFile, Mask: mask, Notice: notice}
	}
	var out []reporters.Reporter
	switch {
	case x.in.Checks == cigithub.ChecksFalse:
		out = append(out, commands(""))
	case x.in.Checks == cigithub.ChecksAuto && x.ev != nil && x.ev.ReadOnlyToken():
		out = append(out, commands(ghreport.ForkNotice))
	case x.in.GitHubToken == "":
		out = append(out, commands("no github-token: no check run, annotations go to the log instead"))
	case x.gh == nil:
		out = append(out, commands(fmt.Sprintf("no check run (%v): annotations go to the log instead", x.ghErr)))
	case x.owner == "" || x.repo == "" || x.checkSHA == "":
		out = append(out, commands("no repository or commit known (GITHUB_REPOSITORY, GITHUB_SHA): no check run, annotations go to the log instead"))
	default:
		out = append(out, &ghreport.CheckRun{Client: x.gh, Owner: x.owner, Repo: x.repo, HeadSHA: x.checkSHA, SuiteFile: suiteFile, BlobBase: blob, Mask: mask, Log: x.io.Out})
	}
	if x.in.Summary {
		if path := x.getenv("GITHUB_STEP_SUMMARY"); path != "" {
			notices := slices.Clip(x.notices)
			if x.in.HTML != "" {
				// The summary is written after the built-in reports, the HTML one included.
				notices = append(notices, fmt.Sprintf("HTML report of this run: %s (in working-directory; upload it with actions/upload-artifact to open it)", x.in.HTML))
			}
			out = append(out, &ghreport.Summary{Path: path, Markdown: ghreport.MarkdownOptions{Mask: mask, BlobBase: blob, SuiteFile: suiteFile, Notices: notices}})
		} else {
			x.notice("GITHUB_STEP_SUMMARY is not set: no step summary")
		}
	}
	return append(out, &actionOutputs{x: x, mask: mask})
}

// actionOutputs writes the step outputs from the run's result.
type actionOutputs struct {
	x    *action
	mask *secret.Masker
}

var _ reporters.Reporter = (*actionOutputs)(nil)

func (o *actionOutputs) Report(_ context.Context, res *reporters.Result) error {
	o.x.reported = true
	return o.x.writeOutputs(res, o.mask)
}

// writeOutputs writes every output; junit only when the file exists (it was written).
func (x *action) writeOutputs(res *reporters.Result, mask *secret.Masker) error {
	path := x.getenv("GITHUB_OUTPUT")
	if path == "" {
		return errors.New("GITHUB_OUTPUT is not set: no step outputs")
	}
	junit := ""
	if x.in.JUnit != "" {
		if _, err := os.Stat(x.in.JUnit); err == nil {
			junit = x.in.JUnit
		}
	}
	return ghreport.WriteOutputs(path, ghreport.Values(res, junit, mask))
}

// fail ends the action before a run could report: the error as an annotation, the outputs
// (exit-code set, the rest empty) and the step summary, then exit with code.
func (x *action) fail(code exitcode.Code, err error) error {
	msg := x.mask.String(err.Error())
	x.command("error", msg)
	res := &report.Result{Gate: gate.NoVerdict, Exit: report.Exit{Code: int(code), Name: code.String()}, Verdict: msg, Notices: x.notices}
	if x.in != nil {
		if werr := x.writeOutputs(res, x.mask); werr != nil {
			fmt.Fprintf(x.io.ErrOut, "zof: %v\n", werr)
		}
		if path := x.getenv("GITHUB_STEP_SUMMARY"); x.in.Summary && path != "" {
			s := &ghreport.Summary{Path: path, Markdown: ghreport.MarkdownOptions{Mask: x.mask}}
			if werr := s.Report(context.Background(), res); werr != nil {
				fmt.Fprintf(x.io.ErrOut, "zof: %v\n", werr)
			}
		}
	}
	return exitcode.Reported(code)
}

// notice says something the person should know, in the log (a notice annotation) and in
// the step summary.
func (x *action) notice(msg string) {
	msg = x.mask.String(msg)
	x.notices = append(x.notices, msg)
	x.command("notice", msg)
}

// warn is a notice that something did not work as it should (a warning annotation).
func (x *action) warn(msg string) {
	msg = x.mask.String(msg)
	x.notices = append(x.notices, msg)
	x.command("warning", msg)
}

func (x *action) command(name, msg string) {
	cmd := &githubactions.Command{Name: name, Properties: githubactions.CommandProperties{"title": "Zof"}, Message: msg}
	fmt.Fprintln(x.io.Out, cmd.String())
}

// unknownDiff is a CI diff source whose failure makes the change unknown (so the suite's
// selection.on_unknown_diff applies) with a warning, instead of failing the run.
type unknownDiff struct {
	src        diff.Source // nil: err is why there is none
	err        error
	source     string // diff.SourceAPI or diff.SourceGit
	base, head string
	what       string
	warn       func(string)
}

var _ diff.Source = (*unknownDiff)(nil)

func (u *unknownDiff) Changes(ctx context.Context) (*diff.Result, error) {
	err := u.err
	if u.src != nil {
		var r *diff.Result
		if r, err = u.src.Changes(ctx); err == nil {
			if !r.Complete && len(r.Files) == 0 && r.Reason != "" {
				// e.g. a base the clone lacks: said as loudly as an error would be.
				u.warn(fmt.Sprintf("%s: %s: the change is unknown, so the suite's selection.on_unknown_diff applies", u.what, r.Reason))
			}
			return r, nil
		}
	}
	if err == nil {
		err = errors.New("no source for the change")
	}
	u.warn(fmt.Sprintf("%s: %v: the change is unknown, so the suite's selection.on_unknown_diff applies", u.what, err))
	return &diff.Result{Base: u.base, Head: u.head, Source: u.source, Complete: false, Reason: u.what + ": " + err.Error()}, nil
}

// short abbreviates a full sha for a message.
func short(sha string) string {
	if len(sha) == 40 && strings.Trim(sha, "0123456789abcdef") == "" {
		return sha[:12]
	}
	return sha
}
