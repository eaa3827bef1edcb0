package web

import (
	"slices"
	"time"

	"github.com/adhocore/gronx"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

// Schedules are the server's cron schedules (*config.Config has them).
type Schedules interface {
	AllSchedules() []*config.Schedule
}

var _ Schedules = (*config.Config)(nil)

// Stuck lists runs in a state that is a fault (*engine.Engine has it).
type Stuck interface {
	Stuck() []engine.StuckRun
}

var _ Stuck = (*engine.Engine)(nil)

// Home page sizes.
const (
	homeUpcoming = 5  // schedules shown
	homeCases    = 10 // failing cases shown
)

// UpcomingView is a schedule's next tick.
type UpcomingView struct {
	Name, Environment, When, In string
}

// StuckView is a stuck run of the tenant.
type StuckView struct {
	RunID, Why string
	Tag        Tag
	Since      string
}

// FailingCase is a case that failed in the last 24 hours.
type FailingCase struct {
	Project, Case string
	Failed, Of    int
	LastRun       string
}

// upcoming are the tenant's next schedule ticks after now, soonest first.
func upcoming(s Schedules, tenant string, now time.Time) []UpcomingView {
	type tick struct {
		sc   *config.Schedule
		next time.Time
	}
	var ticks []tick
	for _, sc := range s.AllSchedules() {
		if sc.Tenant != tenant {
			continue
		}
		loc := sc.Location
		if loc == nil {
			loc = time.UTC
		}
		next, err := gronx.NextTickAfter(sc.Cron, now.In(loc), false)
		if err != nil {
			continue // the config check refuses bad expressions; nothing to show
		}
		ticks = append(ticks, tick{sc, next})
	}
	slices.SortFunc(ticks, func(a, b tick) int { return a.next.Compare(b.next) })
	var out []UpcomingView
	for _, t := range ticks[:min(len(ticks), homeUpcoming)] {
		out = append(out, UpcomingView{Name: t.sc.Name, Environment: t.sc.Environment,
			When: t.next.Format("2006-01-02 15:04 MST"), In: human(t.next.Sub(now).Round(time.Minute))})
	}
	return out
}

// stuckOf are the tenant's stuck runs.
func stuckOf(s Stuck, tenant string) []StuckView {
	var out []StuckView
	for _, r := range s.Stuck() {
		if r.Tenant == tenant {
			out = append(out, StuckView{RunID: r.RunID, Why: r.Why, Tag: statusTag(r.Status), Since: r.Since.UTC().Format("2006-01-02 15:04:05")})
		}
	}
	return out
}

// caseTally counts the finished members of the day's runs per case, to
// find the cases that failed most.
type caseTally map[[2]string]*FailingCase

// add counts the passed and failed members of a finished run.
func (t caseTally) add(run *api.Run) {
	for i := range run.Members {
		m := &run.Members[i]
		if m.Status != api.StatusPassed && m.Status != api.StatusFailed {
			continue // cancelled, blocked or never run: says nothing about the case
		}
		k := [2]string{run.Project, m.ID}
		fc := t[k]
		if fc == nil {
			fc = &FailingCase{Project: run.Project, Case: m.ID}
			t[k] = fc
		}
		fc.Of++
		if m.Status == api.StatusFailed {
			fc.Failed++
			if fc.LastRun == "" { // runs come newest first
				fc.LastRun = run.ID
			}
		}
	}
}

// top are the cases with failures, most failures first.
func (t caseTally) top() []FailingCase {
	var out []FailingCase
	for _, fc := range t {
		if fc.Failed > 0 {
			out = append(out, *fc)
		}
	}
	slices.SortFunc(out, func(a, b FailingCase) int {
		if a.Failed != b.Failed {
			return b.Failed - a.Failed
		}
		if a.Project != b.Project {
			return compare(a.Project, b.Project)
		}
		return compare(a.Case, b.Case)
	})
	return out[:min(len(out), homeCases)]
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
