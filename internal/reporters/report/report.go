// Package report holds what every reporter shares: the Result they are all fed,
// the Reporter and Live interfaces, their Options, and the text and file helpers
// that keep reports safe (masked, sanitised, written atomically).
//
// It is a leaf package: every reporter imports it, and the runner (the CLI
// path) and the server's webhooks build the reporters they need with each
// one's New.
package report

import (
	"context"
	"io"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// Result is what every reporter is fed: the same run result and event log.
// Reporters never compute the verdict themselves: the runner gives Gate,
// Verdict and Exit.
type Result struct {
	// Run is the terminal snapshot, or the last known one on timeout/interrupt.
	Run *api.Run
	// Events is the run's event log, in seq order.
	Events []api.Event
	// Gate is what the gate decided.
	Gate gate.Kind
	// Exit is the process exit code zof ends with, as the CLI maps the gate's
	// decision; reports only state it (the JSON report, the action's outputs).
	Exit Exit
	// Verdict is one line saying why the gate passed or failed,
	// e.g. "gate failed: 2 of 17 cases failed".
	Verdict string
	// Notices are things the person must know (scope widened, status outside fail_on, ...).
	Notices []string
	// Shadow is what a shadow run's subset would have concluded (gate.ShadowOf);
	// nil for any other run. It never changes Gate.
	Shadow *api.ShadowResult
	// Artifacts are the evidence kept for the run's failed steps, with their
	// links and files (artifact.go); nil when none was kept.
	Artifacts []Artifact
}

// Exit is a process exit code and its name (e.g. 1 "failed"), as documented in
// the README's exit-code table.
type Exit struct {
	Code int
	Name string
}

// Reporter writes one report of a finished (or abandoned) run.
type Reporter interface {
	Report(ctx context.Context, res *Result) error
}

// Live reporters also see every event as it happens. run is the snapshot after
// e was applied; reporters must not keep or change it past the call.
type Live interface {
	Reporter
	Event(run *api.Run, e api.Event)
}

// Starter reporters also hear when the run is submitted, before any event:
// e.g. a GitHub check run goes in_progress with the run's link. run is the
// first snapshot (id, URL, members); reporters must not keep or change it.
// An error is for the log only: it never changes the gate.
type Starter interface {
	Reporter
	Start(ctx context.Context, run *api.Run) error
}

// Options configure a reporter. Fields a reporter has no use for are ignored.
type Options struct {
	// Out is where stream reporters (console) write.
	Out io.Writer
	// Path is where file reporters (junit, json) write, atomically.
	Path string
	// TTY selects the redrawing live view; false gives plain lines, one per change.
	TTY bool
	// Color allows ANSI colours (only used with TTY).
	Color bool
	// GitHubActions folds long logs into ::group:: blocks.
	GitHubActions bool
	// Width bounds the redrawn lines of the TTY view (0: DefaultWidth).
	Width int
	// Now is the clock for durations of unfinished runs (nil: time.Now).
	Now func() time.Time
	// Mask masks secrets in every text written (nil masks nothing).
	Mask *secret.Masker
	// JUnitLocations adds file and line attributes to JUnit testcases (see package junit).
	JUnitLocations bool
}

// DefaultWidth is the TTY line width used when Options.Width is 0: the
// classic 80 columns, so a redrawn line never wraps and breaks the redraw.
const DefaultWidth = 80

// Clock returns o.Now, or time.Now when unset.
func (o Options) Clock() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// Factory builds a reporter from its options.
type Factory func(Options) (Reporter, error)
