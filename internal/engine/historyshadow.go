package engine

import (
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// ShadowRecord is what a store keeps of a finished shadow run (a run whose
// selection has a Shadow plan, docs/health.md "Selection safety"): enough
// to say, over many runs, how often the subset would have caught a faulty
// change, at what share of the time, and which cases it missed.
type ShadowRecord struct {
	Tenant      string    `json:"-"`
	Project     string    `json:"-"`
	Environment string    `json:"-"`
	RunID       string    `json:"-"`
	FinishedAt  time.Time `json:"-"`
	Commit      string    `json:"commit,omitempty"`
	Branch      string    `json:"branch,omitempty"`
	// Scope is the subset's scope (changed or smoke).
	Scope string `json:"scope"`
	// Members and Selected count the run's members and the subset's.
	Members  int `json:"members"`
	Selected int `json:"selected"`
	// Failures counts the run's failed members; Caught those in the subset.
	Failures int `json:"failures"`
	Caught   int `json:"caught"`
	// Duration sums every member's duration; SubsetDuration the subset's.
	Duration       time.Duration `json:"duration_ns"`
	SubsetDuration time.Duration `json:"subset_duration_ns"`
	// Missed are the failed members outside the subset.
	Missed []ShadowMissed `json:"missed,omitempty"`
	// Left are the members outside the subset with their durations: what
	// widening the subset to them would have cost.
	Left []ShadowLeftMember `json:"left,omitempty"`
}

// ShadowMissed is a failure outside a shadow run's subset.
type ShadowMissed struct {
	Case    string `json:"case"`
	Variant string `json:"variant,omitempty"`
	// Why and Detail are the plan's (api.ShadowWhy*); Files the changed
	// files the reason names, when the selection kept them (unmapped or
	// ignored files).
	Why    string   `json:"why"`
	Detail string   `json:"detail"`
	Files  []string `json:"files,omitempty"`
}

// ShadowLeftMember is a member outside a shadow run's subset.
type ShadowLeftMember struct {
	Case     string        `json:"case"`
	Variant  string        `json:"variant,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// ShadowOf is the record of run (a head with its members and selection)
// once terminal; false when it is not a shadow run or not terminal.
// Failures are failed members (a blocked member did not run, so it says
// nothing about the change).
func ShadowOf(run *api.Run) (ShadowRecord, bool) {
	sp := run.Selection.Shadow
	if sp == nil || !run.Status.Terminal() {
		return ShadowRecord{}, false
	}
	rec := ShadowRecord{Tenant: run.Tenant, Project: run.Project, Environment: run.Environment, RunID: run.ID,
		FinishedAt: run.FinishedAt, Commit: run.Source.SHA, Branch: run.Source.Ref, Scope: sp.Scope, Members: len(run.Members)}
	in := make(map[string]bool, len(sp.Selected))
	for _, id := range sp.Selected {
		in[id] = true
	}
	left := make(map[string]api.ShadowLeft, len(sp.Left))
	for _, l := range sp.Left {
		left[l.Case] = l
	}
	for i := range run.Members {
		m := &run.Members[i]
		var d time.Duration
		if !m.StartedAt.IsZero() && m.FinishedAt.After(m.StartedAt) {
			d = m.FinishedAt.Sub(m.StartedAt)
		}
		rec.Duration += d
		failed := m.Status == api.StatusFailed
		if failed {
			rec.Failures++
		}
		if in[m.Case] {
			rec.Selected++
			rec.SubsetDuration += d
			if failed {
				rec.Caught++
			}
			continue
		}
		rec.Left = append(rec.Left, ShadowLeftMember{Case: m.Case, Variant: m.Variant, Duration: d})
		if failed {
			l := left[m.Case]
			miss := ShadowMissed{Case: m.Case, Variant: m.Variant, Why: l.Why, Detail: l.Detail}
			switch l.Why {
			case api.ShadowWhyUnmapped:
				miss.Files = run.Selection.Unmapped
			case api.ShadowWhyIgnored:
				miss.Files = run.Selection.Ignored
			}
			rec.Missed = append(rec.Missed, miss)
		}
	}
	return rec, true
}
