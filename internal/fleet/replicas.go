package fleet

import (
	"slices"
	"strings"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
)

// What several zof serve replicas need of a fleet (package fleet/home): one
// replica's fleet, the home's, serves every agent; the others read its view
// and end what their own fleet held when they stop being the home.

// SetAway says whether this fleet serves attempts: why is "" on the
// fleet's home (and with one replica, the default); otherwise it ends what
// the fleet holds as lost (Abandon) and every attempt handed to it later is
// lost at once with why, so an attempt that raced with the change of home
// is run again through the new home rather than wait here for agents that
// poll elsewhere.
func (f *Fleet) SetAway(why string) {
	f.mu.Lock()
	f.away = why
	f.mu.Unlock()
	if why != "" {
		f.Abandon(why)
	}
}

// Abandon ends every attempt the fleet holds as lost, with why: queued ones
// leave their queue, leased ones are put in their agents' stop lists. Their
// engines run each member again as a new attempt (not a retry), through the
// fleet's new home. A replica calls it when it stops being the home.
func (f *Fleet) Abandon(why string) {
	f.mu.Lock()
	// The next grant, should this replica be the home again, reserves a
	// new block: above every epoch the homes in between granted.
	f.epochHi = f.epoch
	var queued []*attempt
	for _, pl := range f.pools {
		queued = append(queued, pl.queue...)
		pl.queue = nil
	}
	leases := make([]*lease, 0, len(f.leases))
	for _, l := range f.leases {
		leases = append(leases, l)
		if h := l.holder; h != nil {
			h.stops = append(h.stops, api.LeaseStop{ID: l.id, Reason: "lease-fenced: " + why})
			wakeAgent(h)
		}
	}
	f.mu.Unlock()
	for _, att := range queued {
		// Not leased: nothing else sends on done (RunAttempt's cancel
		// finds it gone from the queue and reads done).
		att.done <- engine.RemoteOutcome{Lost: why}
	}
	slices.SortFunc(leases, func(a, b *lease) int { return int(a.epoch - b.epoch) })
	for _, l := range leases {
		f.lose(l, why)
	}
}

// Snapshot is a fleet's whole view, every tenant's: what a replica that is
// not the home shows (GET /v1/agents, wait reasons, /metrics).
type Snapshot struct {
	Agents []api.Agent  `json:"agents"`
	Waits  []MemberWait `json:"waits"`
	Stats  []PoolStats  `json:"stats"`
}

// MemberWait is why one member of a run waits in its pool's queue.
type MemberWait struct {
	Tenant string         `json:"tenant"`
	RunID  string         `json:"run_id"`
	Member string         `json:"member"`
	Wait   api.WaitReason `json:"wait"`
}

// Snapshot is the fleet's view now.
func (f *Fleet) Snapshot() Snapshot {
	s := Snapshot{Agents: []api.Agent{}, Waits: []MemberWait{}, Stats: f.Stats()}
	f.mu.Lock()
	now := f.o.Now()
	for _, a := range f.agents {
		s.Agents = append(s.Agents, a.view())
	}
	for _, pl := range f.pools {
		for _, att := range pl.queue {
			w := f.poolWait(pl, now)
			w.Since = att.queuedAt.UTC()
			s.Waits = append(s.Waits, MemberWait{Tenant: pl.key.tenant, RunID: att.a.RunID, Member: att.a.Member, Wait: w})
		}
	}
	f.mu.Unlock()
	SortAgents(s.Agents)
	slices.SortFunc(s.Agents, func(x, y api.Agent) int { return strings.Compare(x.Tenant, y.Tenant) })
	return s
}

// List is Fleet.List of the snapshot.
func (s *Snapshot) List(tenant, pool string) []api.Agent {
	out := []api.Agent{}
	for _, a := range s.Agents {
		if a.Tenant == tenant && (pool == "" || a.Pool == pool) {
			out = append(out, a)
		}
	}
	return out
}

// MemberWaits is Fleet.MemberWaits of the snapshot.
func (s *Snapshot) MemberWaits(tenant, runID string) map[string]api.WaitReason {
	var out map[string]api.WaitReason
	for _, w := range s.Waits {
		if w.Tenant != tenant || w.RunID != runID {
			continue
		}
		if out == nil {
			out = map[string]api.WaitReason{}
		}
		out[w.Member] = w.Wait
	}
	return out
}
