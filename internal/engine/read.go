// Reading runs: Get, Events, List, Wait and Stuck.

package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// Get returns the run's snapshot, the caller's own: Store.GetRun hands out a
// copy, so it is not copied again.
func (e *Engine) Get(ctx context.Context, tenant, id string) (*api.Run, error) {
	rec, err := e.getRecord(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	return rec.Run, nil
}

func (e *Engine) getRecord(ctx context.Context, tenant, id string) (*RunRecord, error) {
	rec, err := e.cfg.Store.GetRun(ctx, tenant, id)
	if errors.Is(err, ErrNotFound) {
		return nil, &NotFoundError{RunID: id}
	}
	if err != nil {
		return nil, fmt.Errorf("reading run %s: %w", id, err)
	}
	return rec, nil
}

// Events returns the run's events with seq > after, in order.
func (e *Engine) Events(ctx context.Context, tenant, id string, after int64) ([]api.Event, error) {
	if _, err := e.getRecord(ctx, tenant, id); err != nil {
		return nil, err
	}
	var out []api.Event
	for {
		evs, err := e.cfg.Store.Events(ctx, id, after, eventPage)
		if err != nil {
			return nil, fmt.Errorf("reading events of run %s: %w", id, err)
		}
		out = append(out, evs...)
		if len(evs) < eventPage {
			return out, nil
		}
		after = evs[len(evs)-1].Seq
	}
}

// List returns the tenant's runs newest first and the cursor of the next page ("" at the end).
func (e *Engine) List(ctx context.Context, tenant string, f ListFilter) ([]*api.Run, string, error) {
	if f.Limit <= 0 {
		f.Limit = DefaultListLimit
	}
	f.Limit = min(f.Limit, MaxListLimit)
	for _, s := range f.Statuses {
		if !s.Valid() {
			return nil, "", &ValidationError{Problems: []string{fmt.Sprintf("unknown status %q; use one of %v", s, api.Statuses)}}
		}
	}
	runs, next, err := e.cfg.Store.ListRuns(ctx, tenant, f)
	if errors.Is(err, ErrInvalidCursor) {
		return nil, "", &ValidationError{Problems: []string{"the cursor is not one this server returned; start again without it"}}
	}
	if err != nil {
		return nil, "", fmt.Errorf("listing runs: %w", err)
	}
	return runs, next, nil
}

// Wait follows a run until it is terminal and returns its final snapshot.
// It follows the run's head (status and last seq) and its events, and reads
// the whole run once, at the end: a copy of every member is O(members).
func (e *Engine) Wait(ctx context.Context, tenant, id string) (*api.Run, error) {
	status, after, err := e.runHead(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	for !status.Terminal() {
		sub, err := e.Subscribe(ctx, tenant, id, after)
		if err != nil {
			return nil, err
		}
		for ev := range sub.C {
			after = ev.Seq
			if ev.Type == api.EventRunStatus {
				status = ev.Status
			}
		}
		switch err := sub.Err(); {
		case errors.Is(err, ErrDropped):
			continue
		case err != nil:
			return nil, err
		}
		if !status.Terminal() {
			// The terminal event lay at or before after: read the head again.
			if status, after, err = e.runHead(ctx, tenant, id); err != nil {
				return nil, err
			}
		}
	}
	return e.Get(ctx, tenant, id)
}

// StuckRun is a run in a state that is a fault (docs/serve.md: stuck runs).
type StuckRun struct {
	Tenant string
	RunID  string
	Status api.Status
	// Since is when the run was created.
	Since time.Time
	Why   string
}

// Stuck lists runs initial for longer than StuckInitialAfter and runs queued
// while their tenant has free capacity and no exclusive environment holds
// them. The second is normally momentary (the scheduler promotes on the next
// pass), so a server should report a run that is listed on two checks in a row.
func (e *Engine) Stuck() []StuckRun {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.cfg.Now()
	var out []StuckRun
	for _, rs := range e.waiting {
		rs.mu.Lock()
		st, created := rs.snap.Status, rs.snap.CreatedAt
		rs.mu.Unlock()
		switch st {
		case api.StatusInitial:
			if d := now.Sub(created); d > StuckInitialAfter {
				out = append(out, StuckRun{rs.tenant, rs.id, st, created, fmt.Sprintf("initial for %s: the scheduler has not picked it up", d.Truncate(time.Second))})
			}
		case api.StatusQueued:
			limit := e.cfg.TenantLimit(rs.tenant)
			key, excl := rs.exclusiveKey()
			held := excl && e.exclusive[key] != nil
			running := e.running[rs.tenant]
			if e.cl != nil {
				// The leader's view of the whole store (others have no waiting runs).
				e.cl.mu.Lock()
				held, running = excl && e.cl.holders[key] != "", e.cl.held[rs.tenant]
				e.cl.mu.Unlock()
			}
			if !held && (limit <= 0 || running < limit) {
				out = append(out, StuckRun{rs.tenant, rs.id, st, created, fmt.Sprintf("queued while the tenant has free capacity (%d running, limit %d)", running, limit)})
			}
		}
	}
	return out
}
