// Package runner is the CLI's orchestration of a run: plan it from a suite file and a
// change (internal/gate), execute it (embedded) or submit it, follow it, have the gate judge it
// and write the reports. It returns the gate's verdict; internal/cli maps it to an exit code.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zof-ai/zof-ci/internal/diff"
	"github.com/zof-ai/zof-ci/internal/gate"
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
	// Shadow makes a shadow run (gate.PlanShadow): Scope's subset is selected and
	// recorded, every case runs and the gate judges them all.
	Shadow bool
}

// MakePlan loads the suite, acquires the diff when the scope needs it, and selects.
func MakePlan(ctx context.Context, o SelectOptions) (*gate.Plan, error) {
	s, err := suite.Load(o.SuitePath, suite.Options{Lookup: o.Lookup, Environment: o.Environment})
	if err != nil {
		return nil, err
	}
	if o.Shadow && !slices.Contains(gate.ShadowScopes, o.Scope) {
		// Before any diff is acquired: the scope alone makes it a usage error.
		return gate.PlanShadow(s, o.Scope, o.Environment, nil, "")
	}
	var d *diff.Result
	if o.Scope == "changed" {
		d, err = acquireDiff(ctx, o, s)
		if err != nil {
			// An unknown diff is a rule of the selection (on_unknown_diff), not a crash.
			d = &diff.Result{Source: "git", Complete: false, Reason: err.Error()}
		}
	}
	if o.Shadow {
		return gate.PlanShadow(s, o.Scope, o.Environment, d, suiteFile(o.SuitePath, o.RepoRoot))
	}
	return gate.PlanSuite(s, o.Scope, o.Environment, d, suiteFile(o.SuitePath, o.RepoRoot))
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

func acquireDiff(ctx context.Context, o SelectOptions, s *suite.Suite) (*diff.Result, error) {
	var src diff.Source
	switch {
	case o.ChangedFiles != "":
		r := o.Stdin
		if o.ChangedFiles != "-" {
			f, err := os.Open(o.ChangedFiles)
			if err != nil {
				return nil, gate.Usage(fmt.Errorf("--changed-files: %w", err))
			}
			defer f.Close()
			r = f
		}
		list, err := diff.ReadList(r)
		if err != nil {
			return nil, gate.Usage(fmt.Errorf("--changed-files %s: %w", o.ChangedFiles, err))
		}
		src = list
	case o.Diff != nil:
		src = o.Diff
	default:
		src = &diff.Git{Dir: filepath.Dir(o.SuitePath), Base: o.Base, Env: o.Environ, Deepen: true}
	}
	return src.Changes(ctx)
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
		return &reportedError{err: serr}
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

// reportedError is an error whose explanation was already printed in full:
// the top maps it to its exit code (by what it wraps) and prints nothing more.
type reportedError struct{ err error }

func (e *reportedError) Error() string  { return e.err.Error() }
func (e *reportedError) Unwrap() error  { return e.err }
func (e *reportedError) Reported() bool { return true }
