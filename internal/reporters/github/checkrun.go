package github

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v62/github"

	"github.com/zof-ai/zof-ci/api"
	cigithub "github.com/zof-ai/zof-ci/internal/ci/github"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// Limits of the Checks API (https://docs.github.com/rest/checks/runs#update-a-check-run).
const (
	// MaxAnnotationsPerRequest: "The Checks API limits the number of
	// annotations to a maximum of 50 per API request. To create more than 50
	// annotations, you have to make multiple requests to the Update a check
	// run endpoint."
	MaxAnnotationsPerRequest = 50
	// MaxOutputBytes: output.summary and output.text. The reference says "Maximum length:
	// 65535 characters", but GitHub counts bytes: a longer multi-byte text is refused
	// with 422 "text exceeds a maximum bytesize of 65535".
	MaxOutputBytes = 65535
	// MaxAnnotationTitleChars: annotation title, "The maximum size is 255 characters".
	MaxAnnotationTitleChars = 255
	// MaxAnnotationMessageBytes: annotation message and raw_details, "The maximum size is 64 KB".
	MaxAnnotationMessageBytes = 64 * 1024
)

// NoPermissionNotice is printed when GitHub refuses the check run.
const NoPermissionNotice = "no checks: write permission (fork pull request?): annotations go to the log instead"

// RefusedNotice is the notice of a refused check run where there is no log
// to fall back to (zof serve: the reporter has no Log, only Notice).
const RefusedNotice = "no checks: write permission: GitHub refused the check run"

// ForkNotice is printed when the check run is not even tried: a pull request
// from a fork runs with a read-only GITHUB_TOKEN.
const ForkNotice = "pull request from a fork: its GITHUB_TOKEN is read-only, so no check run: annotations go to the log instead"

// CheckRunName is the check run reporter's name, for messages.
const CheckRunName = "github-check"

// CheckName is the check run's name: "Zof · <project> · <environment>".
func CheckName(m *secret.Masker, run *api.Run) string {
	return "Zof · " + report.Line(m, run.Project) + " · " + report.Line(m, run.Environment)
}

// CheckRun is one check run per run on the pull request's head commit: created
// in_progress with the run's link when the run is submitted (Start),
// completed with the conclusion, summary and annotations at the end (Report).
// Without permission to write checks (a 403: a fork's read-only token, or no
// `checks: write`) it says so once and writes workflow-command annotations
// instead; it never fails the gate.
type CheckRun struct {
	Client      *gh.Client
	Owner, Repo string
	// HeadSHA is the pull request's head (from the event), not GITHUB_SHA.
	HeadSHA string
	// SuiteFile is the suite's path relative to the repository root; "" uses the run's.
	SuiteFile string
	// BlobBase links suite lines in the summary (see MarkdownOptions).
	BlobBase string
	Mask     *secret.Masker
	Now      func() time.Time
	// Log receives notices and, on fallback, the workflow commands (stdout).
	Log io.Writer
	// Notice, when set, receives each notice as one plain sentence instead of
	// a ::notice workflow command in Log. Without a Log there is no fallback:
	// zof serve logs the notice as a slog line, never workflow commands.
	Notice func(msg string)
	// Retry governs rate limits and 5xx for every call.
	Retry cigithub.Retry

	mu     sync.Mutex
	id     int64
	denied bool
}

var _ report.Starter = (*CheckRun)(nil)

func (c *CheckRun) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *CheckRun) suite(run *api.Run) string {
	if c.SuiteFile != "" {
		return report.Line(c.Mask, c.SuiteFile)
	}
	if run != nil {
		return report.Line(c.Mask, run.SuiteFile)
	}
	return ""
}

