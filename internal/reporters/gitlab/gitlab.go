// Package gitlab writes a run's reports to a GitLab merge request: one note,
// found again by a hidden marker and updated in place, and a commit status
// with the pipeline's id (client-go). Both need a token with `api` scope:
// CI_JOB_TOKEN cannot post them. Without one, or when GitLab refuses it, they
// are skipped with a notice; they never change the gate (docs/ci.md).
package gitlab

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"

	"github.com/zof-ai/zof-ci/api"
	cigitlab "github.com/zof-ai/zof-ci/internal/ci/gitlab"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// MaxNoteChars is the longest note body GitLab accepts: "Notes ... body:
// the content of a note. Limited to 1,000,000 characters"
// (https://docs.gitlab.com/api/notes/#create-new-merge-request-note).
const MaxNoteChars = 1_000_000

// notesPerPage is the largest page of notes (GitLab's offset pagination allows 100).
const notesPerPage = 100

// maxNotePages bounds the search for our note: 100 pages of 100 notes.
const maxNotePages = 100

// NoTokenNotice is said when no token with api scope was given.
const NoTokenNotice = "no GitLab token with api scope (set ZOF_GITLAB_TOKEN; CI_JOB_TOKEN cannot post notes or commit statuses): the merge request note and commit status are skipped"

// The reporters' names, for messages.
const (
	NoteName   = "gitlab-note"
	StatusName = "gitlab-status"
)

// Marker is the hidden first line that identifies this project and
// environment's note among a merge request's notes.
func Marker(m *secret.Masker, run *api.Run) string {
	id := report.Line(m, run.Project) + "/" + report.Line(m, run.Environment)
	id = strings.NewReplacer("--", "- -", ">", "&gt;").Replace(id) // cannot close the comment
	return "<!-- zof:" + id + " -->"
}

// notify writes a notice for the job log.
func notify(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, "zof: "+format+"\n", args...)
	}
}

// New builds the merge request note (nil outside merge request pipelines)
// and the commit status for the pipeline p. Without a token (or when the
// client cannot be made) it says so once on log and returns reporters that
// skip quietly. retry is the client's retry policy (zero: defaults).
func New(p *cigitlab.Pipeline, token string, log io.Writer, mask *secret.Masker, retry cigitlab.Retry) (*Note, *Status) {
	var c *gl.Client
	if token == "" {
		notify(log, "%s", NoTokenNotice)
	} else {
		var err error
		if c, err = cigitlab.NewClient(token, p.APIURL, nil, retry); err != nil {
			notify(log, "the merge request note and commit status are skipped: %v", err)
			c = nil
		}
	}
	var note *Note
	if p.MRIID > 0 {
		note = &Note{Client: c, Project: p.ProjectRef(), MRIID: p.MRIID, Mask: mask, Log: log}
		if p.ServerURL != "" && p.ProjectPath != "" && p.CommitSHA != "" {
			note.BlobBase = strings.TrimRight(p.ServerURL, "/") + "/" + p.ProjectPath + "/-/blob/" + p.CommitSHA
		}
	}
	// No ref: a merge request pipeline's ref is refs/merge-requests/IID/…, and
	// a ref that differs from the pipeline's would make GitLab start another
	// pipeline; sha and pipeline_id pin it.
	status := &Status{Client: c, Project: p.ProjectRef(), SHA: p.StatusSHA(), PipelineID: p.PipelineID, JobURL: p.JobURL, Mask: mask, Log: log}
	return note, status
}

// Note keeps one note per project and environment on the merge request.
type Note struct {
	// Client is nil without a token with api scope: the note is skipped.
	Client  *gl.Client
	Project string // CI_PROJECT_ID
	MRIID   int64
	Mask    *secret.Masker
	Now     func() time.Time
	// Log receives notices.
	Log io.Writer
	// BlobBase links suite lines, e.g. https://gitlab.example.com/group/proj/-/blob/SHA.
	BlobBase string

	me int64 // the token's user id (GET /user, once)
}

var _ report.Reporter = (*Note)(nil)

// Report finds the note carrying this run's marker (paging through the merge
// request's notes) and updates it, or creates it.
func (n *Note) Report(ctx context.Context, res *report.Result) error {
	if n.Client == nil {
		return nil // New said why
	}
	if n.MRIID <= 0 || res.Run == nil {
		return nil
	}
	marker := Marker(n.Mask, res.Run)
	body := marker + "\n" + noteBody(res, n.Mask, n.Now, n.BlobBase)
	body = truncate(body, MaxNoteChars)
	id, err := n.find(ctx, marker)
	if err == nil {
		if id != 0 {
			_, _, err = n.Client.Notes.UpdateMergeRequestNote(n.Project, n.MRIID, id, &gl.UpdateMergeRequestNoteOptions{Body: gl.Ptr(body)}, gl.WithContext(ctx))
		} else {
			_, _, err = n.Client.Notes.CreateMergeRequestNote(n.Project, n.MRIID, &gl.CreateMergeRequestNoteOptions{Body: gl.Ptr(body)}, gl.WithContext(ctx))
		}
	}
	if err != nil {
		explain(n.Log, "the merge request note", err)
	}
	return nil
}

