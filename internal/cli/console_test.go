package cli

import (
	"slices"
	"testing"

	"github.com/zof-ai/zof-ci/internal/fleet"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

// The console's /agents page lists the configured pools (so an empty pool
// shows) and is off when no tenant has a pool.
func TestConsoleFleet(t *testing.T) {
	lookup := func(name string) (string, bool) {
		return map[string]string{"TOK": "user-token-0123456789", "AG1": "agent-token-0123456789", "AG2": "agent-token-9876543210"}[name], true
	}
	parse := func(yaml string) *config.Config {
		t.Helper()
		cfg, err := config.Parse([]byte(yaml), "server.yaml", lookup)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	plain := parse("tenants:\n  a:\n    tokens: [{name: ci, role: runner, env: TOK}]\n")
	f, err := fleet.New(fleet.Options{Config: plain, Epochs: &fleet.MemEpochs{}})
	if err != nil {
		t.Fatal(err)
	}
	if got := consoleFleet(f, plain); got != nil {
		t.Errorf("consoleFleet without pools = %v, want nil (the page says agents are not configured)", got)
	}
	pooled := parse(`tenants:
  a:
    tokens: [{name: ci, role: runner, env: TOK}]
    pools:
      zeta: {targets: ["https://z.example.com"], tokens: [{name: z1, env: AG1}]}
      alpha: {targets: ["https://a.example.com"], tokens: [{name: a1, env: AG2}]}
`)
	f, err = fleet.New(fleet.Options{Config: pooled, Epochs: &fleet.MemEpochs{}})
	if err != nil {
		t.Fatal(err)
	}
	v := consoleFleet(f, pooled)
	if v == nil {
		t.Fatal("consoleFleet with pools = nil")
	}
	pools, err := v.(fleetView).Pools(t.Context(), "a")
	if err != nil || !slices.Equal(pools, []string{"alpha", "zeta"}) {
		t.Errorf("Pools = %v, %v; want [alpha zeta]", pools, err)
	}
	if agents, err := v.Agents(t.Context(), "a"); err != nil || len(agents) != 0 {
		t.Errorf("Agents = %v, %v; want none connected", agents, err)
	}
}
