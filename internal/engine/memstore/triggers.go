package memstore

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/trigger"
)

var _ trigger.Store = (*Store)(nil)

// triggers are the store's webhook deliveries and schedule ticks; they have
// their own lock, as they never share an operation with runs.
type triggers struct {
	mu    sync.Mutex
	order int64
	byID  map[string]*trigger.Record
	byKey map[triggerKey]*trigger.Record
	list  []*trigger.Record // by Order, oldest first
}

type triggerKey struct{ tenant, source, key string }

func (s *Store) trig() *triggers {
	s.trigOnce.Do(func() {
		s.trigs = &triggers{byID: map[string]*trigger.Record{}, byKey: map[triggerKey]*trigger.Record{}}
	})
	return s.trigs
}

// CreateTrigger implements trigger.Store.
func (s *Store) CreateTrigger(_ context.Context, rec *trigger.Record) (*trigger.Record, error) {
	ts := s.trig()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	k := triggerKey{rec.Tenant, rec.Source, rec.Key}
	if held, ok := ts.byKey[k]; ok && held.ExpiresAt.After(rec.CreatedAt) {
		return held.Clone(), nil
	}
	if _, ok := ts.byID[rec.ID]; ok {
		return nil, fmt.Errorf("creating trigger %s: the id exists", rec.ID)
	}
	ts.order++
	rec.Order = ts.order
	c := rec.Clone()
	ts.byID[c.ID] = c
	ts.byKey[k] = c
	ts.list = append(ts.list, c)
	return nil, nil
}

// UpdateTrigger implements trigger.Store.
func (s *Store) UpdateTrigger(_ context.Context, rec *trigger.Record) error {
	ts := s.trig()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	cur, ok := ts.byID[rec.ID]
	if !ok {
		return fmt.Errorf("trigger %s: %w", rec.ID, trigger.ErrNotFound)
	}
	cur.State, cur.Reason, cur.RunID, cur.Attempts, cur.UpdatedAt = rec.State, rec.Reason, rec.RunID, rec.Attempts, rec.UpdatedAt
	cur.Event, cur.Repo, cur.Ref, cur.SHA, cur.PR = rec.Event, rec.Repo, rec.Ref, rec.SHA, rec.PR
	cur.Detail, cur.Reported = append([]byte(nil), rec.Detail...), rec.Reported
	return nil
}

// GetTrigger implements trigger.Store.
func (s *Store) GetTrigger(_ context.Context, tenant, id string) (*trigger.Record, error) {
	ts := s.trig()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	r, ok := ts.byID[id]
	if !ok || r.Tenant != tenant {
		return nil, fmt.Errorf("trigger %s: %w", id, trigger.ErrNotFound)
	}
	return r.Clone(), nil
}

// ListTriggers implements trigger.Store; the cursor is the Order of the last one returned.
func (s *Store) ListTriggers(_ context.Context, tenant string, f trigger.Filter) ([]*trigger.Record, string, error) {
	before := int64(-1)
	if f.Cursor != "" {
		n, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil || n < 1 {
			return nil, "", fmt.Errorf("cursor %q: %w", f.Cursor, trigger.ErrInvalidCursor)
		}
		before = n
	}
	limit := f.PageSize()
	ts := s.trig()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var out []*trigger.Record
	for i := len(ts.list) - 1; i >= 0; i-- {
		r := ts.list[i]
		if (before >= 0 && r.Order >= before) || r.Tenant != tenant || !f.Match(r) {
			continue
		}
		if len(out) == limit {
			return out, strconv.FormatInt(out[len(out)-1].Order, 10), nil
		}
		out = append(out, r.Clone())
	}
	return out, "", nil
}

// PendingTriggers implements trigger.Store.
func (s *Store) PendingTriggers(_ context.Context, now time.Time) ([]*trigger.Record, error) {
	ts := s.trig()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var out []*trigger.Record
	for _, r := range ts.list {
		if !r.ExpiresAt.After(now) || ts.byKey[triggerKey{r.Tenant, r.Source, r.Key}] != r {
			continue
		}
		if r.State == api.TriggerAccepted || r.State == api.TriggerProcessing || (r.State == api.TriggerRunCreated && !r.Reported) {
			out = append(out, r.Clone())
		}
	}
	return out, nil
}
