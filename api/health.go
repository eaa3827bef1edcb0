package api

import "time"

// Health is the answer of GET /v1/health: per case, how it behaved over a
// window of finished runs (docs/health.md).
type Health struct {
	Project     string    `json:"project"`
	Environment string    `json:"environment,omitempty"`
	Since       time.Time `json:"since"`
	Until       time.Time `json:"until"`
	// Cases are ordered worst first: broken, then by failure rate, then by id.
	Cases []CaseHealth `json:"cases"`
}

// CaseHealth is one case (and variant) over the window.
type CaseHealth struct {
	Case    string `json:"case"`
	Variant string `json:"variant,omitempty"`
	// Runs counts the runs in the window in which the case passed or failed.
	Runs     int `json:"runs"`
	Failures int `json:"failures"`
	// FailureRate is Failures / Runs, 0 to 1.
	FailureRate float64 `json:"failure_rate"`
	// FlakyRate is the share of runs in which the case passed only after
	// failing on the same commit: a retry within the run, or an earlier run.
	FlakyRate float64 `json:"flaky_rate"`
	// FlipRate is status changes (passed to failed or back, in time order)
	// divided by Runs.
	FlipRate float64 `json:"flip_rate"`
	// FailureRate7d and FailureRate30d are over the last 7 and 30 days
	// (whatever the window); nil with no run then.
	FailureRate7d  *float64 `json:"failure_rate_7d"`
	FailureRate30d *float64 `json:"failure_rate_30d"`
	// Significant: at least MinSignificantRuns runs; a rate on fewer is noise.
	Significant bool `json:"significant"`
	// Broken: every run of the last 7 days failed (at least one). A broken
	// case is not flaky, and is never quarantined automatically.
	Broken      bool         `json:"broken"`
	LastFailure *LastFailure `json:"last_failure,omitempty"`
	// DurationP50 and DurationP90 are over the window's runs.
	DurationP50 Duration `json:"duration_p50"`
	DurationP90 Duration `json:"duration_p90"`
	// DurationTrend is the relative change of the p50 of the last 7 days
	// against the p50 before them in the window (0.25: 25 % slower); 0 when
	// either side has no run.
	DurationTrend float64 `json:"duration_trend"`
	// Quarantine is set when the latest run had the case quarantined.
	Quarantine *QuarantineHealth `json:"quarantine,omitempty"`
}

// MinSignificantRuns is the sample below which a rate is not significant
// (Trunk's failure-rate monitors use the same minimum).
const MinSignificantRuns = 10

// CleanDaysToLeaveQuarantine is how many days without a failure end a
// quarantine (Datadog's "fixed" after 30 clean days).
const CleanDaysToLeaveQuarantine = 30

// LastFailure is the case's latest failure in the window.
type LastFailure struct {
	RunID  string    `json:"run_id"`
	Commit string    `json:"commit,omitempty"`
	At     time.Time `json:"at"`
}

// QuarantineHealth is a quarantined case's standing.
type QuarantineHealth struct {
	// Since is the first run of the current unbroken stretch of runs in
	// which the case was quarantined; Days is how long ago that was.
	Since time.Time `json:"since"`
	Days  int       `json:"days"`
	// CleanDays counts the days since its last failure (or since Since).
	CleanDays int `json:"clean_days"`
	// Fixed: CleanDays reached CleanDaysToLeaveQuarantine and the case is not
	// broken: the quarantine has done its job; remove it from the suite file.
	Fixed bool `json:"fixed"`
}
