package report

import (
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// Outcome is how a member is reported. The outcomes partition the members, so
// counts add up to the total.
type Outcome string

// Member outcomes.
const (
	OutcomePassed     Outcome = "passed"     // passed (possibly flaky)
	OutcomeFailed     Outcome = "failed"     // a step failed
	OutcomeBlocked    Outcome = "blocked"    // Failed (Blocked): never allowed to run
	OutcomeCancelled  Outcome = "cancelled"  // cancelled after it started
	OutcomeSkipped    Outcome = "skipped"    // never ran: cancelled before it started, or not started when the report was written
	OutcomeUnfinished Outcome = "unfinished" // started but not finished when the report was written (timeout, interrupt)
)

// OutcomeOf classifies a member.
func OutcomeOf(m *api.Member) Outcome {
	switch m.Status {
	case api.StatusPassed:
		return OutcomePassed
	case api.StatusFailed:
		return OutcomeFailed
	case api.StatusBlocked:
		return OutcomeBlocked
	case api.StatusCancelled:
		if m.StartedAt.IsZero() {
			return OutcomeSkipped
		}
		return OutcomeCancelled
	}
	if m.StartedAt.IsZero() {
		return OutcomeSkipped
	}
	return OutcomeUnfinished
}

// Counts are the members by outcome; Flaky counts passed members marked flaky.
type Counts struct {
	Total      int `json:"total"`
	Passed     int `json:"passed"`
	Failed     int `json:"failed"`
	Blocked    int `json:"blocked"`
	Cancelled  int `json:"cancelled"`
	Skipped    int `json:"skipped"`
	Unfinished int `json:"unfinished"`
	Flaky      int `json:"flaky"`
}

// Tally counts a run's members by outcome.
func Tally(r *api.Run) Counts {
	var c Counts
	if r == nil {
		return c
	}
	for i := range r.Members {
		m := &r.Members[i]
		c.Total++
		switch OutcomeOf(m) {
		case OutcomePassed:
			c.Passed++
		case OutcomeFailed:
			c.Failed++
		case OutcomeBlocked:
			c.Blocked++
		case OutcomeCancelled:
			c.Cancelled++
		case OutcomeSkipped:
			c.Skipped++
		case OutcomeUnfinished:
			c.Unfinished++
		}
		if m.Flaky {
			c.Flaky++
		}
	}
	return c
}

// MemberDuration is how long a member ran: finished minus started, or now minus
// started while it is unfinished; 0 when it never started.
func MemberDuration(m *api.Member, now time.Time) time.Duration {
	if m.StartedAt.IsZero() {
		return 0
	}
	end := m.FinishedAt
	if end.IsZero() {
		end = now
	}
	if d := end.Sub(m.StartedAt); d > 0 {
		return d
	}
	return 0
}

// FailingStep returns the 1-based index and the step that decided a member's
// failure (the first failed step, else the first cancelled one), or 0, nil.
func FailingStep(m *api.Member) (int, *api.StepResult) {
	for _, want := range []api.StepStatus{api.StepFailed, api.StepCancelled} {
		for i := range m.Steps {
			if m.Steps[i].Status == want {
				return i + 1, &m.Steps[i]
			}
		}
	}
	return 0, nil
}

// DisplayName is how a member is named in reports: the case id, then the
// variant in brackets ("checkout [eur]").
func DisplayName(m *api.Member) string {
	c := m.Case
	if c == "" {
		c = m.ID
	}
	if m.Variant == "" {
		return c
	}
	return c + " [" + m.Variant + "]"
}
