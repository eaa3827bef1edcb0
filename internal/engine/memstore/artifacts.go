package memstore

import (
	"context"
	"fmt"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

var _ engine.ArtifactStore = (*Store)(nil)

// artifacts are a run's artifacts in the order put, kept in its entry so
// they go with the run.
type artifacts struct {
	list  []engine.Artifact
	names map[string]bool
	used  int64 // content bytes counted against engine.MaxRunArtifactBytes
}

// PutArtifacts implements engine.ArtifactStore.
func (s *Store) PutArtifacts(_ context.Context, runID string, arts []engine.Artifact) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.runs[runID]
	if !ok {
		return fmt.Errorf("storing artifacts of run %s: %w", runID, engine.ErrNotFound)
	}
	var fresh []engine.Artifact
	for _, a := range arts {
		if !e.arts.names[a.Name] {
			fresh = append(fresh, a)
		}
	}
	for _, a := range engine.CapArtifacts(e.arts.used, fresh) {
		if e.arts.names == nil {
			e.arts.names = map[string]bool{}
		}
		if e.arts.names[a.Name] {
			continue // named twice in one put: the first is kept
		}
		e.arts.names[a.Name] = true
		e.arts.used += engine.ContentBytes(a.Artifact, a.Content)
		e.arts.list = append(e.arts.list, a)
	}
	return nil
}

// Artifacts implements engine.ArtifactStore.
func (s *Store) Artifacts(_ context.Context, runID string) ([]api.Artifact, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.runs[runID]
	if !ok {
		return nil, fmt.Errorf("artifacts of run %s: %w", runID, engine.ErrNotFound)
	}
	out := make([]api.Artifact, len(e.arts.list))
	for i, a := range e.arts.list {
		out[i] = a.Artifact
	}
	return out, nil
}

// Artifact implements engine.ArtifactStore.
func (s *Store) Artifact(_ context.Context, runID, name string) (*engine.Artifact, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.runs[runID]
	if !ok {
		return nil, fmt.Errorf("artifacts of run %s: %w", runID, engine.ErrNotFound)
	}
	for _, a := range e.arts.list {
		if a.Name == name {
			a.Content = append([]byte(nil), a.Content...)
			return &a, nil
		}
	}
	return nil, fmt.Errorf("artifact %q of run %s: %w", name, runID, engine.ErrArtifactNotFound)
}
