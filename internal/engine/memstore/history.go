package memstore

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

var (
	_ engine.HistoryStore = (*Store)(nil)
	_ engine.ShadowStore  = (*Store)(nil)
)

// errNoHistory: History on a store made without WithHistory, which would
// otherwise answer "no runs" for runs it saw.
var errNoHistory = errors.New("this in-memory store records no test health history; create it with memstore.WithHistory()")

// recordHistory keeps e's outcomes when its run reaches a terminal status.
// Caller holds s.mu.
func (s *Store) recordHistory(e *entry) {
	ms := make([]api.Member, len(e.members))
	for i, m := range e.members {
		ms[i] = *m
	}
	recs := engine.HistoryOf(&e.run, ms)
	run := e.run
	run.Members = ms
	if rec, ok := engine.ShadowOf(&run); ok {
		s.shadows = append(s.shadows, rec)
	}
	if s.lastOutcome == nil {
		s.lastOutcome, s.days = map[engine.CaseKey]*engine.LastOutcome{}, map[engine.DayKey]*engine.DayCounts{}
	}
	for k, c := range engine.FoldHistory(s.lastOutcome, recs) {
		s.days[k] = c
	}
	for _, r := range recs {
		// Members finish in any order: insert in place to keep FinishedAt order.
		i, _ := slices.BinarySearchFunc(s.history, r.FinishedAt, func(h engine.HistoryRecord, t time.Time) int {
			if h.FinishedAt.After(t) {
				return 1
			}
			return -1
		})
		s.history = slices.Insert(s.history, i, r)
	}
}

// History implements engine.HistoryStore.
func (s *Store) History(_ context.Context, tenant string, f engine.HistoryFilter) ([]engine.HistoryRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.keepHistory {
		return nil, errNoHistory
	}
	var out []engine.HistoryRecord
	for _, r := range s.history {
		if r.Tenant != tenant || r.Project != f.Project || r.FinishedAt.Before(f.Since) {
			continue
		}
		if f.Environment != "" && r.Environment != f.Environment {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// HealthSummary implements engine.HistoryStore.
func (s *Store) HealthSummary(_ context.Context, tenant string, f engine.SummaryFilter) ([]engine.CaseSummary, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.keepHistory {
		return nil, errNoHistory
	}
	return engine.SummarizeDays(tenant, f, s.days, s.lastOutcome), nil
}

// PruneHistory implements engine.HistoryStore.
func (s *Store) PruneHistory(_ context.Context, before time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.history)
	s.history = slices.DeleteFunc(s.history, func(r engine.HistoryRecord) bool { return r.FinishedAt.Before(before) })
	engine.PruneSnapshots(s.days, s.lastOutcome, before)
	s.shadows = slices.DeleteFunc(s.shadows, func(r engine.ShadowRecord) bool { return r.FinishedAt.Before(before) })
	return int64(n - len(s.history)), nil
}

// ShadowHistory implements engine.ShadowStore.
func (s *Store) ShadowHistory(_ context.Context, tenant string, f engine.HistoryFilter) ([]engine.ShadowRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.keepHistory {
		return nil, errNoHistory
	}
	var out []engine.ShadowRecord
	for _, r := range s.shadows {
		if r.Tenant == tenant && r.Project == f.Project && !r.FinishedAt.Before(f.Since) && (f.Environment == "" || r.Environment == f.Environment) {
			out = append(out, r)
		}
	}
	return out, nil
}