// Start creates the check run in_progress, linking the run. A retried step
// in the same job attempt submits the same run (same idempotency key, same
// run id): the check run already on the commit with that run id as its
// external_id is reused instead of adding a second one.
func (c *CheckRun) Start(ctx context.Context, run *api.Run) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.denied || run == nil {
		return nil
	}
	name := CheckName(c.Mask, run)
	if id, err := c.find(ctx, name, run.ID); err == nil && id != 0 {
		c.id = id
		return nil
	} else if err != nil && c.degrade(err) {
		return nil
	}
	opts := gh.CreateCheckRunOptions{
		Name:       name,
		HeadSHA:    c.HeadSHA,
		Status:     gh.String("in_progress"),
		ExternalID: gh.String(run.ID),
		StartedAt:  &gh.Timestamp{Time: c.now()},
		Output: &gh.CheckRunOutput{
			Title:   gh.String("Running"),
			Summary: gh.String(FitOutput(startSummary(c.Mask, run))),
		},
	}
	if u := report.Line(c.Mask, run.URL); isHTTP(u) {
		opts.DetailsURL = gh.String(u)
	}
	var cr *gh.CheckRun
	err := c.Retry.Do(ctx, func() (*gh.Response, error) {
		var resp *gh.Response
		var err error
		cr, resp, err = c.Client.Checks.CreateCheckRun(ctx, c.Owner, c.Repo, opts)
		return resp, err
	})
	if err != nil {
		if c.degrade(err) {
			return nil
		}
		return fmt.Errorf("create the check run: %w (it is created again when the run ends)", err)
	}
	c.id = cr.GetID()
	return nil
}

// find returns the id of this run's check run on the commit, or 0.
func (c *CheckRun) find(ctx context.Context, name, runID string) (int64, error) {
	if runID == "" {
		return 0, nil
	}
	var res *gh.ListCheckRunsResults
	err := c.Retry.Do(ctx, func() (*gh.Response, error) {
		var resp *gh.Response
		var err error
		res, resp, err = c.Client.Checks.ListCheckRunsForRef(ctx, c.Owner, c.Repo, c.HeadSHA, &gh.ListCheckRunsOptions{CheckName: gh.String(name), ListOptions: gh.ListOptions{PerPage: 100}})
		return resp, err
	})
	if err != nil {
		return 0, err
	}
	for _, cr := range res.CheckRuns {
		if cr.GetExternalID() == runID {
			return cr.GetID(), nil
		}
	}
	return 0, nil
}

// degrade handles a refused request: on a permission error it says why once
// and switches to the log; it reports whether it did.
func (c *CheckRun) degrade(err error) bool {
	if !cigithub.IsPermissionDenied(err) {
		return false
	}
	if !c.denied {
		c.denied = true
		if c.Log == nil {
			c.notice(RefusedNotice)
		} else {
			c.notice(NoPermissionNotice)
		}
	}
	return true
}

func (c *CheckRun) notice(msg string) {
	if c.Notice != nil {
		c.Notice(msg)
		return
	}
	if c.Log != nil {
		fmt.Fprintln(c.Log, (&workflowCommand{name: "notice", props: [][2]string{{"title", "Zof"}}, msg: msg}).String())
	}
}