// find returns the id of this project and environment's note: the one whose body starts with
// the marker and that the token's own user wrote (GitLab lets only the author edit a note; a
// person's note quoting the marker is not ours), or 0.
func (n *Note) find(ctx context.Context, marker string) (int64, error) {
	if n.me == 0 {
		u, _, err := n.Client.Users.CurrentUser(gl.WithContext(ctx))
		if err != nil {
			return 0, err
		}
		n.me = u.ID
	}
	for page := int64(1); page <= maxNotePages; page++ {
		notes, resp, err := n.Client.Notes.ListMergeRequestNotes(n.Project, n.MRIID, &gl.ListMergeRequestNotesOptions{
			ListOptions: gl.ListOptions{Page: page, PerPage: notesPerPage},
		}, gl.WithContext(ctx))
		if err != nil {
			return 0, err
		}
		for _, note := range notes {
			if !note.System && note.Author.ID == n.me && strings.HasPrefix(note.Body, marker) {
				return note.ID, nil
			}
		}
		if len(notes) < notesPerPage || resp == nil || resp.NextPage == 0 {
			return 0, nil
		}
	}
	return 0, nil
}

// explain says why a report was skipped, in words for the job log.
func explain(w io.Writer, what string, err error) {
	if cigitlab.IsPermissionDenied(err) {
		notify(w, "GitLab refused the token (%d): %s is skipped; it needs a token with api scope and at least Reporter access (CI_JOB_TOKEN cannot post it)", cigitlab.StatusCode(err), what)
		return
	}
	notify(w, "could not post %s: %v (the gate's exit code is unchanged)", what, err)
}

// truncate shortens s to max characters with a note.
func truncate(s string, max int) string {
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	note := "\n\n_Truncated at GitLab's note size limit._\n"
	return string(r[:max-len([]rune(note))]) + note
}

