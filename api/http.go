package api

// HTTP names of the `zof serve` API (docs/api.md).
const (
	// HeaderIdempotencyKey carries the key on POST /v1/runs (IETF httpapi Idempotency-Key draft).
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderReplayed is "true" on a response that returns an existing run for a repeated key.
	HeaderReplayed = "Idempotent-Replayed"
	// HeaderLastEventID resumes an event stream after the given seq.
	HeaderLastEventID = "Last-Event-ID"
	// MediaProblem is the content type of every error body (RFC 9457).
	MediaProblem = "application/problem+json"
	// MediaEventStream is the content type of the live stream.
	MediaEventStream = "text/event-stream"
	// EventEnd is the SSE event sent after a run's terminal event, before the server closes.
	EventEnd = "end"
	// EventWait is the SSE overlay with a run's wait reason (a WaitReason, `{}` once it no
	// longer waits), sent only to a stream opened with ?wait=1; it has no id.
	EventWait = "wait"
)

// Problem is an RFC 9457 problem details body. Detail tells a person what to do.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// RunID names the run involved: the owner of an idempotency key (422), a
	// terminal run that cannot be cancelled (409).
	RunID string `json:"run_id,omitempty"`
	// Errors lists every problem of a refused definition (422).
	Errors []string `json:"errors,omitempty"`
}

// RunList is a page of GET /v1/runs, newest first; Next is the cursor of the next page.
type RunList struct {
	Runs []Run  `json:"runs"`
	Next string `json:"next,omitempty"`
}

// CancelRequest is the optional body of POST /v1/runs/{id}/cancel.
type CancelRequest struct {
	Reason string `json:"reason,omitempty"`
}

// EndData is the data of the SSE `end` event.
type EndData struct {
	RunID   string `json:"run_id"`
	Status  Status `json:"status"`
	LastSeq int64  `json:"last_seq"`
}
