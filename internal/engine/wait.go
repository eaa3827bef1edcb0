package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/zof-ai/zof-ci/api"
)

// Kinds of api.WaitReason the engine gives (docs/agents.md, Why a run waits);
// the fleet gives "agent" and "pool_limit" for members.
const (
	WaitTenantLimit = "tenant_limit"
	WaitExclusive   = "exclusive"
	WaitQueue       = "queue"
)

// maxNamedRuns bounds the run ids a tenant_limit reason lists.
const maxNamedRuns = 5

// WaitReason says which limit holds a waiting (initial or queued) run of
// tenant: its exclusive environment's holder, or the tenant's
// max_concurrent_runs with the runs using it. nil when the run does not wait
// in this engine.
func (e *Engine) WaitReason(tenant, id string) *api.WaitReason {
	e.mu.Lock()
	defer e.mu.Unlock()
	rs := e.active[id]
	if rs == nil || rs.tenant != tenant {
		return nil
	}
	rs.mu.Lock()
	status, created := rs.snap.Status, rs.snap.CreatedAt
	rs.mu.Unlock()
	if status != api.StatusQueued && status != api.StatusInitial {
		return nil
	}
	if key, excl := rs.exclusiveKey(); excl {
		if h := e.exclusive[key]; h != nil && h != rs {
			since := rs.exSince
			if since.IsZero() {
				since = created
			}
			return &api.WaitReason{Kind: WaitExclusive, Since: since.UTC(), Message: fmt.Sprintf(
				"environment %s is exclusive and run %s is using it", rs.req.Environment.Name, h.id)}
		}
	}
	if limit := e.cfg.TenantLimit(tenant); limit > 0 && e.running[tenant] >= limit {
		var ids []string
		for _, o := range e.active {
			if o.tenant != tenant || o.cancel == nil {
				continue // not started
			}
			ids = append(ids, o.id)
		}
		slices.Sort(ids)
		named := strings.Join(ids[:min(len(ids), maxNamedRuns)], ", ")
		if len(ids) > maxNamedRuns {
			named += fmt.Sprintf(" and %d more", len(ids)-maxNamedRuns)
		}
		return &api.WaitReason{Kind: WaitTenantLimit, Since: created.UTC(), Message: fmt.Sprintf(
			"tenant %s at %d of %d running (%s)", tenant, e.running[tenant], limit, named)}
	}
	// No limit holds it: the scheduler has not taken it yet (its next pass,
	// or with several replicas the leader's, starts it). Runs that can start
	// start in the same pass whatever their order, so it is not behind them.
	return &api.WaitReason{Kind: WaitQueue, Since: created.UTC(), Message: fmt.Sprintf("about to start: no limit of tenant %s holds it", tenant)}
}
