package server

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of endpoint agents (docs/agents.md; api.md, GET /metrics), read
// from the fleet at scrape time. Labelled by tenant and pool.
const (
	MetricAgents        = "zof_agents"               // gauge: agents by state (idle, busy, draining, lost)
	MetricPoolQueue     = "zof_pool_queue_depth"     // gauge: member attempts waiting for an agent
	MetricPoolMembers   = "zof_pool_members_running" // gauge: leases held
	MetricLeaseExpiries = "zof_lease_expiries_total" // counter: leases lost to a silent agent (re-dispatched)
	MetricPoolStuck     = "zof_pool_stuck_runs"      // gauge: runs waiting past stuck_after with no agent online
)

var (
	descAgents        = prometheus.NewDesc(MetricAgents, "Endpoint agents by pool and state.", []string{"tenant", "pool", "state"}, nil)
	descPoolQueue     = prometheus.NewDesc(MetricPoolQueue, "Member attempts waiting for an agent of the pool.", []string{"tenant", "pool"}, nil)
	descPoolMembers   = prometheus.NewDesc(MetricPoolMembers, "Members executing on the pool's agents (leases held).", []string{"tenant", "pool"}, nil)
	descLeaseExpiries = prometheus.NewDesc(MetricLeaseExpiries, "Leases that expired (agent silent past the lease TTL); each member ran again elsewhere.", []string{"tenant", "pool"}, nil)
	descPoolStuck     = prometheus.NewDesc(MetricPoolStuck, "Runs waiting longer than the pool's stuck_after with no agent online.", []string{"tenant", "pool"}, nil)
)

// fleetCollector reads the fleet's figures at scrape time.
type fleetCollector struct{ f Fleet }

var _ prometheus.Collector = (*fleetCollector)(nil)

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAgents, descPoolQueue, descPoolMembers, descLeaseExpiries, descPoolStuck} {
		ch <- d
	}
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.f.Stats() {
		for st, n := range p.Agents {
			ch <- prometheus.MustNewConstMetric(descAgents, prometheus.GaugeValue, float64(n), p.Tenant, p.Pool, string(st))
		}
		ch <- prometheus.MustNewConstMetric(descPoolQueue, prometheus.GaugeValue, float64(p.Queued), p.Tenant, p.Pool)
		ch <- prometheus.MustNewConstMetric(descPoolMembers, prometheus.GaugeValue, float64(p.Live), p.Tenant, p.Pool)
		ch <- prometheus.MustNewConstMetric(descLeaseExpiries, prometheus.CounterValue, float64(p.Expired), p.Tenant, p.Pool)
		ch <- prometheus.MustNewConstMetric(descPoolStuck, prometheus.GaugeValue, float64(p.Stuck), p.Tenant, p.Pool)
	}
}
