package server

import (
	"context"
	"fmt"
	"strings"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/health"
)

// releaseQuarantines lets a quarantined case leave quarantine by itself
// (docs/health.md, "Quarantine"): when the tenant's history of the
// request's project and environment shows the case fixed —
// api.CleanDaysToLeaveQuarantine days without a failure, every variant,
// and not broken — its quarantine is marked Released, so the run's gate
// counts it again, and the selection says so. A broken case is never
// released; nothing is ever quarantined automatically. The caller's request
// is not changed (the cases are copied), and its idempotency fingerprint
// is taken before, so a retry of the same request stays a replay.
func (s *Server) releaseQuarantines(ctx context.Context, tenant string, req *api.RunRequest, opts *engine.CreateOptions) *api.RunRequest {
	if s.opts.History == nil {
		return req
	}
	now := s.opts.Now()
	held := false
	for i := range req.Cases {
		if req.Cases[i].Quarantine.Active(now) {
			held = true
			break
		}
	}
	if !held {
		return req
	}
	q := health.Query{Project: req.Project, Environment: req.Environment.Name, Since: now.Add(-health.Window30d), Now: now}
	sums, err := s.opts.History.HealthSummary(ctx, tenant, health.Filter(q))
	if err != nil {
		// Without history the quarantine holds, as written: log and go on.
		s.log.Warn("reading quarantine standings; quarantines hold as written", "tenant", tenant, "project", req.Project, "err", err)
		return req
	}
	fixed := map[string]bool{}
	for _, c := range health.FromSummaries(q, sums).Cases {
		ok := c.Quarantine != nil && c.Quarantine.Fixed && !c.Broken
		if prev, seen := fixed[c.Case]; seen {
			ok = ok && prev
		}
		fixed[c.Case] = ok
	}
	var released []string
	out := *req
	out.Cases = append([]api.Case(nil), req.Cases...)
	for i := range out.Cases {
		c := &out.Cases[i]
		if !c.Quarantine.Active(now) || !fixed[c.ID] {
			continue
		}
		qr := *c.Quarantine
		qr.Released = true
		c.Quarantine = &qr
		released = append(released, c.ID)
	}
	if len(released) == 0 {
		return req
	}
	if opts.IdempotencyKey != "" && opts.Fingerprint == "" {
		opts.Fingerprint = engine.Fingerprint(req)
	}
	out.Selection.Warnings = append(append([]string(nil), req.Selection.Warnings...), fmt.Sprintf(
		"left quarantine after %d days without a failure (docs/health.md, Quarantine), so they fail the gate again; remove their quarantine from the suite: %s",
		api.CleanDaysToLeaveQuarantine, strings.Join(released, ", ")))
	s.log.Info("quarantine released by history", "tenant", tenant, "project", req.Project, "cases", released)
	return &out
}
