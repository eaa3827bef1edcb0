// Package console is the reporter a person reads: live progress while a run is
// followed, then a final summary ending with the gate's verdict.
//
// # Live progress, plain mode
//
// Without a TTY (CI logs, NO_COLOR, CI set: Options.TTY false) every event
// prints at most one line per change, with no ANSI escapes. Times are the
// event's own (At, in UTC, like CI logs), so the output is reproducible. The
// formats are stable; tools may grep them:
//
//	HH:MM:SS run ID created: PROJECT on ENV, N members        ("1 member")
//	HH:MM:SS run ID STATUS[: REASON]                       (run.status; STATUS as shown: Queued, Failed (Blocked), ...)
//	HH:MM:SS run ID STATUS · SUBSTATE                      (run.substate: "Queued · In queue (position 2)")
//	HH:MM:SS … MEMBER Queued                               (member queued)
//	HH:MM:SS … MEMBER SUBSTATE                             (member.substate: "Waiting for preceding tests")
//	HH:MM:SS ▸ MEMBER running
//	HH:MM:SS ↻ MEMBER retrying (attempt N): FAILURE        (a new attempt after a failed one)
//	HH:MM:SS ✓ MEMBER passed (DURATION)[, flaky: passed on attempt N]
//	HH:MM:SS ✗ MEMBER failed at step N "STEP"[: MESSAGE]   (MESSAGE only when no step line said it; "failed: REASON" without a failing step)
//	HH:MM:SS ✗ MEMBER Failed (Blocked)[: REASON]
//	HH:MM:SS ■ MEMBER cancelled during step N "STEP"[: REASON]   (or "cancelled before it started")
//	HH:MM:SS   MEMBER step N "STEP" STATUS[ (DURATION)][: MESSAGE]   (steps that finished: passed, failed, skipped, cancelled)
//	HH:MM:SS   MEMBER | TEXT                               (a log line; "run | TEXT" for the run's own)
//	HH:MM:SS ! TEXT                                        (a notice from the runner: Notice)
//
// MEMBER is the member id: the case id, or "case/variant". Step starts and
// events of unknown types print nothing.
//
// # Live progress, TTY mode
//
// With Options.TTY the finished lines above (run status, members finishing or
// retrying, notices) scroll as permanent lines, and below them a block is
// redrawn in place: a header line for the run and one line per unfinished
// member (at most maxBlockMembers, then "… and N more"), cut to Options.Width
// so a line never wraps. Colours only with Options.Color. Step and log lines are
// not printed in this mode; the final summary has them.
//
// # Final summary (Report)
//
// Printed in both modes: the run line; each failed member with the failing
// step, its suite file line, the failure message with expected/got and the
// tail of the step's output (on GitHub Actions, also the member's whole step
// log folded in a ::group:: block); blocked, cancelled, unfinished and not run
// members one line each; flaky members; the counts; the duration; the selection
// (scope, effective scope, widening reason, why each case is in); the notices;
// and last the verdict line exactly as the runner gave it.
//
// All outside text is masked with Options.Mask and sanitised (ANSI escapes and
// control characters removed), and a summary line that would start with "::"
// (a GitHub Actions workflow command) is quoted with "| ".
package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// Name is the reporter's name, for messages.
const Name = "console"

// Limits that keep a summary readable in a CI log with hundreds of members.
const (
	// maxDetailed failed members get the full detail; the rest one line each.
	maxDetailed = 20
	// maxListed bounds the one-line lists (blocked, cancelled, not run, flaky) and the selection reasons.
	maxListed = 20
	// outputTailLines of a failing step's output are quoted in the summary.
	outputTailLines = 20
	// maxBlockMembers bounds the redrawn TTY block, so it fits a terminal.
	maxBlockMembers = 12
)

// Reporter is the console reporter. It is safe for concurrent use.
type Reporter struct {
	mu    sync.Mutex
	out   io.Writer
	opts  report.Options
	mask  *secret.Masker
	width int
	drawn int      // lines of the TTY block on screen now
	last  []string // the block on screen, redrawn under a notice
	err   error
	// said holds the step failures already printed on a plain step line (member, attempt,
	// step), so the member's failed line does not print the same message again.
	said map[stepKey]bool
}

