package config

import (
	"fmt"
	"net/url"
	"time"

	"go.yaml.in/yaml/v3"
)

// Pools of endpoint agents (docs/agents.md): a tenant's `pools:` name groups
// of agents, each with the URL patterns its runs may target, whether run:
// steps are allowed on its agents, an optional cap of members executing at
// once, and the agents' tokens. A run whose targets match a pool's targets is
// executed by that pool's agents; `local_executor: false` leaves every other
// run refused, making the server a pure control plane.
//
//	tenants:
//	  payments:
//	    local_executor: true
//	    pools:
//	      private-eu:
//	        targets: ["https://*.staging.internal.example.com"]
//	        allow_commands: true
//	        max_concurrent_members: 20
//	        stuck_after: 5m
//	        tokens:
//	          - {name: eu-agent-1, env: ZOF_AGENT_EU_1}

const (
	// LocalPool is the name of the server's own runtime as a pool: reserved.
	LocalPool = "local"
	// DefaultStuckAfter is a pool's stuck_after when omitted: a run that has
	// waited this long for an agent of a pool with none online is logged and
	// counted as stuck (docs/agents.md, Why a run waits).
	DefaultStuckAfter = 5 * time.Minute
)

// Pool is one pool of endpoint agents of a tenant.
type Pool struct {
	Tenant string
	Name   string
	// Targets are the URL patterns whose runs go to this pool; its agents
	// may reach nothing else.
	Targets []Pattern
	// AllowCommands admits run: steps on this pool's agents.
	AllowCommands bool
	// MaxConcurrentMembers caps the members executing at once on the pool; 0 is no cap.
	MaxConcurrentMembers int
	// StuckAfter: a run waiting this long on the pool with no agent online is stuck.
	StuckAfter time.Duration
	// Tokens name the pool's agent tokens (the tokens themselves are not kept).
	Tokens []string
}

// Match reports whether u is one of the pool's targets.
func (p *Pool) Match(u *url.URL) bool { return Allowed(p.Targets, u) }

// TargetStrings are the pool's target patterns as written.
func (p *Pool) TargetStrings() []string {
	out := make([]string, len(p.Targets))
	for i, t := range p.Targets {
		out[i] = t.String()
	}
	return out
}

// PoolNames lists the tenant's pools in name order (the order submission
// matches a run's targets in).
func (t *Tenant) PoolNames() []string { return sortedKeys(t.Pools) }

// Pool is the tenant's pool of that name, or nil.
func (c *Config) Pool(tenant, pool string) *Pool {
	t := c.Tenants[tenant]
	if t == nil {
		return nil
	}
	return t.Pools[pool]
}

// AllPools lists every pool of every tenant, by tenant then name.
func (c *Config) AllPools() []*Pool {
	var out []*Pool
	for _, tn := range c.TenantNames() {
		t := c.Tenants[tn]
		for _, pn := range t.PoolNames() {
			out = append(out, t.Pools[pn])
		}
	}
	return out
}

type rawPool struct {
	Targets              []string   `yaml:"targets"`
	AllowCommands        bool       `yaml:"allow_commands"`
	MaxConcurrentMembers *int       `yaml:"max_concurrent_members"`
	StuckAfter           *duration  `yaml:"stuck_after"`
	Tokens               []rawAgent `yaml:"tokens"`
}

// rawAgent is an agent token: a name and the token's sha256 or env, no role.
type rawAgent struct {
	Name   string `yaml:"name"`
	SHA256 string `yaml:"sha256"`
	Env    string `yaml:"env"`
}

