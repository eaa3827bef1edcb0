package memstore

import (
	"context"

	"github.com/zof-ai/zof-ci/internal/engine"
)

var _ engine.OutcomeReader = (*Store)(nil)

// RecentOutcomes implements engine.OutcomeReader.
func (s *Store) RecentOutcomes(_ context.Context, tenant string, f engine.OutcomeFilter) ([]engine.HistoryRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.keepHistory {
		return nil, errNoHistory
	}
	var out []engine.HistoryRecord
	for _, c := range f.Cases {
		n := 0
		for i := len(s.history) - 1; i >= 0 && n < f.PerCase; i-- { // newest first
			r := s.history[i]
			if r.FinishedAt.Before(f.Since) {
				break
			}
			if r.Tenant != tenant || r.Project != f.Project || r.Case != c || f.Environment != "" && r.Environment != f.Environment {
				continue
			}
			out = append(out, r)
			n++
		}
	}
	return out, nil
}
