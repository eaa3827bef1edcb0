// Package gate is planning and the gate, shared by the CLI's orchestration
// (internal/runner) and the server's webhooks and schedules: it plans a run
// from a loaded suite and a change (PlanSuite), reads fail_on (ParseFailOn),
// judges how following a run ended (Judge) and names a run's concurrency
// group and idempotency key. It is a leaf: it knows suites, selections and
// runs, never clients, consoles, engines or process exit codes; its
// decisions are typed (Kind, UsageError) and the CLI maps them to codes.
package gate

import (
	"fmt"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/diff"
	"github.com/zof-ai/zof-ci/internal/selection"
	"github.com/zof-ai/zof-ci/internal/suite"
)

// Plan is a selection made from a suite, ready to run.
type Plan struct {
	Suite     *suite.Suite
	Selection api.Selection
	Request   *api.RunRequest
}

// Empty reports whether nothing was selected.
func (p *Plan) Empty() bool { return len(p.Selection.Cases) == 0 }

// Kind is the plan's own decision before anything runs: Empty when nothing is
// selected and the gate says on_empty: fail, else Passed.
func (p *Plan) Kind() Kind {
	if p.Empty() && p.Suite.Gate.OnEmpty != "pass" {
		return Empty
	}
	return Passed
}

// PlanSuite selects from a loaded suite for scope and builds the run request
// for environment. d is the change for scope changed (nil: the diff is unknown,
// and on_unknown_diff applies); suiteFile is the suite's path relative to the
// repository root, for annotations. The CLI (after loading the suite and
// acquiring the diff) and the server's webhooks and schedules plan with it.
// A selection the suite's rules refuse is a UsageError.
func PlanSuite(s *suite.Suite, scope, environment string, d *diff.Result, suiteFile string) (*Plan, error) {
	sel, err := Selector(s)
	if err != nil {
		return nil, err
	}
	if scope == "changed" && d == nil {
		d = &diff.Result{Source: "git", Complete: false, Reason: "the diff could not be computed"}
	}
	selected, err := sel.Select(scope, d)
	if err != nil {
		// Includes on_unknown_diff: fail: nothing is submitted, the reason is printed.
		return nil, Usage(err)
	}
	ids := make([]string, len(selected.Cases))
	for i, c := range selected.Cases {
		ids[i] = c.ID
	}
	req, err := s.Request(environment, ids)
	if err != nil {
		return nil, Usage(err)
	}
	req.Selection = selected
	req.SuiteFile = suiteFile
	return &Plan{Suite: s, Selection: selected, Request: req}, nil
}

// SelectedIDs are the ids of the selected cases, in selection order.
func (p *Plan) SelectedIDs() []string {
	ids := make([]string, len(p.Selection.Cases))
	for i, c := range p.Selection.Cases {
		ids[i] = c.ID
	}
	return ids
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

// Selector compiles a loaded suite's selection rules: what PlanSuite selects
// with, and what the coverage map classifies files with.
func Selector(s *suite.Suite) (*selection.Selector, error) {
	sel, err := selection.New(selectionInput(s))
	if err != nil {
		return nil, Usage(fmt.Errorf("%s: %w", s.File, err))
	}
	return sel, nil
}
