package runner

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/exitcode"
)

// The outcomes gate.fail_on and --fail-on may list (shared/spec/suite.md).
const (
	OutcomeFailed    = "failed"
	OutcomeBlocked   = "blocked"
	OutcomeCancelled = "cancelled"
	OutcomeTimeout   = "timeout"
)

var allOutcomes = []string{OutcomeFailed, OutcomeBlocked, OutcomeCancelled, OutcomeTimeout}

// ParseFailOn checks a fail_on list; empty means all four outcomes.
func ParseFailOn(list []string) ([]string, error) {
	if len(list) == 0 {
		return allOutcomes, nil
	}
	out := make([]string, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(strings.ToLower(s))
		if !slices.Contains(allOutcomes, s) {
			return nil, exitcode.Errorf(exitcode.Usage, "--fail-on %q: use a comma-separated list of %s", s, strings.Join(allOutcomes, ", "))
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
	// Its exit code (69 when it has none) wins over the timeout's.
	Lost error
}

// Verdict is the gate's decision: the exit code, one line saying why, and notices
// a person must see (a status outside fail_on passes, but not silently).
func Verdict(o Outcome, failOn []string) (exitcode.Code, string, []string) {
	r := o.Run
	c := r.Count()
	var notices []string
	judge := func(outcome string, code exitcode.Code, line string) (exitcode.Code, string, []string) {
		if slices.Contains(failOn, outcome) {
			return code, "gate failed: " + line, notices
		}
		notices = append(notices, fmt.Sprintf("%s is not in fail_on (%s): the gate passes anyway", outcome, strings.Join(failOn, ", ")))
		return exitcode.OK, "gate passed with notice: " + line, notices
	}
	switch {
	case o.Interrupted:
		// An interrupt is the person's decision; it wins over everything else.
		return exitcode.Interrupted, fmt.Sprintf("interrupted: run %s was %s; reports hold what finished", r.ID, strings.ToLower(r.Status.Display())), notices
	case o.Lost != nil && !r.Status.Terminal():
		code := exitcode.Of(o.Lost)
		if code == exitcode.Usage || code == exitcode.OK {
			code = exitcode.Unavailable // no code of its own: an infrastructure failure, not the user's input
		}
		return code, fmt.Sprintf("gate failed: lost run %s (last status %s): %v", r.ID, r.Status.Display(), o.Lost), notices
	case o.TimedOut:
		return judge(OutcomeTimeout, exitcode.Timeout, fmt.Sprintf("no verdict within %s; run %s was %s (%d of %d cases finished)", o.Timeout, r.ID, strings.ToLower(r.Status.Display()), c.Passed+c.Failed+c.Cancelled+c.Blocked, c.Total))
	}
	switch r.Status {
	case api.StatusPassed:
		line := fmt.Sprintf("gate passed: %d of %d %s passed", c.Passed, c.Total, plural(c.Total, "member", "members"))
		if c.Flaky > 0 {
			line += fmt.Sprintf(" (%d flaky)", c.Flaky)
		}
		return exitcode.OK, line, notices
	case api.StatusFailed:
		return judge(OutcomeFailed, exitcode.Failed, fmt.Sprintf("%d of %d %s failed: %s", c.Failed+c.Blocked, c.Total, plural(c.Total, "member", "members"), failedList(r)))
	case api.StatusBlocked:
		return judge(OutcomeBlocked, exitcode.Blocked, "run was Failed (Blocked): "+r.Reason)
	case api.StatusCancelled:
		why := r.Reason
		if why == "" {
			why = "cancelled"
		}
		return judge(OutcomeCancelled, exitcode.Cancelled, "run was cancelled: "+why)
	}
	// Not terminal and neither timed out nor interrupted: the follower lost the run.
	return exitcode.Unavailable, fmt.Sprintf("run %s ended without a verdict (last status %s)", r.ID, r.Status.Display()), notices
}

// failedList names the failed members, at most a handful, for the verdict line.
func failedList(r *api.Run) string {
	const most = 5
	var names []string
	for _, m := range r.Members {
		if m.Status == api.StatusFailed || m.Status == api.StatusBlocked {
			names = append(names, m.ID)
		}
	}
	if len(names) > most {
		return strings.Join(names[:most], ", ") + fmt.Sprintf(" and %d more", len(names)-most)
	}
	return strings.Join(names, ", ")
}