// stepKey names one step of one attempt of a member.
type stepKey struct {
	member        string
	attempt, step int
}

var _ report.Live = (*Reporter)(nil)

// New returns a console reporter writing to o.Out.
func New(o report.Options) (report.Reporter, error) {
	return NewConsole(o)
}

// NewConsole is New with the concrete type, for callers that use Notice.
func NewConsole(o report.Options) (*Reporter, error) {
	if o.Out == nil {
		return nil, errors.New("console reporter needs an output writer")
	}
	w := o.Width
	if w <= 0 {
		w = report.DefaultWidth
	}
	return &Reporter{out: o.Out, opts: o, mask: o.Mask, width: w}, nil
}

// write keeps the first error; later writes are skipped so a closed pipe does
// not produce one error per event.
func (r *Reporter) write(s string) {
	if r.err != nil || s == "" {
		return
	}
	_, r.err = io.WriteString(r.out, s)
}

// Event prints what changed.
func (r *Reporter) Event(run *api.Run, e api.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.opts.TTY {
		for _, l := range r.plain(run, e) {
			r.write(l + "\n")
		}
		return
	}
	var perm []string
	if permanent(run, e) {
		perm = r.plain(run, e)
	}
	if len(perm) == 0 && e.Type == api.EventLog {
		return // logs do not change the block
	}
	block := r.block(run)
	if len(perm) == 0 && slices.Equal(block, r.last) {
		return // nothing visible changed: no flicker, no output
	}
	r.redraw(perm, block)
}

// Notice prints a message for the person now, e.g. "run stuck in Initial for
// 2m0s" or "stream lost, polling", in both modes.
func (r *Reporter) Notice(at time.Time, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := stamp(at) + " " + r.sym("!") + " " + report.Line(r.mask, msg)
	if !r.opts.TTY {
		r.write(l + "\n")
		return
	}
	r.redraw([]string{l}, r.last)
}

func stamp(t time.Time) string { return t.UTC().Format("15:04:05") }

// permanent reports whether an event's plain line stays on screen in TTY mode.
func permanent(run *api.Run, e api.Event) bool {
	switch e.Type {
	case api.EventRunCreated, api.EventRunStatus:
		return true
	case api.EventMemberStatus:
		if e.Status.Terminal() {
			return true
		}
		m := run.Member(e.Member)
		return e.Status == api.StatusRunning && m != nil && m.Attempt > 1 && e.Attempt > 1
	}
	return false
}

// plain renders one event as its lines (see the package doc).
func (r *Reporter) plain(run *api.Run, e api.Event) []string {
	line := func(s string) string { return report.Line(r.mask, s) }
	at := stamp(e.At)
	runID := line(run.ID)
	switch e.Type {
	case api.EventRunCreated:
		return []string{fmt.Sprintf("%s run %s created: %s on %s, %s", at, runID, line(run.Project), line(run.Environment), plural(len(run.Members), "member"))}
	case api.EventRunStatus:
		return []string{fmt.Sprintf("%s run %s %s%s", at, runID, e.Status.Display(), reasonSuffix(line(e.Reason)))}
	case api.EventRunSubstate:
		if e.Substate == api.SubstateNone {
			return nil
		}
		return []string{fmt.Sprintf("%s run %s %s · %s", at, runID, run.Status.Display(), line(e.Substate.Display(e.Position)))}
	case api.EventMemberSubstate:
		if e.Substate == api.SubstateNone {
			return nil
		}
		return []string{fmt.Sprintf("%s %s %s %s", at, r.sym("…"), line(e.Member), line(e.Substate.Display(0)))}
	case api.EventMemberStatus:
		m := run.Member(e.Member)
		if m == nil {
			return nil
		}
		return []string{at + " " + r.memberLine(m, e)}
	case api.EventStepStatus:
		m := run.Member(e.Member)
		if m == nil || !e.StepStatus.Terminal() || e.Step < 1 || e.Step > len(m.Steps) {
			return nil
		}
		s := &m.Steps[e.Step-1]
		l := fmt.Sprintf("%s   %s step %d %q %s", at, line(m.ID), e.Step, line(s.Name), e.StepStatus)
		if s.Duration > 0 {
			l += " (" + report.FormatDuration(s.Duration.D()) + ")"
		}
		if e.StepStatus == api.StepFailed && s.Failure != nil {
			l += ": " + firstLine(r.mask, s.Failure.Message)
			if r.said == nil {
				r.said = map[stepKey]bool{}
			}
			r.said[stepKey{m.ID, m.Attempt, e.Step}] = true
		}
		return []string{l}
	case api.EventLog:
		who := "run"
		if e.Member != "" {
			who = line(e.Member)
		}
		text := strings.TrimRight(report.Clean(r.mask, e.Message), "\n")
		if text == "" {
			return nil
		}
		var out []string
		for _, t := range strings.Split(text, "\n") {
			out = append(out, strings.TrimRight(fmt.Sprintf("%s   %s | %s", at, who, t), " "))
		}
		return out
	}
	return nil
}

