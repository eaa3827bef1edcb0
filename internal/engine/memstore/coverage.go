package memstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

// coverages are each project's latest coverage summary (PutCoverage), with
// their own lock: they never share an operation with runs.
type coverages struct {
	mu     sync.Mutex
	latest map[[2]string][]byte // tenant, project → the record as JSON (a copy by construction)
}

// PutCoverage stores c as the project's latest summary unless the stored
// one was received later (docs/coverage.md, "On the server").
func (s *Store) PutCoverage(_ context.Context, tenant string, c *api.ProjectCoverage) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("storing the coverage of %s: %w", c.Project, err)
	}
	s.cov.mu.Lock()
	defer s.cov.mu.Unlock()
	k := [2]string{tenant, c.Project}
	if held, ok := s.cov.latest[k]; ok {
		var h api.ProjectCoverage
		if err := json.Unmarshal(held, &h); err == nil && h.ReceivedAt.After(c.ReceivedAt) {
			return nil
		}
	}
	if s.cov.latest == nil {
		s.cov.latest = map[[2]string][]byte{}
	}
	s.cov.latest[k] = b
	return nil
}

// Coverage is the project's latest summary; nil when it has none.
func (s *Store) Coverage(_ context.Context, tenant, project string) (*api.ProjectCoverage, error) {
	s.cov.mu.Lock()
	b, ok := s.cov.latest[[2]string{tenant, project}]
	s.cov.mu.Unlock()
	if !ok {
		return nil, nil
	}
	return engine.DecodeCoverage(b)
}

// ListCoverage is the tenant's projects' latest summaries by project name,
// at most limit.
func (s *Store) ListCoverage(_ context.Context, tenant string, limit int) ([]*api.ProjectCoverage, error) {
	s.cov.mu.Lock()
	var keys [][2]string
	for k := range s.cov.latest {
		if k[0] == tenant {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return strings.Compare(a[1], b[1]) })
	keys = keys[:min(len(keys), max(limit, 0))]
	bodies := make([][]byte, len(keys))
	for i, k := range keys {
		bodies[i] = s.cov.latest[k]
	}
	s.cov.mu.Unlock()
	out := make([]*api.ProjectCoverage, 0, len(bodies))
	for _, b := range bodies {
		c, err := engine.DecodeCoverage(b)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
