package api

import "time"

// Trigger kinds (Source.Trigger of the runs they create).
const (
	TriggerCI       = "ci"
	TriggerAPI      = "api"
	TriggerWebhook  = "webhook"
	TriggerSchedule = "schedule"
)

// TriggerState is where a webhook delivery or schedule tick is:
// accepted → processing → run_created | ignored | failed. A failed trigger
// may be processed again (a retry after a restart) and so leave failed.
type TriggerState string

// Trigger states.
const (
	TriggerAccepted   TriggerState = "accepted"
	TriggerProcessing TriggerState = "processing"
	TriggerRunCreated TriggerState = "run_created"
	TriggerIgnored    TriggerState = "ignored"
	TriggerFailed     TriggerState = "failed"
)

// Valid reports whether s is one of the states.
func (s TriggerState) Valid() bool {
	switch s {
	case TriggerAccepted, TriggerProcessing, TriggerRunCreated, TriggerIgnored, TriggerFailed:
		return true
	}
	return false
}

// Done reports whether processing has ended (run_created, ignored, failed).
func (s TriggerState) Done() bool {
	return s == TriggerRunCreated || s == TriggerIgnored || s == TriggerFailed
}

// Trigger is a webhook delivery or a schedule tick as GET /v1/triggers and the
// webhook endpoints show it.
type Trigger struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant,omitempty"`
	// Kind is webhook or schedule; Source is github, gitlab or schedule.
	Kind   string `json:"kind"`
	Source string `json:"source"`
	// Key is the delivery id (webhooks) or "NAME@TICK" (schedules).
	Key string `json:"key"`
	// Event is the provider's event and action ("pull_request.synchronize",
	// "merge_request.update", "push") or the schedule's name.
	Event     string       `json:"event,omitempty"`
	Repo      string       `json:"repo,omitempty"`
	Ref       string       `json:"ref,omitempty"`
	SHA       string       `json:"sha,omitempty"`
	PR        int          `json:"pr,omitempty"`
	State     TriggerState `json:"state"`
	Reason    string       `json:"reason,omitempty"`
	RunID     string       `json:"run_id,omitempty"`
	Attempts  int          `json:"attempts,omitempty"`
	CreatedAt time.Time    `json:"created_at"`
	UpdatedAt time.Time    `json:"updated_at"`
}

// TriggerList is a page of GET /v1/triggers, newest first.
type TriggerList struct {
	Triggers []Trigger `json:"triggers"`
	Next     string    `json:"next,omitempty"`
}