// noteBody is the note's markdown: status, counts, what did not pass, the selection.
func noteBody(res *report.Result, m *secret.Masker, now func() time.Time, blobBase string) string {
	run := res.Run
	var b strings.Builder
	fmt.Fprintf(&b, "### %s Zof · %s · %s: %s\n\n", icon(res), cell(report.Line(m, run.Project)), cell(report.Line(m, run.Environment)), statusWords(res))
	if res.Verdict != "" {
		fmt.Fprintf(&b, "%s\n\n", cell(report.Line(m, res.Verdict)))
	}
	c := report.Tally(run)
	b.WriteString("| total | passed | failed | blocked | cancelled | skipped | flaky |\n|---:|---:|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| %d | %d | %d | %d | %d | %d | %d |\n\n", c.Total, c.Passed, c.Failed, c.Blocked, c.Cancelled, c.Skipped+c.Unfinished, c.Flaky)
	t := time.Now()
	if now != nil {
		t = now()
	}
	facts := []string{}
	if u := report.Line(m, run.URL); u != "" {
		facts = append(facts, fmt.Sprintf("Run [%s](%s)", cell(report.Line(m, run.ID)), u))
	} else if run.ID != "" {
		facts = append(facts, "Run "+cell(report.Line(m, run.ID)))
	}
	if d := run.Duration(t); d > 0 {
		facts = append(facts, "ran "+report.FormatDuration(d))
	}
	if sha := report.Line(m, run.Source.SHA); sha != "" {
		facts = append(facts, "commit "+cell(sha))
	}
	b.WriteString(strings.Join(facts, " · ") + "\n\n")
	suite := report.Line(m, run.SuiteFile)
	var rows []string
	for i := range run.Members {
		mem := &run.Members[i]
		o := report.OutcomeOf(mem)
		if o != report.OutcomeFailed && o != report.OutcomeBlocked && o != report.OutcomeCancelled {
			continue
		}
		name := cell(report.Line(m, report.DisplayName(mem)))
		line := mem.Line
		if _, st := report.FailingStep(mem); st != nil && st.Line > 0 {
			line = st.Line
		}
		if blobBase != "" && suite != "" && line > 0 {
			name = fmt.Sprintf("[%s](%s/%s#L%d)", name, strings.TrimRight(blobBase, "/"), suite, line)
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %s |", name, o, cell(report.FailureHeadline(m, mem))))
	}
	if len(rows) > 0 {
		fmt.Fprintf(&b, "| case | status | why |\n|---|---|---|\n%s\n\n", strings.Join(rows, "\n"))
	}
	writeShadow(&b, m, res.Shadow)
	writeEvidence(&b, m, res)
	fmt.Fprintf(&b, "%s\n", cell(report.ScopeLine(m, &run.Selection)))
	if d := run.Selection.Diff; d != nil && !d.Complete && (run.Selection.Widened == nil || run.Selection.Widened.Kind != api.ReasonUnknownDiff) {
		fmt.Fprintf(&b, "\nThe change is incomplete: %s\n", cell(report.Line(m, d.Reason)))
	}
	for _, w := range run.Selection.Warnings {
		fmt.Fprintf(&b, "\n> ⚠ %s\n", cell(report.Line(m, w)))
	}
	for _, n := range res.Notices {
		fmt.Fprintf(&b, "\n> %s\n", cell(report.Line(m, n)))
	}
	return b.String()
}

func icon(res *report.Result) string {
	switch {
	case res.Gate == gate.Passed:
		return "✅"
	case res.Gate == gate.TimedOut:
		return "⏱"
	}
	return "❌"
}

func statusWords(res *report.Result) string {
	if res.Gate == gate.TimedOut {
		return "Timed out"
	}
	if res.Run == nil {
		return res.Exit.Name
	}
	return res.Run.Status.Display()
}

// cell escapes text for a markdown table cell.
func cell(s string) string {
	r := strings.NewReplacer("|", `\|`, "\\", `\\`, "<", "&lt;", ">", "&gt;", "&", "&amp;", "\n", "<br>", "`", "\\`", "[", `\[`, "]", `\]`)
	return r.Replace(s)
}

// Status posts a commit status: running at submission, the outcome at the end.
type Status struct {
	// Client is nil without a token with api scope: the status is skipped.
	Client  *gl.Client
	Project string
	// SHA is the commit (Pipeline.StatusSHA); PipelineID ties the status to
	// the pipeline (CI_PIPELINE_ID) so it does not start a second pipeline
	// in the merge request's view.
	SHA        string
	PipelineID int64
	// Ref is optional; it must be the pipeline's ref when set.
	Ref string
	// JobURL (CI_JOB_URL) is the status's link when the run has none (an embedded run).
	JobURL string
	Mask   *secret.Masker
	Log    io.Writer

	mu     sync.Mutex
	denied bool
}

var _ report.Starter = (*Status)(nil)

// maxDescription keeps the status description to one short line; GitLab shows
// it as a tooltip.
const maxDescription = 255

// StatusName is the commit status's name: "zof: <project>/<environment>".
func statusName(m *secret.Masker, run *api.Run) string {
	return "zof: " + report.Line(m, run.Project) + "/" + report.Line(m, run.Environment)
}

// Start posts state running with the run's link.
func (s *Status) Start(ctx context.Context, run *api.Run) error {
	if run == nil {
		return nil
	}
	s.post(ctx, run, "running", "running "+fmt.Sprint(len(run.Members))+" cases")
	return nil
}

// Report posts the final state: success, failed (with the reason for
// Failed (Blocked) and timeouts) or canceled.
func (s *Status) Report(ctx context.Context, res *report.Result) error {
	if res.Run == nil {
		return nil
	}
	state := "failed"
	switch {
	case res.Gate == gate.Passed:
		state = "success"
	case res.Gate == gate.Cancelled || res.Gate == gate.Interrupted:
		state = "canceled"
	}
	desc := report.Line(s.Mask, res.Verdict)
	if desc == "" {
		desc = res.Run.Status.Display()
	}
	s.post(ctx, res.Run, state, desc)
	return nil
}

func (s *Status) post(ctx context.Context, run *api.Run, state, desc string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.denied {
		return
	}
	if s.Client == nil {
		return // New said why
	}
	if r := []rune(desc); len(r) > maxDescription {
		desc = string(r[:maxDescription-1]) + "…"
	}
	opts := &gl.SetCommitStatusOptions{
		State:       gl.BuildStateValue(state),
		Name:        gl.Ptr(statusName(s.Mask, run)),
		Description: gl.Ptr(desc),
	}
	if u := report.Line(s.Mask, run.URL); u != "" {
		opts.TargetURL = gl.Ptr(u)
	} else if u := report.Line(s.Mask, s.JobURL); u != "" {
		opts.TargetURL = gl.Ptr(u)
	}
	if s.PipelineID > 0 {
		opts.PipelineID = gl.Ptr(s.PipelineID)
	}
	if s.Ref != "" {
		opts.Ref = gl.Ptr(s.Ref)
	}
	if _, _, err := s.Client.Commits.SetCommitStatus(s.Project, s.SHA, opts, gl.WithContext(ctx)); err != nil {
		if cigitlab.IsPermissionDenied(err) {
			s.denied = true
		}
		explain(s.Log, "the commit status", err)
	}
}