// memberLine is the plain line of a member status change, without the time.
func (r *Reporter) memberLine(m *api.Member, e api.Event) string {
	line := func(s string) string { return report.Line(r.mask, s) }
	id := line(m.ID)
	switch e.Status {
	case api.StatusInitial, api.StatusQueued:
		return fmt.Sprintf("%s %s %s", r.sym("…"), id, e.Status.Display())
	case api.StatusRunning:
		if e.Attempt > 1 && len(m.FailedAttempts) > 0 {
			return fmt.Sprintf("%s %s retrying (attempt %d): %s", r.sym("↻"), id, e.Attempt, line(m.FailedAttempts[len(m.FailedAttempts)-1]))
		}
		return fmt.Sprintf("%s %s running", r.sym("▸"), id)
	case api.StatusPassed:
		l := fmt.Sprintf("%s %s passed (%s)", r.sym("✓"), id, report.FormatDuration(report.MemberDuration(m, e.At)))
		if m.Flaky {
			l += fmt.Sprintf(", flaky: passed on attempt %d", m.Attempt)
		}
		return l
	case api.StatusFailed:
		n, s := report.FailingStep(m)
		if s == nil {
			return fmt.Sprintf("%s %s failed%s", r.sym("✗"), id, reasonSuffix(line(m.Reason)))
		}
		l := fmt.Sprintf("%s %s failed at step %d %q", r.sym("✗"), id, n, line(s.Name))
		if s.Failure != nil {
			if !r.said[stepKey{m.ID, m.Attempt, n}] {
				// The step's own line did not say it (TTY mode prints no step lines).
				l += reasonSuffix(firstLine(r.mask, s.Failure.Message))
			}
		} else {
			l += reasonSuffix(line(m.Reason))
		}
		return l
	case api.StatusBlocked:
		return fmt.Sprintf("%s %s %s%s", r.sym("✗"), id, api.StatusBlocked.Display(), reasonSuffix(line(m.Reason)))
	case api.StatusCancelled:
		return fmt.Sprintf("%s %s %s%s", r.sym("■"), id, cancelledHow(m, line), reasonSuffix(line(m.Reason)))
	}
	return fmt.Sprintf("%s %s", id, e.Status.Display())
}

