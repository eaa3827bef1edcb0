// Package web renders runs as HTML: the pages of zof serve's console and the
// self-contained report of an embedded run (`zof run --html`), from the same
// templates (docs/console.md). Everything a run carries — suite names, step
// output, response bodies — is untrusted text: it only ever reaches a page
// through html/template's contextual escaping.
package web

import (
	"fmt"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/gate"
)

// Tag is a status as a person sees it: a label and an icon, never colour alone.
type Tag struct {
	Class string // CSS class suffix: the wire status
	Icon  string
	Label string
}

// statusTag is the tag of a run or member status.
func statusTag(s api.Status) Tag {
	icons := map[api.Status]string{
		api.StatusInitial:   "○",
		api.StatusQueued:    "◷",
		api.StatusRunning:   "▶",
		api.StatusPassed:    "✔",
		api.StatusFailed:    "✖",
		api.StatusCancelled: "⊘",
		api.StatusBlocked:   "⛔",
	}
	icon, ok := icons[s]
	if !ok {
		icon = "?"
	}
	return Tag{Class: string(s), Icon: icon, Label: s.Display()}
}

// stepTag is the tag of a step status.
func stepTag(s api.StepStatus) Tag {
	icons := map[api.StepStatus]string{
		api.StepPending:   "○",
		api.StepRunning:   "▶",
		api.StepPassed:    "✔",
		api.StepFailed:    "✖",
		api.StepSkipped:   "–",
		api.StepCancelled: "⊘",
	}
	label := string(s)
	if label != "" {
		label = strings.ToUpper(label[:1]) + label[1:]
	}
	return Tag{Class: string(s), Icon: icons[s], Label: label}
}

// RunView is a run prepared for the templates.
type RunView struct {
	Run      *api.Run
	Tag      Tag
	Overlay  string // the run's substate while it waits, e.g. "In queue (position 2)"
	Counts   api.Counts
	Bar      []BarPart
	Queued   string // time from creation to start, "" before it started
	Ran      string // time from start to finish (or now)
	Commit   Link
	PR       Link
	Members  []MemberView
	Failures []FailureView
	// Cases is the selection: each selected case with why.
	Cases []CaseView
	// Live is true while the run is not terminal: the page follows its events.
	Live bool
	// Base prefixes links to other pages ("" at the console's root).
	Base string
	// Filter and Pager say which members the members panel shows (the
	// console pages a large run; the report shows every member).
	Filter string
	Pager  *Pager
	// Evidence links failed steps to their artifacts, by the step's LogID (artifacts.go).
	Evidence map[string][]ArtifactLink
	// Shadow is a shadow run's subset result (templates/shadow.html); nil
	// for other runs.
	Shadow *ShadowView
}

// ShadowView is a shadow run's subset result for the shadow panel.
type ShadowView struct {
	*api.ShadowResult
	TimePercent int
}

// Member filters of the run page.
const (
	FilterFailed = "failed" // failed and blocked members
	FilterFlaky  = "flaky"  // members that passed after a failed attempt
)

// Pager is the members panel's page.
type Pager struct {
	Page, Pages, Shown, Matching int
	Prev, Next                   string // query strings, "" at the ends
}

// keep reports whether member m passes the filter.
func keep(m *api.Member, filter string) bool {
	switch filter {
	case FilterFailed:
		return m.Status == api.StatusFailed || m.Status == api.StatusBlocked
	case FilterFlaky:
		return m.Flaky
	}
	return true
}

// Page keeps in the members panel only the members that pass filter, page
// page (1-based) of size per page, and says so in v.Pager. Results keep
// every failure.
func (v *RunView) Page(filter string, page, size int) {
	var kept []MemberView
	for _, mv := range v.Members {
		if keep(mv.M, filter) {
			kept = append(kept, mv)
		}
	}
	pages := max(1, (len(kept)+size-1)/size)
	page = min(max(page, 1), pages)
	lo, hi := (page-1)*size, min(page*size, len(kept))
	v.Filter = filter
	v.Members = kept[lo:hi]
	q := func(p int) string {
		s := fmt.Sprintf("?page=%d", p)
		if filter != "" {
			s += "&members=" + filter
		}
		return s
	}
	v.Pager = &Pager{Page: page, Pages: pages, Shown: hi - lo, Matching: len(kept)}
	if page > 1 {
		v.Pager.Prev = q(page - 1)
	}
	if page < pages {
		v.Pager.Next = q(page + 1)
	}
}

// Link is a text with an optional address.
type Link struct{ Text, URL string }

// BarPart is one coloured share of the outcome bar (with its text for readers).
type BarPart struct {
	Class   string
	Percent float64
	Text    string
}

// MemberView is one member row.
type MemberView struct {
	Index   int
	M       *api.Member
	Tag     Tag
	Overlay string
	Took    string
	Steps   []StepView
}

// StepView is one step of a member's latest attempt.
type StepView struct {
	S     *api.StepResult
	Tag   Tag
	Took  string
	Log   []LogLine
	LogID string // anchor prefix for line permalinks
}

