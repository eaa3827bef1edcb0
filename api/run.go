package api

import (
	"fmt"
	"time"
)

// Run is a run's snapshot: what GET /v1/runs/{id} returns and what every reporter
// is fed. It is the fold of the run's event log (see Apply).
type Run struct {
	ID          string    `json:"id"`
	Tenant      string    `json:"tenant,omitempty"`
	Project     string    `json:"project"`
	Environment string    `json:"environment"`
	Status      Status    `json:"status"`
	Substate    Substate  `json:"substate,omitempty"`
	Position    int       `json:"queue_position,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	StartedAt   time.Time `json:"started_at,omitzero"`
	FinishedAt  time.Time `json:"finished_at,omitzero"`
	Members     []Member  `json:"members"`
	Selection   Selection `json:"selection"`
	Source      Source    `json:"source"`
	URL         string    `json:"url,omitempty"`
	SuiteFile   string    `json:"suite_file,omitempty"`
	// IdempotencyKey, ConcurrencyGroup and RerunOf identify the run among others.
	IdempotencyKey   string            `json:"idempotency_key,omitempty"`
	ConcurrencyGroup string            `json:"concurrency_group,omitempty"`
	RerunOf          string            `json:"rerun_of,omitempty"`
	Labels           map[string]string `json:"labels,omitempty"`
	// LastSeq is the seq of the last event folded into this snapshot.
	LastSeq int64 `json:"last_seq"`
	// Wait, on a run that waits (queued, or running with members waiting
	// for an agent), says which limit holds it (docs/agents.md). Read at
	// request time; it is not part of the event log.
	Wait *WaitReason `json:"wait,omitempty"`
}

// Member is one case and variant of a run.
type Member struct {
	ID       string   `json:"id"` // case id, or "case/variant"
	Case     string   `json:"case"`
	Name     string   `json:"name,omitempty"`
	Variant  string   `json:"variant,omitempty"`
	Set      string   `json:"set,omitempty"`
	Status   Status   `json:"status"`
	Substate Substate `json:"substate,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	// Attempt counts from 1; Flaky is a pass after a failed attempt.
	Attempt    int          `json:"attempt,omitempty"`
	Flaky      bool         `json:"flaky,omitempty"`
	StartedAt  time.Time    `json:"started_at,omitzero"`
	FinishedAt time.Time    `json:"finished_at,omitzero"`
	Steps      []StepResult `json:"steps"`
	Line       int          `json:"line,omitempty"`
	// FailedAttempts keeps the failure of each earlier attempt, for flaky reports.
	FailedAttempts []string `json:"failed_attempts,omitempty"`
	// Quarantined: the case's quarantine held when the run was created; it
	// runs and is reported but never fails the gate.
	Quarantined bool `json:"quarantined,omitempty"`
	// Wait, on a member waiting in its pool's queue, says which limit holds
	// it (docs/agents.md); read at request time, not part of the event log.
	Wait *WaitReason `json:"wait,omitempty"`
	// QuarantineReleased: the suite lists the case's quarantine, but its
	// history showed it left quarantine (Quarantine.Released), so it fails
	// the gate like any case.
	QuarantineReleased bool `json:"quarantine_released,omitempty"`
}

// StepResult is one step of the member's latest attempt.
type StepResult struct {
	Name     string     `json:"name"`
	Kind     string     `json:"kind"`
	Line     int        `json:"line,omitempty"`
	Status   StepStatus `json:"status"`
	Duration Duration   `json:"duration,omitempty"`
	Failure  *Failure   `json:"failure,omitempty"`
	// Output is the step's log (response excerpt, command output), tail-truncated.
	Output string `json:"output,omitempty"`
}

// Failure says what a failing step expected and what came back.
type Failure struct {
	Message  string `json:"message"`
	Expected string `json:"expected,omitempty"`
	Actual   string `json:"actual,omitempty"`
}

func (f *Failure) String() string {
	if f == nil {
		return ""
	}
	s := f.Message
	if f.Expected != "" {
		s += "\n  expected: " + f.Expected
	}
	if f.Actual != "" {
		s += "\n  got:      " + f.Actual
	}
	return s
}

