// Package reporters is what the CLI needs besides the report writers
// themselves (console, junit, jsonreport, github, gitlab, each built with its
// own New and fed the same report.Result): the console's mode for this
// terminal, and the shared types of reporters/report under short names.
package reporters

import (
	"github.com/zof-ai/zof-ci/internal/reporters/report"
)

// The shared types, so callers need only this package.
type (
	// Result is what every reporter is fed.
	Result = report.Result
	// Reporter writes one report.
	Reporter = report.Reporter
	// Live reporters also see every event as it happens.
	Live = report.Live
	// Starter reporters are also told when the run is submitted (Start), before
	// its first event; callers check for it with a type assertion.
	Starter = report.Starter
	// Options configure a reporter.
	Options = report.Options
	// Factory builds a reporter.
	Factory = report.Factory
)

// Terminal decides the console's mode from whether stdout is a terminal and
// the environment (lookup is os.LookupEnv in main): the redrawing TTY view only
// on a terminal with none of NO_COLOR, CI or TERM=dumb; colours wherever the
// TTY view is used; GitHub Actions groups when GITHUB_ACTIONS=true.
func Terminal(isTerminal bool, lookup func(string) (string, bool)) (tty, color, githubActions bool) {
	set := func(k string) bool { v, ok := lookup(k); return ok && v != "" }
	term, _ := lookup("TERM")
	tty = isTerminal && !set("NO_COLOR") && !set("CI") && term != "dumb"
	gha, _ := lookup("GITHUB_ACTIONS")
	return tty, tty, gha == "true"
}
