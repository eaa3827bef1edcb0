package api

import "time"

// SelectionHealth is the answer of GET /v1/health/selection: how safe
// change-aware selection has been, measured by the project's shadow runs
// over a window (docs/health.md, "Selection safety").
type SelectionHealth struct {
	Project     string    `json:"project"`
	Environment string    `json:"environment,omitempty"`
	Since       time.Time `json:"since"`
	Until       time.Time `json:"until"`
	// ShadowRuns counts the shadow runs in the window; FaultyRuns those
	// with at least one failed member; CaughtRuns the faulty runs in which
	// the subset ran at least one failure.
	ShadowRuns int `json:"shadow_runs"`
	FaultyRuns int `json:"faulty_runs"`
	CaughtRuns int `json:"caught_runs"`
	// FaultyRunRecall is CaughtRuns / FaultyRuns (Meta's bar: > 99.9 %);
	// nil without a faulty run.
	FaultyRunRecall *float64 `json:"faulty_run_recall"`
	// Failures counts failed members; CaughtFailures those in the subset.
	Failures       int `json:"failures"`
	CaughtFailures int `json:"caught_failures"`
	// FailureRecall is CaughtFailures / Failures (Meta's bar: > 95 %); nil
	// without a failure.
	FailureRecall *float64 `json:"failure_recall"`
	// CaseShare is the share of members the subsets ran, TimeShare the
	// share of the members' time, over every shadow run (0–1).
	CaseShare float64 `json:"case_share"`
	TimeShare float64 `json:"time_share"`
	// Curve is recall against time saved as the subsets are widened by the
	// most often missed cases, one at a time (first point: the subsets as
	// they were; last: every case).
	Curve []RecallPoint `json:"curve"`
	// Missed are the cases the subsets missed failures of, most often first.
	Missed []MissedCase `json:"missed"`
}

// Selection safety bars (Meta's predictive test selection).
const (
	FaultyRunRecallBar = 0.999
	FailureRecallBar   = 0.95
)

// RecallPoint is one point of SelectionHealth.Curve.
type RecallPoint struct {
	// Added is how many of the most often missed cases the subsets are
	// widened by; Case the one this point adds. All: every case runs.
	Added           int      `json:"added"`
	Case            string   `json:"case,omitempty"`
	All             bool     `json:"all,omitempty"`
	FaultyRunRecall *float64 `json:"faulty_run_recall"`
	FailureRecall   *float64 `json:"failure_recall"`
	// TimeSaved is 1 - the widened subsets' share of the time.
	TimeSaved float64 `json:"time_saved"`
}

// MissedCase is a case (and variant) whose failures the subsets missed.
type MissedCase struct {
	Case    string `json:"case"`
	Variant string `json:"variant,omitempty"`
	// Missed counts its failures outside the subset; Runs the shadow runs in
	// which it was left out.
	Missed int `json:"missed"`
	Runs   int `json:"runs"`
	// Why is the most frequent reason it was left out (an api.ShadowWhy*
	// kind), Reasons every reason with how often; Detail and Files are from
	// its latest miss (the changed files, when the selection kept them).
	Why     string         `json:"why"`
	Reasons map[string]int `json:"reasons"`
	Detail  string         `json:"detail"`
	Files   []string       `json:"files,omitempty"`
	LastRun string         `json:"last_run_id"`
	// Hint says how to widen the case's covers so the subset selects it.
	Hint string `json:"hint"`
}
