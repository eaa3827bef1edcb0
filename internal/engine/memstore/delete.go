package memstore

import (
	"context"
	"fmt"
	"slices"

	"github.com/zof-ai/zof-ci/internal/engine"
)

var _ engine.Deleter = (*Store)(nil)

// DeleteRun implements engine.Deleter: the run, its members, log and
// idempotency keys go; its history records stay.
func (s *Store) DeleteRun(_ context.Context, tenant, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.runs[id]
	if !ok || e.run.Tenant != tenant {
		return fmt.Errorf("deleting run %s: %w", id, engine.ErrNotFound)
	}
	if !e.run.Status.Terminal() {
		return fmt.Errorf("deleting run %s (%s): %w", id, e.run.Status, engine.ErrNotTerminal)
	}
	delete(s.runs, id)
	// list is sorted by order: find the entry by binary search.
	if i, found := slices.BinarySearchFunc(s.list, e.order, func(x *entry, o int64) int { return int(x.order - o) }); found {
		s.list = slices.Delete(s.list, i, i+1)
	}
	for k, rec := range s.idem {
		if rec.RunID == id {
			delete(s.idem, k)
		}
	}
	return nil
}
