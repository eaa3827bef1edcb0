package github

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/sethvargo/go-githubactions"
)

// Checks is the action's `checks` input.
type Checks string

// Checks values: auto posts a check run unless the token is known to be
// read-only (a fork's pull_request) and falls back on 403; true always tries
// (and still falls back); false never posts one (workflow-command annotations only).
const (
	ChecksAuto  Checks = "auto"
	ChecksTrue  Checks = "true"
	ChecksFalse Checks = "false"
)

// Inputs are the action's inputs (action.yml), read from the INPUT_* variables
// the runner sets for a container action.
type Inputs struct {
	Suite, Scope, Environment, Server string
	// Token is the execution service's token (a secret: masked).
	Token string
	// GitHubToken is for the REST API (check runs, pull request files); a secret.
	GitHubToken string
	// Timeout is the deadline for a verdict; 0 means the command's default.
	Timeout time.Duration
	FailOn  []string
	JUnit   string
	// HTML is where to write the self-contained HTML report of the run ("": none).
	HTML             string
	Checks           Checks
	Summary          bool
	Supersede        bool
	WorkingDirectory string
	// Shadow is the shadow input as written: "", true, false or sample:N
	// (zof run --shadow, docs/cli.md); the CLI parses it.
	Shadow string
	// Coverage sends the checkout's coverage summary with a server run
	// (zof run --coverage, docs/coverage.md).
	Coverage bool
}

// InputNames lists the action's inputs exactly as action.yml declares them.
var InputNames = []string{"suite", "scope", "environment", "server", "token", "github-token", "timeout", "fail-on", "junit", "html", "checks", "summary", "supersede", "working-directory", "shadow", "coverage"}

// gateStatuses are the values fail-on accepts (the suite file's gate.fail_on).
var gateStatuses = map[string]bool{"failed": true, "blocked": true, "cancelled": true, "timeout": true}

// ReadInputs reads the inputs through go-githubactions with getenv (never
// os.Getenv below main). The runner passes an input named "github-token" as
// INPUT_GITHUB-TOKEN: hyphens stay, the name is upper-cased. Outside GitHub
// Actions every input is simply unset and the defaults apply; whether to run
// at all there is the caller's decision (see InActions). Every invalid value is
// reported at once.
func ReadInputs(getenv func(string) string) (*Inputs, error) {
	a := githubactions.New(githubactions.WithGetenv(getenv), githubactions.WithWriter(io.Discard))
	in := &Inputs{
		Suite:            a.GetInput("suite"),
		Scope:            a.GetInput("scope"),
		Environment:      a.GetInput("environment"),
		Server:           a.GetInput("server"),
		Token:            a.GetInput("token"),
		GitHubToken:      a.GetInput("github-token"),
		JUnit:            a.GetInput("junit"),
		HTML:             a.GetInput("html"),
		WorkingDirectory: a.GetInput("working-directory"),
		Shadow:           a.GetInput("shadow"),
		Checks:           ChecksAuto,
		Summary:          true,
		Coverage:         true,
	}
	var errs []string
	if v := a.GetInput("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Sprintf("input timeout: %q is not a duration: use e.g. 30m or 1h", v))
		}
		in.Timeout = d
	}
	if v := a.GetInput("fail-on"); v != "" {
		for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
			s = strings.ToLower(s)
			if !gateStatuses[s] {
				errs = append(errs, fmt.Sprintf("input fail-on: unknown status %q: use a comma-separated list of failed, blocked, cancelled, timeout", s))
				continue
			}
			in.FailOn = append(in.FailOn, s)
		}
	}
	switch v := strings.ToLower(a.GetInput("checks")); v {
	case "", "auto":
	case "true", "false":
		in.Checks = Checks(v)
	default:
		errs = append(errs, fmt.Sprintf("input checks: %q must be auto, true or false", v))
	}
	var err error
	if in.Summary, err = boolInput(a, "summary", true); err != nil {
		errs = append(errs, err.Error())
	}
	if in.Supersede, err = boolInput(a, "supersede", false); err != nil {
		errs = append(errs, err.Error())
	}
	if in.Coverage, err = boolInput(a, "coverage", true); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return in, errors.New(strings.Join(errs, "\n"))
	}
	return in, nil
}

func boolInput(a *githubactions.Action, name string, def bool) (bool, error) {
	v := a.GetInput(name)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return def, fmt.Errorf("input %s: %q must be true or false", name, v)
	}
	return b, nil
}

// InActions reports whether the process runs as a GitHub Actions step.
func InActions(getenv func(string) string) bool {
	return getenv("GITHUB_ACTIONS") == "true"
}

// Mask tells the runner to mask each secret in the log (::add-mask::) before
// anything could print it. A multi-line secret is also masked line by line:
// the runner masks per line of output.
func Mask(w io.Writer, secrets ...string) error {
	for _, s := range secrets {
		if strings.TrimSpace(s) == "" {
			continue
		}
		values := []string{s}
		if strings.ContainsAny(s, "\r\n") {
			for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' }) {
				if strings.TrimSpace(l) != "" {
					values = append(values, l)
				}
			}
		}
		for _, v := range values {
			cmd := &githubactions.Command{Name: "add-mask", Message: v}
			if _, err := io.WriteString(w, cmd.String()+"\n"); err != nil {
				return fmt.Errorf("mask a secret: %w", err)
			}
		}
	}
	return nil
}

// MarkSafeDirectory adds dir to git's safe.directory list (global config).
// Inside the action's container the workspace (/github/workspace) belongs to
// the runner's user, not the container's root, and git refuses to read a
// repository owned by someone else ("detected dubious ownership") until it is
// marked safe. git is the binary ("" means git on PATH); env is the
// environment of the git process (nil inherits). The directory is passed as
// one argument: no shell.
func MarkSafeDirectory(ctx context.Context, git, dir string, env []string) error {
	if git == "" {
		git = "git"
	}
	if dir == "" {
		return errors.New("no workspace directory to mark safe (GITHUB_WORKSPACE is empty)")
	}
	cmd := exec.CommandContext(ctx, git, "config", "--global", "--add", "safe.directory", dir)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mark %s a git safe.directory: %w: %s (is git installed and HOME writable?)", dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}