// Report completes the check run: conclusion, title, summary, text and the
// annotations, 50 per request (the first batch with the completion, the rest
// in further updates). If GitHub refuses or fails, the annotations go to the
// log as workflow commands with a notice saying why.
func (c *CheckRun) Report(ctx context.Context, res *report.Result) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	run := res.Run
	suite := c.suite(run)
	fallback := func() error {
		if c.Log == nil {
			return nil // nowhere to write annotations: the notice said why
		}
		return (&Commands{Out: c.Log, SuiteFile: suite, Mask: c.Mask}).Report(ctx, res)
	}
	if c.denied {
		return fallback()
	}
	if run == nil {
		// Nothing was submitted (empty selection, invalid suite): no check run to complete.
		if c.id == 0 {
			return nil
		}
	}
	out := c.output(res, suite)
	anns := annotations(failures(run, c.Mask), suite)
	first := anns[:min(len(anns), MaxAnnotationsPerRequest)]
	rest := anns[len(first):]
	conclusion := Conclusion(res)
	out.Annotations = first
	name := "Zof"
	if run != nil {
		name = CheckName(c.Mask, run)
	}
	completed := &gh.Timestamp{Time: c.now()}
	err := c.Retry.Do(ctx, func() (*gh.Response, error) {
		if c.id == 0 {
			opts := gh.CreateCheckRunOptions{
				Name: name, HeadSHA: c.HeadSHA, Status: gh.String("completed"), Conclusion: gh.String(conclusion),
				CompletedAt: completed, Output: out,
			}
			if run != nil {
				opts.ExternalID = gh.String(run.ID)
				if u := report.Line(c.Mask, run.URL); isHTTP(u) {
					opts.DetailsURL = gh.String(u)
				}
			}
			cr, resp, err := c.Client.Checks.CreateCheckRun(ctx, c.Owner, c.Repo, opts)
			if err == nil {
				c.id = cr.GetID()
			}
			return resp, err
		}
		_, resp, err := c.Client.Checks.UpdateCheckRun(ctx, c.Owner, c.Repo, c.id, gh.UpdateCheckRunOptions{
			Name: name, Status: gh.String("completed"), Conclusion: gh.String(conclusion), CompletedAt: completed, Output: out,
		})
		return resp, err
	})
	for err == nil && len(rest) > 0 {
		batch := rest[:min(len(rest), MaxAnnotationsPerRequest)]
		rest = rest[len(batch):]
		more := *out
		more.Annotations = batch
		err = c.Retry.Do(ctx, func() (*gh.Response, error) {
			_, resp, err := c.Client.Checks.UpdateCheckRun(ctx, c.Owner, c.Repo, c.id, gh.UpdateCheckRunOptions{Name: name, Output: &more})
			return resp, err
		})
	}
	if err != nil {
		if !c.degrade(err) {
			msg := fmt.Sprintf("could not post the check run (%s)", report.Line(c.Mask, err.Error()))
			if c.Log != nil {
				msg += ": annotations go to the log instead"
			}
			c.notice(msg)
			c.completeMinimal(ctx, res, name, conclusion, completed)
		}
		return fallback()
	}
	return nil
}

// completeMinimal completes the check run with the conclusion and a one-line summary with
// the run's link, after the full completion failed (a 422, a 5xx after retries): whatever
// the reason, no check run is left in_progress. A check run already completed by the first
// request (an annotation batch failed later) is completed again with the same conclusion,
// which changes nothing that matters.
func (c *CheckRun) completeMinimal(ctx context.Context, res *report.Result, name, conclusion string, completed *gh.Timestamp) {
	_, status := headline(res)
	title := status
	if res.Verdict != "" {
		title = report.Line(c.Mask, res.Verdict)
	}
	summary := title + "."
	if u := runURL(res); u != "" {
		summary += " The whole result: " + u
	}
	out := &gh.CheckRunOutput{Title: gh.String(truncateRunes(title, 1000, "…")), Summary: gh.String(FitOutput(summary))}
	err := c.Retry.Do(ctx, func() (*gh.Response, error) {
		if c.id == 0 {
			opts := gh.CreateCheckRunOptions{Name: name, HeadSHA: c.HeadSHA, Status: gh.String("completed"), Conclusion: gh.String(conclusion), CompletedAt: completed, Output: out}
			if res.Run != nil {
				opts.ExternalID = gh.String(res.Run.ID)
				if u := report.Line(c.Mask, res.Run.URL); isHTTP(u) {
					opts.DetailsURL = gh.String(u)
				}
			}
			cr, resp, err := c.Client.Checks.CreateCheckRun(ctx, c.Owner, c.Repo, opts)
			if err == nil {
				c.id = cr.GetID()
			}
			return resp, err
		}
		_, resp, err := c.Client.Checks.UpdateCheckRun(ctx, c.Owner, c.Repo, c.id, gh.UpdateCheckRunOptions{
			Name: name, Status: gh.String("completed"), Conclusion: gh.String(conclusion), CompletedAt: completed, Output: out,
		})
		return resp, err
	})
	if err != nil {
		c.notice(fmt.Sprintf("could not complete the check run either (%s)", report.Line(c.Mask, err.Error())))
	}
}

