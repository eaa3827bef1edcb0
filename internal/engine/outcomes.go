package engine

import (
	"context"
	"time"
)

// OutcomeReader is an optional HistoryStore capability: the latest outcomes
// of a few cases, read from an index by case, so the run page's strips cost
// what they show, not the project's whole history (HistoryStore.History
// reads every record of a project since a date).
type OutcomeReader interface {
	// RecentOutcomes returns, for each case of f.Cases (any variant), its
	// records in f.Project (and f.Environment when set) finished at or after
	// f.Since: the newest f.PerCase of them, newest first, cases in f.Cases
	// order. Another tenant's records are never returned.
	RecentOutcomes(ctx context.Context, tenant string, f OutcomeFilter) ([]HistoryRecord, error)
}

// OutcomeFilter selects RecentOutcomes.
type OutcomeFilter struct {
	Project     string
	Environment string
	Cases       []string
	Since       time.Time
	PerCase     int
}
