package gate

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// Kind is what the gate decided. The process exit code each kind means is the
// CLI's business (internal/exitcode holds the one table); here a kind is only
// a meaning. The zero value is Passed.
type Kind int

// The gate's decisions.
const (
	Passed      Kind = iota // the gate passed (possibly with a notice: an outcome outside fail_on)
	Failed                  // at least one case failed
	Blocked                 // the run is Failed (Blocked)
	Cancelled               // the run was cancelled
	TimedOut                // no terminal status before the deadline
	Empty                   // nothing was selected and on_empty: fail
	Interrupted             // the person interrupted zof (SIGINT/SIGTERM)
	NoVerdict               // no verdict: the run could not be planned, started or followed to its end (Verdict.Err says why)
)

// String names the kind for logs and reports.
func (k Kind) String() string {
	switch k {
	case Passed:
		return "passed"
	case Failed:
		return "failed"
	case Blocked:
		return "blocked"
	case Cancelled:
		return "cancelled"
	case TimedOut:
		return "timeout"
	case Empty:
		return "empty"
	case Interrupted:
		return "interrupted"
	case NoVerdict:
		return "no-verdict"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// The outcomes gate.fail_on and --fail-on may list (docs/suite.md).
const (
	OutcomeFailed    = "failed"
	OutcomeBlocked   = "blocked"
	OutcomeCancelled = "cancelled"
	OutcomeTimeout   = "timeout"
)

// AllOutcomes is fail_on's default: every outcome fails the gate.
var AllOutcomes = []string{OutcomeFailed, OutcomeBlocked, OutcomeCancelled, OutcomeTimeout}

// UsageError is input that cannot be planned or judged: a bad --fail-on or
// scope, a selection the suite's rules refuse, an unreadable --changed-files.
// Nothing was submitted; the person must change the input.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usage marks err as a usage error; nil stays nil.
func Usage(err error) error {
	if err == nil {
		return nil
	}
	return &UsageError{Err: err}
}

// Usagef formats a usage error.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// IsUsage reports whether err is (or wraps) a UsageError.
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}

// ParseFailOn checks a fail_on list; empty means all four outcomes.
func ParseFailOn(list []string) ([]string, error) {
	if len(list) == 0 {
		return AllOutcomes, nil
	}
	out := make([]string, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(strings.ToLower(s))
		if !slices.Contains(AllOutcomes, s) {
			return nil, Usagef("--fail-on %q: use a comma-separated list of %s", s, strings.Join(AllOutcomes, ", "))
		}
		out = append(out, s)
	}
	return out, nil
}

// Outcome is how following a run ended, before the gate judges it.
type Outcome struct {
	Run         *api.Run
	TimedOut    bool          // no terminal status before the deadline
	Timeout     time.Duration // the deadline, for the message
	Interrupted bool          // SIGINT/SIGTERM
	// Lost is why the follower could not follow the run to its end: the service stayed
	// unreachable past the deadline, refused the token, or no longer knows the run.
	// It wins over the timeout.
	Lost error
}

// Verdict is the gate's decision: its kind, one line saying why, notices a
// person must see (a status outside fail_on passes, but not silently), and for
// NoVerdict the error that lost the run (nil when the run just ended unfinished).
type Verdict struct {
	Kind    Kind
	Line    string
	Notices []string
	Err     error
}

// Judge decides the gate for how following a run ended.
func Judge(o Outcome, failOn []string) Verdict {
	r := o.Run
	c := r.Count()
	var notices []string
	judge := func(outcome string, kind Kind, line string) Verdict {
		if slices.Contains(failOn, outcome) {
			return Verdict{Kind: kind, Line: "gate failed: " + line}
		}
		notices = append(notices, fmt.Sprintf("%s is not in fail_on (%s): the gate passes anyway", outcome, strings.Join(failOn, ", ")))
		return Verdict{Kind: Passed, Line: "gate passed with notice: " + line, Notices: notices}
	}
	switch {
	case o.Interrupted:
		// An interrupt is the person's decision; it wins over everything else.
		return Verdict{Kind: Interrupted, Line: fmt.Sprintf("interrupted: %s was %s; reports hold what finished", runName(r), statusWords(r))}
	case o.Lost != nil && !r.Status.Terminal():
		return Verdict{Kind: NoVerdict, Err: o.Lost, Line: fmt.Sprintf("gate failed: lost %s (last status %s): %v", runName(r), lastStatus(r), o.Lost)}
	case o.TimedOut:
		return judge(OutcomeTimeout, TimedOut, fmt.Sprintf("no verdict within %s; %s was %s (%d of %d cases finished)", o.Timeout, runName(r), statusWords(r), c.Passed+c.Failed+c.Cancelled+c.Blocked, c.Total))
	}
	switch r.Status {
	case api.StatusPassed:
		line := fmt.Sprintf("gate passed: %d of %d %s passed", c.Passed, c.Total, plural(c.Total, "member", "members"))
		if c.Flaky > 0 {
			line += fmt.Sprintf(" (%d flaky)", c.Flaky)
		}
		return Verdict{Kind: Passed, Line: line}
	case api.StatusFailed:
		if q := quarantinedFailures(r); q != nil {
			// Every failure is of a quarantined case: it ran and is
			// reported, but never fails the gate (docs/suite.md).
			return Verdict{Kind: Passed,
				Line: fmt.Sprintf("gate passed: %d of %d %s passed; %d quarantined %s failed and %s not fail the gate: %s", c.Passed, c.Total, plural(c.Total, "member", "members"),
					len(q), plural(len(q), "member", "members"), plural(len(q), "does", "do"), listAtMost(q)),
				Notices: []string{fmt.Sprintf("quarantined: %s failed; fix %s and remove the quarantine", listAtMost(q), plural(len(q), "it", "them"))}}
		}
		return judge(OutcomeFailed, Failed, fmt.Sprintf("%d of %d %s failed: %s", c.Failed+c.Blocked, c.Total, plural(c.Total, "member", "members"), failedList(r)))
	case api.StatusBlocked:
		return judge(OutcomeBlocked, Blocked, "run was Failed (Blocked): "+r.Reason)
	case api.StatusCancelled:
		why := r.Reason
		if why == "" {
			why = "cancelled"
		}
		return judge(OutcomeCancelled, Cancelled, "run was cancelled: "+why)
	}
	// Not terminal and neither timed out nor interrupted: the follower lost the run.
	return Verdict{Kind: NoVerdict, Line: fmt.Sprintf("%s ended without a verdict (last status %s)", runName(r), lastStatus(r))}
}

// notAccepted is what a run without a status is: zof has not heard back from
// the server yet (it may be creating it), so there is no status to name.
const notAccepted = "not yet accepted by the server"

// runName is "run ID", or "the run" before the server has named it.
func runName(r *api.Run) string {
	if r.ID == "" {
		return "the run"
	}
	return "run " + r.ID
}

// statusWords is the run's status in a sentence, e.g. "running".
func statusWords(r *api.Run) string {
	if r.Status == "" {
		return notAccepted
	}
	return strings.ToLower(r.Status.Display())
}

// lastStatus is the run's status as a name, e.g. "Running".
func lastStatus(r *api.Run) string {
	if r.Status == "" {
		return notAccepted
	}
	return r.Status.Display()
}

// quarantinedFailures are the failed members of r when every failed or
// blocked member is quarantined (and at least one is); nil otherwise.
func quarantinedFailures(r *api.Run) []string {
	var names []string
	for _, m := range r.Members {
		if m.Status != api.StatusFailed && m.Status != api.StatusBlocked {
			continue
		}
		if !m.Quarantined {
			return nil
		}
		names = append(names, m.ID)
	}
	return names
}

// failedList names the failed members, at most a handful, for the verdict line.
func failedList(r *api.Run) string {
	var names []string
	for _, m := range r.Members {
		if m.Status == api.StatusFailed || m.Status == api.StatusBlocked {
			names = append(names, m.ID)
		}
	}
	return listAtMost(names)
}

// listAtMost joins names, at most a handful of them.
func listAtMost(names []string) string {
	const most = 5
	if len(names) > most {
		return strings.Join(names[:most], ", ") + fmt.Sprintf(" and %d more", len(names)-most)
	}
	return strings.Join(names, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