func cancelledHow(m *api.Member, line func(string) string) string {
	if m.StartedAt.IsZero() {
		return "cancelled before it started"
	}
	for i := range m.Steps {
		if m.Steps[i].Status == api.StepCancelled {
			return fmt.Sprintf("cancelled during step %d %q", i+1, line(m.Steps[i].Name))
		}
	}
	return "cancelled"
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func reasonSuffix(reason string) string {
	if reason == "" {
		return ""
	}
	return ": " + reason
}

// firstLine is the first line of outside text, cleaned, as one line.
func firstLine(m *secret.Masker, s string) string {
	s = report.Clean(m, s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return report.Line(nil, s)
}

// ANSI sequences of the TTY mode.
const (
	ansiReset = "\x1b[0m"
	ansiUp    = "\x1b[%dA" // cursor up N lines
	ansiClear = "\x1b[J"   // clear to the end of the screen
)

var symColor = map[string]string{
	"✓": "\x1b[32m", "✗": "\x1b[31m", "■": "\x1b[33m", "▸": "\x1b[36m", "↻": "\x1b[33m", "…": "\x1b[2m", "!": "\x1b[33m", "~": "\x1b[33m",
}

// sym colours a status symbol, in TTY mode with colours only.
func (r *Reporter) sym(s string) string {
	if r.opts.TTY && r.opts.Color {
		if c, ok := symColor[s]; ok {
			return c + s + ansiReset
		}
	}
	return s
}

// block is the redrawn part of the TTY view: the run header and the
// unfinished members. A finished run has no block.
func (r *Reporter) block(run *api.Run) []string {
	if run.Status.Terminal() {
		return nil
	}
	line := func(s string) string { return report.Line(r.mask, s) }
	head := fmt.Sprintf("run %s %s", line(run.ID), run.Status.Display())
	if run.Substate != api.SubstateNone {
		head += " · " + line(run.Substate.Display(run.Position))
	}
	done, bad := 0, 0
	for _, m := range run.Members {
		if m.Status.Terminal() {
			done++
		}
		if m.Status == api.StatusFailed || m.Status == api.StatusBlocked {
			bad++
		}
	}
	head += fmt.Sprintf(" · %d/%d done", done, len(run.Members))
	if bad > 0 {
		head += fmt.Sprintf(" · %d failed", bad)
	}
	out := []string{r.fit(head)}
	shown, more := 0, 0
	for i := range run.Members {
		m := &run.Members[i]
		if m.Status.Terminal() {
			continue
		}
		if shown == maxBlockMembers {
			more++
			continue
		}
		shown++
		var l string
		switch {
		case m.Status == api.StatusRunning:
			l = fmt.Sprintf("  %s %s", r.sym("▸"), line(m.ID))
			for j := range m.Steps {
				if !m.Steps[j].Status.Terminal() {
					l += fmt.Sprintf(" · step %d/%d %s", j+1, len(m.Steps), line(m.Steps[j].Name))
					break
				}
			}
			if m.Attempt > 1 {
				l += fmt.Sprintf(" (attempt %d)", m.Attempt)
			}
		case m.Substate != api.SubstateNone:
			l = fmt.Sprintf("  %s %s · %s", r.sym("…"), line(m.ID), m.Substate.Display(0))
		default:
			l = fmt.Sprintf("  %s %s · %s", r.sym("…"), line(m.ID), m.Status.Display())
		}
		out = append(out, r.fit(l))
	}
	if more > 0 {
		out = append(out, fmt.Sprintf("  … and %d more", more))
	}
	return out
}

// fit cuts a block line to the terminal width (one column spare, so the
// cursor never wraps), keeping ANSI colour sequences whole.
func (r *Reporter) fit(s string) string {
	limit := r.width - 1
	cols, i := 0, 0
	for i < len(s) {
		if s[i] == 0x1b { // our own SGR sequences: zero width
			j := strings.IndexByte(s[i:], 'm')
			if j < 0 {
				break
			}
			i += j + 1
			continue
		}
		if cols == limit {
			cut := s[:i]
			if r.opts.Color {
				cut += ansiReset
			}
			return cut
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		cols++
	}
	return s
}

// redraw erases the block, prints the permanent lines, then the new block.
func (r *Reporter) redraw(perm, block []string) {
	var b strings.Builder
	if r.drawn > 0 {
		fmt.Fprintf(&b, "\r"+ansiUp+ansiClear, r.drawn)
	}
	for _, l := range perm {
		b.WriteString(l + "\n")
	}
	for _, l := range block {
		b.WriteString(l + "\n")
	}
	r.drawn = len(block)
	r.last = block
	r.write(b.String())
}

// Report prints the final summary; the verdict line comes last.
func (r *Reporter) Report(ctx context.Context, res *report.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.opts.TTY && r.drawn > 0 {
		r.redraw(nil, nil)
	}
	r.write(r.summary(res))
	return r.err
}
