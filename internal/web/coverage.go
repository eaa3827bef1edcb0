package web

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// Coverage reads each project's latest coverage summary (docs/coverage.md,
// "On the server"; the stores of zof serve have it). Coverage is (nil, nil)
// for a project with none; ListCoverage is the tenant's projects by name,
// at most limit.
type Coverage interface {
	Coverage(ctx context.Context, tenant, project string) (*api.ProjectCoverage, error)
	ListCoverage(ctx context.Context, tenant string, limit int) ([]*api.ProjectCoverage, error)
}

// homeCoverage bounds the projects whose coverage the home page shows.
const homeCoverage = 20

// CoverageView is one project's latest coverage on the home page.
type CoverageView struct {
	Project string
	RunID   string
	Commit  string // at most 12 characters
	Ref     string // a branch without refs/heads/
	When    string // UTC
	Ago     string // "just now", "1h30m ago"
	Files   int
	Percent float64
	// Uncovered counts the files no case covers; Omitted the modules the
	// summary left out (their files are in the totals).
	Uncovered int
	Omitted   int
	Modules   []ModuleCoverageView
}

// ModuleCoverageView is one module's row.
type ModuleCoverageView struct {
	Module    string
	Files     int
	Percent   float64
	Uncovered int
	// First are its first uncovered files (a hint, not the list).
	First []string
}

// PercentText is the percentage as the CLI prints it: one decimal.
func (v CoverageView) PercentText() string { return percentText(v.Percent) }

// PercentText is the module's percentage, one decimal.
func (m ModuleCoverageView) PercentText() string { return percentText(m.Percent) }

func percentText(p float64) string { return strconv.FormatFloat(p, 'f', 1, 64) + "%" }

// coverageOf is the home page's coverage: the tenant's projects with a
// summary, and those among seen (the projects of the day's runs) without
// one, each at most homeCoverage, by name.
func coverageOf(ctx context.Context, c Coverage, tenant string, seen []string, now time.Time) ([]CoverageView, []string, error) {
	list, err := c.ListCoverage(ctx, tenant, homeCoverage)
	if err != nil {
		return nil, nil, err
	}
	have := map[string]bool{}
	for _, pc := range list {
		have[pc.Project] = true
	}
	var none []string
	for _, p := range seen {
		if have[p] || len(list)+len(none) >= homeCoverage {
			continue
		}
		// The list is bounded: a project past it may still have a summary.
		pc, err := c.Coverage(ctx, tenant, p)
		if err != nil {
			return nil, nil, err
		}
		if pc != nil {
			list = append(list, pc)
			have[p] = true
			continue
		}
		none = append(none, p)
	}
	slices.SortFunc(list, func(a, b *api.ProjectCoverage) int { return strings.Compare(a.Project, b.Project) })
	views := make([]CoverageView, 0, len(list))
	for _, pc := range list {
		views = append(views, coverageView(pc, now))
	}
	return views, none, nil
}

func coverageView(pc *api.ProjectCoverage, now time.Time) CoverageView {
	s := &pc.Summary
	commit := pc.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	v := CoverageView{Project: pc.Project, RunID: pc.RunID, Commit: commit, Ref: strings.TrimPrefix(pc.Ref, "refs/heads/"),
		When: pc.ReceivedAt.UTC().Format("2006-01-02 15:04"), Ago: ago(now.Sub(pc.ReceivedAt)),
		Files: s.Files, Percent: s.Percent(), Uncovered: s.Uncovered, Omitted: s.ModulesOmitted}
	for _, m := range s.Modules {
		v.Modules = append(v.Modules, ModuleCoverageView{Module: m.Module, Files: m.Files, Percent: m.Percent(), Uncovered: m.Uncovered, First: m.UncoveredFiles})
	}
	return v
}

// ago is how long ago, to the minute: "just now" under a minute.
func ago(d time.Duration) string {
	if d < time.Minute {
		return "just now"
	}
	return human(d.Round(time.Minute)) + " ago"
}