// LogLine is one line of a step's output with its permalink anchor.
type LogLine struct {
	N    int
	ID   string
	Text string
}

// FailureView is one failed step with where it is in the suite file.
type FailureView struct {
	Member   string
	MemberID int
	Step     string
	F        *api.Failure
	Where    string // suite file:line
	LogID    string
}

// CaseView is one selected case and its reasons.
type CaseView struct {
	ID      string
	Reasons []string
}

// NewRunView prepares run for rendering; now is the clock for durations of
// unfinished runs.
func NewRunView(run *api.Run, now time.Time) *RunView {
	v := &RunView{Run: run, Tag: statusTag(run.Status), Counts: run.Count(), Live: !run.Status.Terminal()}
	if !run.Status.Terminal() && run.Substate != "" {
		v.Overlay = run.Substate.Display(run.Position)
	}
	if !run.StartedAt.IsZero() {
		v.Queued = human(run.StartedAt.Sub(run.CreatedAt))
		v.Ran = human(run.Duration(now))
	}
	v.Commit, v.PR = sourceLinks(run.Source)
	if sh := gate.ShadowOf(run, gate.AllOutcomes); sh != nil && run.Status.Terminal() {
		v.Shadow = &ShadowView{ShadowResult: sh, TimePercent: int(sh.TimeShare*100 + 0.5)}
	}
	c := v.Counts
	if c.Total > 0 {
		add := func(class string, n int, what string) {
			if n > 0 {
				v.Bar = append(v.Bar, BarPart{Class: class, Percent: float64(n) * 100 / float64(c.Total), Text: fmt.Sprintf("%d %s", n, what)})
			}
		}
		add("passed", c.Passed, "passed")
		add("failed", c.Failed, "failed")
		add("blocked", c.Blocked, "blocked")
		add("cancelled", c.Cancelled, "cancelled")
		add("pending", c.Total-c.Passed-c.Failed-c.Blocked-c.Cancelled, "not finished")
	}
	for i := range run.Members {
		m := &run.Members[i]
		mv := MemberView{Index: i, M: m, Tag: statusTag(m.Status)}
		if !m.Status.Terminal() && m.Substate != "" {
			mv.Overlay = m.Substate.Display(run.Position)
		}
		if !m.StartedAt.IsZero() && !m.FinishedAt.IsZero() {
			mv.Took = human(m.FinishedAt.Sub(m.StartedAt))
		}
		for j := range m.Steps {
			s := &m.Steps[j]
			sv := StepView{S: s, Tag: stepTag(s.Status), LogID: fmt.Sprintf("m%d-s%d", i, j)}
			if s.Duration > 0 {
				sv.Took = human(time.Duration(s.Duration))
			}
			for n, line := range splitLines(s.Output) {
				sv.Log = append(sv.Log, LogLine{N: n + 1, ID: fmt.Sprintf("%s-L%d", sv.LogID, n+1), Text: line})
			}
			mv.Steps = append(mv.Steps, sv)
			if s.Failure != nil {
				line := s.Line
				if line == 0 {
					line = m.Line
				}
				v.Failures = append(v.Failures, FailureView{Member: m.ID, MemberID: i, Step: s.Name, F: s.Failure, Where: where(run.SuiteFile, line), LogID: sv.LogID})
			}
		}
		v.Members = append(v.Members, mv)
	}
	for _, sc := range run.Selection.Cases {
		cv := CaseView{ID: sc.ID}
		for _, r := range sc.Reasons {
			cv.Reasons = append(cv.Reasons, r.String())
		}
		v.Cases = append(v.Cases, cv)
	}
	return v
}

func where(file string, line int) string {
	switch {
	case file == "" && line == 0:
		return ""
	case line == 0:
		return file
	case file == "":
		return fmt.Sprintf("line %d", line)
	}
	return fmt.Sprintf("%s:%d", file, line)
}

// sourceLinks are the commit and pull request of a run, linked when the
// provider's address is known.
func sourceLinks(s api.Source) (commit, pr Link) {
	if s.SHA != "" {
		commit.Text = s.SHA
		if len(commit.Text) > 12 {
			commit.Text = commit.Text[:12]
		}
	}
	base := ""
	if s.Repo != "" {
		switch s.Provider {
		case "github":
			base = "https://github.com/" + s.Repo
		case "gitlab":
			base = "https://gitlab.com/" + s.Repo
		}
	}
	if base != "" && s.SHA != "" {
		commit.URL = base + "/commit/" + s.SHA
	}
	if s.PR > 0 {
		pr.Text = fmt.Sprintf("#%d", s.PR)
		switch s.Provider {
		case "github":
			pr.URL = fmt.Sprintf("%s/pull/%d", base, s.PR)
		case "gitlab":
			pr.URL = fmt.Sprintf("%s/-/merge_requests/%d", base, s.PR)
		}
		if base == "" {
			pr.URL = ""
		}
	}
	return commit, pr
}

func splitLines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// human is a duration for a person: 850ms, 12.3s, 4m05s, 2h01m.
func human(d time.Duration) string {
	switch {
	case d < 0:
		return ""
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}
