package web

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/zof-ai/zof-ci/api"
)

// Fleet is what the fleet page reads: the tenant's agents (the agents
// service has them; GET /v1/agents answers the same).
type Fleet interface {
	Agents(ctx context.Context, tenant string) ([]api.Agent, error)
}

// Pools is an optional Fleet capability: the tenant's configured pools, so
// that a pool without agents shows on /agents and the home page says it
// needs attention (its members cannot run).
type Pools interface {
	Pools(ctx context.Context, tenant string) ([]string, error)
}

// emptyPools are the tenant's configured pools with no agent that is not
// lost; nil when the fleet does not list its pools.
func emptyPools(ctx context.Context, f Fleet, tenant string) ([]string, error) {
	pl, ok := f.(Pools)
	if !ok {
		return nil, nil
	}
	pools, err := pl.Pools(ctx, tenant)
	if err != nil {
		return nil, err
	}
	agents, err := f.Agents(ctx, tenant)
	if err != nil {
		return nil, err
	}
	live := map[string]bool{}
	for _, a := range agents {
		if a.State != api.AgentLost {
			live[a.Pool] = true
		}
	}
	var out []string
	for _, p := range pools {
		if !live[p] {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out, nil
}

// agentTag is an agent's state as a person sees it: icon and label.
func agentTag(s api.AgentState) Tag {
	switch s {
	case api.AgentIdle:
		return Tag{Class: "passed", Icon: "○", Label: "Idle"}
	case api.AgentBusy:
		return Tag{Class: "running", Icon: "▶", Label: "Busy"}
	case api.AgentDraining:
		return Tag{Class: "queued", Icon: "◐", Label: "Draining"}
	case api.AgentLost:
		return Tag{Class: "failed", Icon: "✖", Label: "Lost"}
	}
	return Tag{Class: "cancelled", Icon: "?", Label: string(s)}
}

// AgentView is one agent row.
type AgentView struct {
	A         *api.Agent
	Tag       Tag
	Heartbeat string // time since the last heartbeat
	Labels    string
	Work      []LeaseView
}

// LeaseView is one member an agent is running.
type LeaseView struct {
	RunID, Member string
	Attempt       int
	For           string
}

// PoolView is a pool and its agents.
type PoolView struct {
	Name                    string
	Agents                  []AgentView
	Idle, Busy, Lost, Slots int
}

type agentsBody struct {
	Configured bool
	Pools      []PoolView
	Error      string
}

func (c *Console) agents(w http.ResponseWriter, r *http.Request, d *pageData) (string, int) {
	b := &agentsBody{Configured: c.o.Fleet != nil}
	d.Title, d.Nav, d.Body = "Agents", "agents", b
	if c.o.Fleet == nil {
		return "agents.html", http.StatusOK
	}
	agents, err := c.o.Fleet.Agents(r.Context(), d.Principal.Tenant)
	if err != nil {
		c.o.Logger.Error("console: list agents", "err", err)
		b.Error = "Could not list the agents: " + err.Error() + ". Retry; if it persists, check the server's log."
		return "agents.html", http.StatusServiceUnavailable
	}
	now := c.o.Now()
	pools := map[string]*PoolView{}
	for i := range agents {
		a := &agents[i]
		if a.Tenant != "" && a.Tenant != d.Principal.Tenant {
			continue // the fleet is tenant-scoped already; never show another tenant's agent
		}
		p := pools[a.Pool]
		if p == nil {
			p = &PoolView{Name: a.Pool}
			pools[a.Pool] = p
		}
		av := AgentView{A: a, Tag: agentTag(a.State)}
		if !a.LastHeartbeat.IsZero() {
			av.Heartbeat = human(now.Sub(a.LastHeartbeat).Round(100_000_000)) + " ago"
		}
		var labels []string
		for k, v := range a.Labels {
			labels = append(labels, k+"="+v)
		}
		slices.Sort(labels)
		av.Labels = strings.Join(labels, ", ")
		for _, l := range a.Held {
			lv := LeaseView{RunID: l.RunID, Member: l.Member, Attempt: l.Attempt}
			if !l.Since.IsZero() {
				lv.For = human(now.Sub(l.Since).Round(100_000_000))
			}
			av.Work = append(av.Work, lv)
		}
		switch a.State {
		case api.AgentIdle:
			p.Idle++
		case api.AgentBusy:
			p.Busy++
		case api.AgentLost:
			p.Lost++
		}
		if a.State != api.AgentLost {
			p.Slots += a.Concurrency
		}
		p.Agents = append(p.Agents, av)
	}
	if pl, ok := c.o.Fleet.(Pools); ok {
		names, err := pl.Pools(r.Context(), d.Principal.Tenant)
		if err != nil {
			c.o.Logger.Warn("console: list pools", "err", err)
		}
		for _, n := range names {
			if pools[n] == nil {
				pools[n] = &PoolView{Name: n}
			}
		}
	}
	for _, p := range pools {
		slices.SortFunc(p.Agents, func(x, y AgentView) int { return strings.Compare(x.A.Name, y.A.Name) })
		b.Pools = append(b.Pools, *p)
	}
	slices.SortFunc(b.Pools, func(x, y PoolView) int { return strings.Compare(x.Name, y.Name) })
	return "agents.html", http.StatusOK
}