// Conclusion maps the result to a check run conclusion: the run's status,
// timed_out for a deadline, failure for Failed (Blocked) and errors,
// neutral when the gate passed although the run did not (a status outside
// fail_on).
func Conclusion(res *report.Result) string {
	switch res.Gate {
	case gate.TimedOut:
		return "timed_out"
	case gate.Interrupted, gate.Cancelled:
		return "cancelled"
	}
	if res.Run == nil {
		if res.Gate == gate.Passed {
			return "success"
		}
		return "failure"
	}
	s := res.Run.Status
	switch {
	case s == api.StatusPassed && res.Gate == gate.Passed:
		return "success"
	case res.Gate == gate.Passed:
		return "neutral"
	case s == api.StatusCancelled:
		return "cancelled"
	}
	return "failure"
}

// output is the check run's title, summary (the step summary's markdown) and
// text (each failure with its step log), each within 65,535 bytes.
func (c *CheckRun) output(res *report.Result, suite string) *gh.CheckRunOutput {
	_, status := headline(res)
	title := status
	if res.Verdict != "" {
		title = report.Line(c.Mask, res.Verdict)
	}
	note := "\n\n_Truncated at GitHub's 65,535-byte limit."
	if u := runURL(res); u != "" {
		note += " The whole result: " + u
	}
	note += "_\n"
	summary := Markdown(res, MarkdownOptions{Mask: c.Mask, Now: c.Now, BlobBase: c.BlobBase, SuiteFile: suite})
	out := &gh.CheckRunOutput{
		Title:   gh.String(truncateRunes(title, 1000, "…")),
		Summary: gh.String(truncateBytes(summary, MaxOutputBytes, note)),
	}
	if text := details(res.Run, c.Mask, suite); text != "" {
		out.Text = gh.String(truncateBytes(text, MaxOutputBytes, note))
	}
	return out
}

// details is every failure with where it happened and the failing step's log.
func details(run *api.Run, m *secret.Masker, suite string) string {
	var b strings.Builder
	for _, f := range failures(run, m) {
		fmt.Fprintf(&b, "### %s (%s)\n\n", cell(f.Title), f.Outcome)
		if w := report.Where(suite, f.Line); w != "" {
			fmt.Fprintf(&b, "%s\n\n", cell(w))
		}
		msg := f.Message
		if f.Details != "" {
			tail, cut := report.Tail(f.Details, 40)
			msg += "\n\noutput"
			if cut > 0 {
				msg += fmt.Sprintf(" (last 40 lines, %d before)", cut)
			}
			msg += ":\n" + tail
		}
		fc := fence(msg)
		fmt.Fprintf(&b, "%s\n%s\n%s\n\n", fc, msg, fc)
	}
	return b.String()
}

// annotations turns failures into check run annotations on the suite file;
// without a suite path there is nothing to point at.
func annotations(fs []failure, suite string) []*gh.CheckRunAnnotation {
	if suite == "" {
		return nil
	}
	out := make([]*gh.CheckRunAnnotation, 0, len(fs))
	for _, f := range fs {
		line := max(f.Line, 1)
		a := &gh.CheckRunAnnotation{
			Path:            gh.String(suite),
			StartLine:       gh.Int(line),
			EndLine:         gh.Int(line),
			AnnotationLevel: gh.String("failure"),
			Title:           gh.String(truncateRunes(f.Title, MaxAnnotationTitleChars, "…")),
			Message:         gh.String(truncateBytes(f.Message, MaxAnnotationMessageBytes, "\n… (truncated)")),
		}
		if f.Details != "" {
			a.RawDetails = gh.String(truncateBytes(f.Details, MaxAnnotationMessageBytes, "\n… (truncated)"))
		}
		out = append(out, a)
	}
	return out
}

func startSummary(m *secret.Masker, run *api.Run) string {
	s := fmt.Sprintf("Run %s: %s on %s, %s.", report.Line(m, run.ID), plural(len(run.Members), "case", "cases"), report.Line(m, run.Environment), report.ScopeLine(m, &run.Selection))
	if u := report.Line(m, run.URL); isHTTP(u) {
		s += " Follow it live: " + u
	}
	return s
}
