package engine

import (
	"context"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// HistoryRecord is one finished member's outcome, kept for test health
// (docs/health.md): what `GET /v1/health` aggregates per case.
type HistoryRecord struct {
	Tenant      string
	Project     string
	Environment string
	Case        string
	Variant     string
	// Status is passed or failed: members cancelled, blocked or never run
	// say nothing about the case and are not recorded.
	Status api.Status
	// Attempts is how many attempts the member took (1 without a retry).
	Attempts int
	// Flaky: passed after a failed attempt (a pass on retry, same commit).
	Flaky bool
	// Quarantined: the case was quarantined in the suite file of that run
	// (held, or released by its history: api.Quarantine.Released).
	Quarantined bool
	Duration    time.Duration
	RunID       string
	Commit      string
	Branch      string
	FinishedAt  time.Time
}

// HistoryFilter selects a tenant's records: one project, optionally one
// environment, finished at or after Since.
type HistoryFilter struct {
	Project     string
	Environment string
	Since       time.Time
}

// HistoryStore is the optional Store capability behind test health. A store
// that has it records HistoryOf(head, members) in the same atomic operation
// as the Append that takes a run to a terminal status, so the engine's hot
// path pays nothing and no finished run is missed by a crash. memstore,
// sqlitestore and pgstore implement it; storetest.RunHistory is its conformance suite.
type HistoryStore interface {
	// History returns the tenant's records that match f, oldest first (by
	// FinishedAt). Another tenant's records are never returned.
	History(ctx context.Context, tenant string, f HistoryFilter) ([]HistoryRecord, error)
	// PruneHistory deletes every record that finished before before (the
	// retention, history_days) and says how many it deleted.
	PruneHistory(ctx context.Context, before time.Time) (int64, error)
	// HealthSummary returns, per case and variant of f.Project in the
	// tenant, its outcomes over f's periods (in no particular order), read
	// from the summaries FoldHistory keeps: what GET /v1/health judges.
	HealthSummary(ctx context.Context, tenant string, f SummaryFilter) ([]CaseSummary, error)
}

// HistoryOf is what a store records when run (its head) reaches a terminal
// status: one record per member that passed or failed. members are all the
// run's members, in order.
func HistoryOf(run *api.Run, members []api.Member) []HistoryRecord {
	if !run.Status.Terminal() {
		return nil
	}
	out := make([]HistoryRecord, 0, len(members))
	for i := range members {
		m := &members[i]
		if m.Status != api.StatusPassed && m.Status != api.StatusFailed {
			continue
		}
		at := m.FinishedAt
		if at.IsZero() {
			at = run.FinishedAt
		}
		var d time.Duration
		if !m.StartedAt.IsZero() && !m.FinishedAt.IsZero() {
			d = m.FinishedAt.Sub(m.StartedAt)
		}
		out = append(out, HistoryRecord{
			Tenant:      run.Tenant,
			Project:     run.Project,
			Environment: run.Environment,
			Case:        m.Case,
			Variant:     m.Variant,
			Status:      m.Status,
			Attempts:    max(m.Attempt, 1),
			Flaky:       m.Flaky && m.Status == api.StatusPassed,
			// A released quarantine is still declared: the stretch goes on.
			Quarantined: m.Quarantined || m.QuarantineReleased,
			Duration:    d,
			RunID:       run.ID,
			Commit:      run.Source.SHA,
			Branch:      run.Source.Ref,
			FinishedAt:  at,
		})
	}
	return out
}

// ShadowStore is the optional Store capability behind selection safety
// (GET /v1/health/selection): a store that has it records ShadowOf(run) in
// the same atomic operation as the Append that ends a shadow run.
// memstore, sqlitestore and pgstore implement it.
type ShadowStore interface {
	// ShadowHistory returns the tenant's shadow records that match f,
	// oldest first.
	ShadowHistory(ctx context.Context, tenant string, f HistoryFilter) ([]ShadowRecord, error)
}
