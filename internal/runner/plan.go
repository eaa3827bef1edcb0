// Package runner does zof's main job: plan a run from a suite file and a change,
// execute it (embedded) or submit it, follow it, and turn the outcome into the gate's exit code.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/diff"
	"github.com/zof-ai/zof-ci/internal/exitcode"
	"github.com/zof-ai/zof-ci/internal/selection"
	"github.com/zof-ai/zof-ci/internal/suite"
)

// SelectOptions say which suite file and which of its cases.
type SelectOptions struct {
	SuitePath    string
	Scope        string
	Environment  string
	Base         string // base ref for scope changed
	ChangedFiles string // path or "-": overrides diff acquisition
	Stdin        io.Reader
	Lookup       func(string) (string, bool)
	Environ      []string // passed to git and to commands
	// Diff, when set, is used for scope changed instead of git (CI API sources).
	Diff diff.Source
	// RepoRoot, when set, is the repository root the run's suite_file is relative to
	// (annotations point at it); "" makes it relative to the current directory.
	RepoRoot string
}

// Plan is a selection made from a suite, ready to run.
type Plan struct {
	Suite     *suite.Suite
	Selection api.Selection
	Request   *api.RunRequest
}

// Empty reports whether nothing was selected.
func (p *Plan) Empty() bool { return len(p.Selection.Cases) == 0 }

// Exit is the plan's own exit code: 5 when nothing is selected and the gate says
// on_empty: fail, else 0.
func (p *Plan) Exit() exitcode.Code {
	if p.Empty() && p.Suite.Gate.OnEmpty != "pass" {
		return exitcode.Empty
	}
	return exitcode.OK
}

// MakePlan loads the suite, acquires the diff when the scope needs it, and selects.
func MakePlan(ctx context.Context, o SelectOptions) (*Plan, error) {
	s, err := suite.Load(o.SuitePath, suite.Options{Lookup: o.Lookup, Environment: o.Environment})
	if err != nil {
		return nil, err
	}
	var d *diff.Result
	if o.Scope == "changed" {
		d, err = acquireDiff(ctx, o, s)
		if err != nil {
			// An unknown diff is a rule of the selection (on_unknown_diff), not a crash.
			d = &diff.Result{Source: "git", Complete: false, Reason: err.Error()}
		}
	}
	return PlanSuite(s, o.Scope, o.Environment, d, suiteFile(o.SuitePath, o.RepoRoot))
}

// suiteFile is the suite's path relative to root (the current directory when root is
// ""), /-separated; "" when it cannot be said (e.g. the suite is outside root).
func suiteFile(path, root string) string {
	if root == "" {
		if rel, err := filepath.Rel(".", path); err == nil {
			return filepath.ToSlash(rel)
		}
		return ""
	}
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return ""
	}
	absPath, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	rel, err := filepath.Rel(absRoot, absPath)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return ""
	}
	return filepath.ToSlash(rel)
}

// PlanSuite selects from a loaded suite for scope and builds the run request
// for environment: what MakePlan does once the suite is loaded and the diff
// acquired. d is the change for scope changed (nil: the diff is unknown, and
// on_unknown_diff applies); suiteFile is the suite's path relative to the
// repository root, for annotations. The server's webhooks and schedules plan
// with it too.
func PlanSuite(s *suite.Suite, scope, environment string, d *diff.Result, suiteFile string) (*Plan, error) {
	sel, err := selection.New(selectionInput(s))
	if err != nil {
		return nil, exitcode.Wrap(exitcode.Usage, fmt.Errorf("%s: %w", s.File, err))
	}
	if scope == "changed" && d == nil {
		d = &diff.Result{Source: "git", Complete: false, Reason: "the diff could not be computed"}
	}
	selected, err := sel.Select(scope, d)
	if err != nil {
		// Includes on_unknown_diff: fail: nothing is submitted, the reason is printed.
		return nil, exitcode.Wrap(exitcode.Usage, err)
	}
	ids := make([]string, len(selected.Cases))
	for i, c := range selected.Cases {
		ids[i] = c.ID
	}
	req, err := s.Request(environment, ids)
	if err != nil {
		return nil, exitcode.Wrap(exitcode.Usage, err)
	}
	req.Selection = selected
	req.SuiteFile = suiteFile
	return &Plan{Suite: s, Selection: selected, Request: req}, nil
}

func acquireDiff(ctx context.Context, o SelectOptions, s *suite.Suite) (*diff.Result, error) {
	var src diff.Source
	switch {
	case o.ChangedFiles != "":
		r := o.Stdin
		if o.ChangedFiles != "-" {
			f, err := os.Open(o.ChangedFiles)
			if err != nil {
				return nil, exitcode.Wrap(exitcode.Usage, fmt.Errorf("--changed-files: %w", err))
			}
			defer f.Close()
			r = f
		}
		list, err := diff.ReadList(r)
		if err != nil {
			return nil, exitcode.Wrap(exitcode.Usage, fmt.Errorf("--changed-files %s: %w", o.ChangedFiles, err))
		}
		src = list
	case o.Diff != nil:
		src = o.Diff
	default:
		src = &diff.Git{Dir: filepath.Dir(o.SuitePath), Base: o.Base, Env: o.Environ, Deepen: true}
	}
	return src.Changes(ctx)
}

func selectionInput(s *suite.Suite) selection.Suite {
	in := selection.Suite{Rules: selection.Rules{
		Global:          patternValues(s.Selection.Global),
		Ignore:          patternValues(s.Selection.Ignore),
		Unmapped:        s.Selection.Unmapped,
		MaxChangedFiles: s.Selection.MaxChangedFiles,
		OnUnknownDiff:   s.Selection.OnUnknownDiff,
	}}
	for _, c := range s.Cases {
		in.Cases = append(in.Cases, selection.Case{ID: c.ID, Tags: c.Tags, Covers: c.Covers, Always: c.Always})
	}
	for _, set := range s.Sets {
		in.Sets = append(in.Sets, selection.Set{Name: set.Name, Cases: set.Cases})
	}
	return in
}

func patternValues(ps []suite.Pattern) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Value
	}
	return out
}

// Validate checks a suite file and prints every problem, one per line.
func Validate(stdout, stderr io.Writer, path, env string, lookup func(string) (string, bool)) error {
	s, err := suite.Load(path, suite.Options{Lookup: lookup, Environment: env})
	var serr *suite.Error
	if errors.As(err, &serr) {
		for _, p := range serr.Problems {
			fmt.Fprintln(stderr, p.String())
		}
		errs := serr.Errors()
		fmt.Fprintf(stderr, "%s: %d %s; nothing was run. Fix %s and validate again.\n", path, errs, plural(errs, "error", "errors"), plural(errs, "it", "them"))
		return exitcode.Reported(exitcode.Usage)
	}
	if err != nil {
		return err
	}
	for _, w := range s.Warnings {
		fmt.Fprintln(stderr, w.String())
	}
	cases := len(s.Cases)
	msg := fmt.Sprintf("%s: OK (%d %s, %d %s", path, cases, plural(cases, "case", "cases"), len(s.Environments), plural(len(s.Environments), "environment", "environments"))
	if n := len(s.Warnings); n > 0 {
		msg += fmt.Sprintf(", %d %s", n, plural(n, "warning", "warnings"))
	}
	fmt.Fprintln(stdout, msg+")")
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