// Duration is how long the run took, or has taken by now.
func (r *Run) Duration(now time.Time) time.Duration {
	if r.StartedAt.IsZero() {
		return 0
	}
	if !r.FinishedAt.IsZero() {
		return r.FinishedAt.Sub(r.StartedAt)
	}
	return now.Sub(r.StartedAt)
}

// Member returns the member with the given id, or nil.
func (r *Run) Member(id string) *Member {
	for i := range r.Members {
		if r.Members[i].ID == id {
			return &r.Members[i]
		}
	}
	return nil
}

// Counts are the members by outcome.
type Counts struct {
	Total, Passed, Failed, Cancelled, Blocked, Skipped, Flaky, Pending int
}

// Count tallies the members. Skipped are members that never ran (cancelled
// before they started).
func (r *Run) Count() Counts {
	var c Counts
	for _, m := range r.Members {
		c.Total++
		switch m.Status {
		case StatusPassed:
			c.Passed++
		case StatusFailed:
			c.Failed++
		case StatusBlocked:
			c.Blocked++
		case StatusCancelled:
			c.Cancelled++
			if m.StartedAt.IsZero() {
				c.Skipped++
			}
		default:
			c.Pending++
		}
		if m.Flaky {
			c.Flaky++
		}
	}
	return c
}

// MemberID is the id of the member for a case and variant.
func MemberID(caseID, variant string) string {
	if variant == "" {
		return caseID
	}
	return caseID + "/" + variant
}

// NewRun builds the initial snapshot of a run from its request: every member
// initial, every step pending.
func NewRun(id string, req *RunRequest, now time.Time) *Run {
	r := &Run{
		ID:               id,
		Project:          req.Project,
		Environment:      req.Environment.Name,
		Status:           StatusInitial,
		CreatedAt:        now,
		Selection:        req.Selection,
		Source:           req.Source,
		SuiteFile:        req.SuiteFile,
		ConcurrencyGroup: req.ConcurrencyGroup,
		Labels:           req.Labels,
	}
	setOf := map[string]string{}
	for _, s := range req.Sets {
		for _, c := range s.Cases {
			if _, ok := setOf[c]; !ok {
				setOf[c] = s.Name
			}
		}
	}
	n := 0
	for _, c := range req.Cases {
		n += max(1, len(c.Variants))
	}
	if n > 0 {
		r.Members = make([]Member, 0, n)
	}
	for _, c := range req.Cases {
		variants := c.Variants
		if len(variants) == 0 {
			variants = []Variant{{}}
		}
		for _, v := range variants {
			m := Member{
				ID:      MemberID(c.ID, v.Name),
				Case:    c.ID,
				Name:    c.Name,
				Variant: v.Name,
				Set:     setOf[c.ID],
				Status:  StatusInitial,
				Line:    c.Line,
				Steps:   make([]StepResult, len(c.Steps)),
				// Quarantined is fixed at creation, so a rerun or a
				// resume after a restart judges the run the same way.
				Quarantined:        c.Quarantine.Active(now),
				QuarantineReleased: c.Quarantine != nil && c.Quarantine.Released,
			}
			for i, s := range c.Steps {
				m.Steps[i] = StepResult{Name: s.Title(), Kind: s.Kind(), Line: s.Line, Status: StepPending}
			}
			r.Members = append(r.Members, m)
		}
	}
	return r
}

// Clone returns a deep copy, so a snapshot can be handed out while the engine goes on.
func (r *Run) Clone() *Run {
	c := *r
	c.Members = make([]Member, len(r.Members))
	for i, m := range r.Members {
		m.Steps = append([]StepResult(nil), m.Steps...)
		m.FailedAttempts = append([]string(nil), m.FailedAttempts...)
		c.Members[i] = m
	}
	return &c
}

// ApplyError reports an event that does not fit the snapshot (out of order,
// unknown member, forbidden transition).
type ApplyError struct {
	Seq int64
	Msg string
}

func (e *ApplyError) Error() string { return fmt.Sprintf("event %d: %s", e.Seq, e.Msg) }
