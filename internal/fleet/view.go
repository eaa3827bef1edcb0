package fleet

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// state is an agent's state in the fleet view (under f.mu).
func (a *agent) state() api.AgentState {
	switch {
	case a.lost:
		return api.AgentLost
	case a.draining:
		return api.AgentDraining
	case len(a.leases) > 0:
		return api.AgentBusy
	}
	return api.AgentIdle
}

// Agents is List for the server (GET /v1/agents): a process's own fleet always knows its
// agents, so it never fails (fleet/home's can, on a replica that cannot read the home's view).
func (f *Fleet) Agents(tenant, pool string) ([]api.Agent, error) { return f.List(tenant, pool), nil }

// List is the fleet view of a tenant's agents (GET /v1/agents), of one pool
// when pool is not "", by pool then name then id.
func (f *Fleet) List(tenant, pool string) []api.Agent {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []api.Agent{}
	for _, a := range f.agents {
		if a.tenant != tenant || (pool != "" && a.pool != pool) {
			continue
		}
		out = append(out, a.view())
	}
	SortAgents(out)
	return out
}

// SortAgents orders a fleet view by pool, then name, then id.
func SortAgents(out []api.Agent) {
	slices.SortFunc(out, func(x, y api.Agent) int {
		return strings.Compare(x.Pool+"\x00"+x.Name+"\x00"+x.ID, y.Pool+"\x00"+y.Name+"\x00"+y.ID)
	})
}

// view is the agent as the fleet view shows it (under f.mu).
func (a *agent) view() api.Agent {
	v := api.Agent{ID: a.id, Name: a.name, Tenant: a.tenant, Pool: a.pool, Version: a.version, Labels: maps.Clone(a.labels),
		State: a.state(), Concurrency: a.concurrency, ConnectedAt: a.connectedAt.UTC(), LastHeartbeat: a.lastBeat.UTC()}
	for _, l := range a.leases {
		v.Held = append(v.Held, api.AgentLease{RunID: l.att.a.RunID, Member: l.att.a.Member, Attempt: l.att.a.Attempt, Since: l.since.UTC()})
	}
	slices.SortFunc(v.Held, func(x, y api.AgentLease) int { return x.Since.Compare(y.Since) })
	return v
}

// MemberWaits says, for each member of run waiting in its pool's queue, why
// it waits (docs/agents.md, Why a run waits). Empty when none waits.
func (f *Fleet) MemberWaits(tenant, runID string) map[string]api.WaitReason {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out map[string]api.WaitReason
	now := f.o.Now()
	for _, pl := range f.pools {
		if pl.key.tenant != tenant {
			continue
		}
		for _, att := range pl.queue {
			if att.a.RunID != runID {
				continue
			}
			if out == nil {
				out = map[string]api.WaitReason{}
			}
			w := f.poolWait(pl, now)
			w.Since = att.queuedAt.UTC()
			out[att.a.Member] = w
		}
	}
	return out
}

// poolWait is why an attempt waits in pl's queue (under f.mu).
func (f *Fleet) poolWait(pl *pool, now time.Time) api.WaitReason {
	name := pl.key.pool
	online := f.online(pl)
	if online == 0 {
		seen := "never seen"
		if !pl.lastSeen.IsZero() {
			seen = "last seen " + ago(now.Sub(pl.lastSeen))
		}
		return api.WaitReason{Kind: "agent", Message: fmt.Sprintf("waiting for an agent of pool %s: 0 online (%s)", name, seen)}
	}
	if c := pl.cfg.MaxConcurrentMembers; c > 0 && pl.live >= c {
		return api.WaitReason{Kind: "pool_limit", Message: fmt.Sprintf("pool %s at %d of %d members", name, pl.live, c)}
	}
	return api.WaitReason{Kind: "agent", Message: fmt.Sprintf("waiting for a free agent of pool %s: %d online, %d members running on them", name, online, pl.live)}
}

// ago is a duration as a person reads it: "12s ago", "4m ago", "2h ago".
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	}
	return fmt.Sprintf("%dh ago", int(d.Hours()))
}

// PoolStats are one pool's figures for /metrics.
type PoolStats struct {
	Tenant, Pool string
	// Agents by state.
	Agents map[api.AgentState]int
	// Queued attempts waiting for an agent; Live leases held.
	Queued, Live int
	// Expired counts leases lost since start.
	Expired int
	// Stuck counts runs waiting longer than stuck_after with no agent online.
	Stuck int
}

// Stats lists every pool's figures, by tenant then pool.
func (f *Fleet) Stats() []PoolStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]PoolStats, 0, len(f.pools))
	for _, pl := range f.pools {
		s := PoolStats{Tenant: pl.key.tenant, Pool: pl.key.pool, Agents: map[api.AgentState]int{},
			Queued: len(pl.queue), Live: pl.live, Expired: f.expired[pl.key], Stuck: len(pl.stuck)}
		for _, st := range []api.AgentState{api.AgentIdle, api.AgentBusy, api.AgentDraining, api.AgentLost} {
			s.Agents[st] = 0
		}
		for _, a := range pl.agents {
			s.Agents[a.state()]++
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y PoolStats) int { return strings.Compare(x.Tenant+"\x00"+x.Pool, y.Tenant+"\x00"+y.Pool) })
	return out
}