// buildPools validates a tenant's local_executor and pools and registers the
// pools' agent tokens; seen maps every token hash to where it is configured.
func buildPools(c *Config, t *Tenant, rt rawTenant, root *yaml.Node, lookup Lookup, seen map[[32]byte]string, at func(int, string, ...any)) {
	t.LocalExecutor = rt.LocalExecutor == nil || *rt.LocalExecutor
	t.Pools = map[string]*Pool{}
	if !t.LocalExecutor && len(rt.Pools) == 0 {
		at(lineOf(root, "tenants", t.Name, "local_executor"), "tenant %s: local_executor is false and the tenant has no pools, so none of its runs could execute; add a pool under `pools:` or remove local_executor", t.Name)
	}
	for _, name := range sortedKeys(rt.Pools) {
		rp := rt.Pools[name]
		pline := lineOf(root, "tenants", t.Name, "pools", name)
		where := fmt.Sprintf("tenant %s pool %s", t.Name, name)
		if !tenantNameRE.MatchString(name) {
			at(pline, "%s: use letters, digits, '.', '_' and '-' (at most 63), starting with a letter or digit", where)
		}
		if name == LocalPool {
			at(pline, "%s: the name %q is reserved for the server's own runtime (local_executor); name the pool after where its agents are", where, LocalPool)
		}
		p := &Pool{Tenant: t.Name, Name: name, AllowCommands: rp.AllowCommands, StuckAfter: DefaultStuckAfter}
		if len(rp.Targets) == 0 {
			at(pline, "%s has no targets: list the URL patterns whose runs go to this pool, like https://*.internal.example.com", where)
		}
		for i, s := range rp.Targets {
			pat, err := ParsePattern(s)
			if err != nil {
				at(lineOf(root, "tenants", t.Name, "pools", name, "targets", i), "%s: targets: %v", where, err)
				continue
			}
			p.Targets = append(p.Targets, pat)
		}
		if rp.MaxConcurrentMembers != nil {
			p.MaxConcurrentMembers = *rp.MaxConcurrentMembers
			if p.MaxConcurrentMembers < 1 {
				at(lineOf(root, "tenants", t.Name, "pools", name, "max_concurrent_members"), "%s: max_concurrent_members must be at least 1 (omit it for no cap)", where)
			}
		}
		if rp.StuckAfter != nil {
			p.StuckAfter = rp.StuckAfter.d
			if p.StuckAfter <= 0 {
				at(rp.StuckAfter.line, "%s: stuck_after must be positive, like 5m", where)
			}
		}
		if len(rp.Tokens) == 0 {
			at(pline, "%s has no tokens: add one under `tokens:` (name, and sha256 or env) for each agent", where)
		}
		names := map[string]bool{}
		for i, ra := range rp.Tokens {
			kline := lineOf(root, "tenants", t.Name, "pools", name, "tokens", i)
			kwhere := fmt.Sprintf("%s token %d", where, i+1)
			if ra.Name == "" {
				at(kline, "%s has no name: the name is the agent's principal in the audit log", kwhere)
			} else {
				kwhere = fmt.Sprintf("%s token %q", where, ra.Name)
				if names[ra.Name] {
					at(kline, "%s: the name is used twice in this pool; names must tell agents apart", kwhere)
				}
				names[ra.Name] = true
			}
			hash, env, ok := secretHash(rawSecret{SHA256: ra.SHA256, Env: ra.Env}, kwhere, "token's", kline, lookup, at)
			if !ok {
				continue
			}
			if env != "" {
				c.tokenEnvs = append(c.tokenEnvs, env)
			}
			if prev, dup := seen[hash]; dup {
				at(kline, "%s: the same token is already configured for %s; every token must map to one principal", kwhere, prev)
				continue
			}
			seen[hash] = kwhere
			p.Tokens = append(p.Tokens, ra.Name)
			c.tokens = append(c.tokens, tokenEntry{hash: hash, principal: Principal{Tenant: t.Name, Name: ra.Name, Pool: name}})
		}
		t.Pools[name] = p
	}
}

// PoolFor is the pool whose agents execute a run whose primary target is u
// (the environment URL, or without one the first http step's absolute URL):
// the first pool in name order whose targets match it; nil runs it on the
// server's own runtime (when local_executor allows).
func (t *Tenant) PoolFor(u *url.URL) *Pool {
	if u == nil {
		return nil
	}
	for _, name := range t.PoolNames() {
		if p := t.Pools[name]; p.Match(u) {
			return p
		}
	}
	return nil
}
