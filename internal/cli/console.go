package cli

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"

	"github.com/zof-ai/zof-ci/api"

	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/fleet"
	"github.com/zof-ai/zof-ci/internal/fleet/home"
	"github.com/zof-ai/zof-ci/internal/server"
	"github.com/zof-ai/zof-ci/internal/server/config"
	"github.com/zof-ai/zof-ci/internal/web"
)

// consoleDeps is what the web console is built from.
type consoleDeps struct {
	srv     *server.Server
	eng     *engine.Engine
	cfg     *config.Config
	log     *slog.Logger
	env     Env
	dataDir string
	history engine.HistoryStore // nil: no outcome strips
	// coverage lists each project's latest coverage on the home page; nil: the section is left out.
	coverage web.Coverage
	// fleet lists the agents on /agents; nil: the page says agents are not
	// configured (serve sets it once the server has agent pools).
	fleet web.Fleet
}

// mountConsole builds the web console (docs/console.md) over the engine's
// tenant-scoped reads and the server's audited cancel, rerun and delete, and
// serves its pages beside the API. Sessions are signed with ZOF_SESSION_KEY
// or DATA/session.key, so they survive a restart.
func mountConsole(d consoleDeps) (*web.Console, error) {
	envKey, _ := d.env.Lookup(web.SessionKeyEnv)
	key, err := web.LoadSessionKey(envKey, filepath.Join(d.dataDir, web.SessionKeyFile))
	if err != nil {
		return nil, fmt.Errorf("web console: %w", err)
	}
	o := web.Options{Runs: d.eng, Actions: d.srv, Auth: d.cfg, SessionKey: key, Secure: d.cfg.SecureCookies(), Logger: d.log,
		Schedules: d.cfg, Stuck: d.eng, Fleet: d.fleet, Waits: d.srv}
	if d.history != nil {
		o.History = d.history
	}
	if d.coverage != nil {
		o.Coverage = d.coverage
	}
	con, err := web.New(o)
	if err != nil {
		return nil, err
	}
	for _, p := range web.Paths {
		d.srv.Mount(p, con)
	}
	return con, nil
}

// fleetView shows the fleet of endpoint agents on the console's /agents
// page and home page: the agents the fleet knows and the pools server.yaml
// configures, so a pool without agents shows too.
type fleetView struct {
	f   agentLister
	cfg *config.Config
}

var (
	_ web.Fleet = fleetView{}
	_ web.Pools = fleetView{}
	_ web.Waits = (*server.Server)(nil)
)

func (v fleetView) Agents(_ context.Context, tenant string) ([]api.Agent, error) {
	return v.f.Agents(tenant, "")
}

func (v fleetView) Pools(_ context.Context, tenant string) ([]string, error) {
	t := v.cfg.Tenants[tenant]
	if t == nil {
		return nil, nil
	}
	return slices.Sorted(maps.Keys(t.Pools)), nil
}

// agentLister is the fleet's view of agents: the replica's own fleet, or the
// fleet home's (package fleet/home).
type agentLister interface {
	Agents(tenant, pool string) ([]api.Agent, error)
}

var (
	_ agentLister = (*fleet.Fleet)(nil)
	_ agentLister = (*home.Home)(nil)
)

// consoleFleet is the console's view of agents, nil when no tenant has a
// pool (the page then says agents are not configured).
func consoleFleet(f agentLister, cfg *config.Config) web.Fleet {
	for _, t := range cfg.Tenants {
		if len(t.Pools) > 0 {
			return fleetView{f: f, cfg: cfg}
		}
	}
	return nil
}
