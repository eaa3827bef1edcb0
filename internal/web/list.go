package web

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

// allStatuses are the filter's choices, in lifecycle order.
var allStatuses = []api.Status{api.StatusInitial, api.StatusQueued, api.StatusRunning, api.StatusPassed, api.StatusFailed, api.StatusCancelled, api.StatusBlocked}

// RunRow is one row of the runs list.
type RunRow struct {
	Run     *api.Run
	Tag     Tag
	Overlay string
	Took    string
	Branch  string
	PR      Link
	Created string
}

func newRunRow(r *api.Run, now time.Time) RunRow {
	row := RunRow{Run: r, Tag: statusTag(r.Status), Created: r.CreatedAt.UTC().Format("2006-01-02 15:04:05"), Branch: r.Source.Ref}
	if !r.Status.Terminal() && r.Substate != "" {
		row.Overlay = r.Substate.Display(r.Position)
	}
	if !r.StartedAt.IsZero() {
		row.Took = human(r.Duration(now))
	}
	_, row.PR = sourceLinks(r.Source)
	return row
}

// Triggers are the choices of the trigger filter: the values of a run's
// source.trigger (api.Source).
var Triggers = []string{"ci", "api", "webhook", "schedule"}

// StatusChoice is one checkbox of the status filter.
type StatusChoice struct {
	Value, Label string
	Checked      bool
}

// listBody is the runs page.
type listBody struct {
	Rows        []RunRow
	Statuses    []StatusChoice
	Project     string
	Environment string
	Branch      string
	PR          string
	Trigger     string
	Triggers    []string
	Flaky       bool
	Next        string // the next page's URL, "" on the last
	Error       string
	Deleted     string // the run just deleted, said once
}

func (c *Console) runs(w http.ResponseWriter, r *http.Request, d *pageData) (string, int) {
	q := r.URL.Query()
	f := engine.ListFilter{Project: q.Get("project"), Environment: q.Get("environment"), Limit: PageSize, Cursor: q.Get("cursor"),
		Branch: q.Get("branch"), Flaky: q.Get("flaky") != ""}
	b := &listBody{Project: f.Project, Environment: f.Environment, Branch: f.Branch, PR: q.Get("pr"), Flaky: f.Flaky,
		Triggers: Triggers, Deleted: q.Get("deleted")}
	for _, s := range allStatuses {
		on := slices.Contains(q["status"], string(s))
		if on {
			f.Statuses = append(f.Statuses, s)
		}
		b.Statuses = append(b.Statuses, StatusChoice{Value: string(s), Label: s.Display(), Checked: on})
	}
	d.Title, d.Nav, d.Body = "Runs", "runs", b
	if t := q.Get("trigger"); slices.Contains(Triggers, t) {
		f.Trigger, b.Trigger = t, t
	}
	if b.PR != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(b.PR, "#"))
		if err != nil || n < 1 {
			b.Error = fmt.Sprintf("Pull request %q is not a number: give it as 123 (or #123).", b.PR)
			return "runs.html", http.StatusBadRequest
		}
		f.PR = n
	}
	runs, next, err := c.o.Runs.List(r.Context(), d.Principal.Tenant, f)
	if err != nil {
		b.Error = "Could not list runs: " + err.Error() + ". Clear the filters or the cursor and try again."
		return "runs.html", http.StatusBadRequest
	}
	now := c.o.Now()
	for _, run := range runs {
		b.Rows = append(b.Rows, newRunRow(run, now))
	}
	if next != "" {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("cursor", next)
		nq.Del("deleted")
		b.Next = "/runs?" + nq.Encode()
	}
	return "runs.html", http.StatusOK
}

// homeBody is the home page: the last day at a glance.
type homeBody struct {
	Day      int // runs finished in the last 24 h
	Passed   int
	PassRate string
	Active   []RunRow
	Failing  []RunRow // failed or blocked in the last 24 h, newest first
	Partial  bool     // more runs than the page reads: the counts are of the newest
	// Upcoming are the next schedule ticks (nil: no schedules).
	Upcoming []UpcomingView
	// Stuck are runs in a state that is a fault; Cases the cases that
	// failed in the day's finished runs, most failures first.
	Stuck []StuckView
	Cases []FailingCase
	// EmptyPools are agent pools with no connected agent.
	EmptyPools []string
	// Attention is false when nothing needs a look.
	Attention bool
	// Coverage is each project's latest coverage by module (nil Options.Coverage:
	// the section is left out); NoCoverage the day's projects without one.
	ShowCoverage bool
	Coverage     []CoverageView
	NoCoverage   []string
}

// homeScan bounds the runs the home page reads.
const homeScan = 1000

func (c *Console) home(w http.ResponseWriter, r *http.Request, d *pageData) (string, int) {
	b := &homeBody{}
	d.Title, d.Nav, d.Body = "Home", "home", b
	now := c.o.Now()
	since := now.Add(-24 * time.Hour)
	cursor := ""
	seen := 0
	tally := caseTally{}
	projects := map[string]bool{}
	for seen < homeScan {
		runs, next, err := c.o.Runs.List(r.Context(), d.Principal.Tenant, engine.ListFilter{Limit: PageSize * 2, Cursor: cursor})
		if err != nil {
			return c.failed(d, "list runs", err)
		}
		old := false
		for _, run := range runs {
			seen++
			if run.CreatedAt.Before(since) {
				old = true
				break
			}
			projects[run.Project] = true
			switch {
			case !run.Status.Terminal():
				b.Active = append(b.Active, newRunRow(run, now))
			default:
				b.Day++
				tally.add(run)
				if run.Status == api.StatusPassed {
					b.Passed++
				}
				if (run.Status == api.StatusFailed || run.Status == api.StatusBlocked) && len(b.Failing) < 10 {
					b.Failing = append(b.Failing, newRunRow(run, now))
				}
			}
		}
		if old || next == "" {
			break
		}
		cursor = next
	}
	b.Partial = seen >= homeScan
	if b.Day > 0 {
		b.PassRate = formatPercent(b.Passed, b.Day)
	}
	if c.o.Schedules != nil {
		b.Upcoming = upcoming(c.o.Schedules, d.Principal.Tenant, now)
	}
	if c.o.Stuck != nil {
		b.Stuck = stuckOf(c.o.Stuck, d.Principal.Tenant)
	}
	b.Cases = tally.top()
	if c.o.Fleet != nil {
		pools, err := emptyPools(r.Context(), c.o.Fleet, d.Principal.Tenant)
		if err != nil {
			c.o.Logger.Warn("console: reading the fleet for the home page", "err", err)
		}
		b.EmptyPools = pools
	}
	b.Attention = len(b.Stuck) > 0 || len(b.Failing) > 0 || len(b.Cases) > 0 || len(b.EmptyPools) > 0
	if c.o.Coverage != nil {
		b.ShowCoverage = true
		views, none, err := coverageOf(r.Context(), c.o.Coverage, d.Principal.Tenant, slices.Sorted(maps.Keys(projects)), now)
		if err != nil {
			c.o.Logger.Warn("console: reading coverage for the home page", "err", err)
		}
		b.Coverage, b.NoCoverage = views, none
	}
	return "home.html", http.StatusOK
}

// formatPercent is n of of as a percentage with at most one decimal: 87.5%, 100%.
func formatPercent(n, of int) string {
	return strings.TrimSuffix(strconv.FormatFloat(float64(n)*100/float64(of), 'f', 1, 64), ".0") + "%"
}
