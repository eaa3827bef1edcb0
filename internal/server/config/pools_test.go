package config_test

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/internal/server/config"
)

var withPools = `
tenants:
  payments:
    allowed_targets: ["https://*.staging.example.com"]
    tokens:
      - {name: ci, role: runner, env: TOK_A}
    pools:
      private-eu:
        targets: ["https://*.staging.internal.example.com"]
        allow_commands: true
        max_concurrent_members: 20
        stuck_after: 2m
        tokens:
          - {name: eu-agent-1, env: AGENT_EU}
      private-us:
        targets: ["https://*.us.internal.example.com"]
        tokens:
          - {name: us-agent-1, sha256: ` + sum("agent-us-token-0123456789") + `}
  search:
    local_executor: false
    tokens:
      - {name: ci, role: admin, env: TOK_B}
    pools:
      lab:
        targets: ["http://10.0.0.0:*"]
        tokens: [{name: lab-1, env: AGENT_LAB}]
`

func poolLookup(name string) (string, bool) {
	switch name {
	case "AGENT_EU":
		return "agent-eu-token-0123456789", true
	case "AGENT_LAB":
		return "agent-lab-token-0123456789", true
	}
	return lookup(name)
}

func TestParsePools(t *testing.T) {
	c, err := config.Parse([]byte(withPools), "server.yaml", poolLookup)
	if err != nil {
		t.Fatal(err)
	}
	pay := c.Tenants["payments"]
	if !pay.LocalExecutor || c.Tenants["search"].LocalExecutor {
		t.Errorf("local_executor: payments %v (default true), search %v (false)", pay.LocalExecutor, c.Tenants["search"].LocalExecutor)
	}
	if got := pay.PoolNames(); !slices.Equal(got, []string{"private-eu", "private-us"}) {
		t.Errorf("pool names %q", got)
	}
	eu := c.Pool("payments", "private-eu")
	if eu == nil || !eu.AllowCommands || eu.MaxConcurrentMembers != 20 || eu.StuckAfter != 2*time.Minute || !slices.Equal(eu.Tokens, []string{"eu-agent-1"}) {
		t.Fatalf("private-eu = %+v", eu)
	}
	us := c.Pool("payments", "private-us")
	if us.AllowCommands || us.MaxConcurrentMembers != 0 || us.StuckAfter != config.DefaultStuckAfter {
		t.Errorf("private-us defaults = %+v", us)
	}
	if !eu.Match(&url.URL{Scheme: "https", Host: "api.staging.internal.example.com"}) || eu.Match(&url.URL{Scheme: "https", Host: "api.staging.example.com"}) {
		t.Error("private-eu targets match the wrong hosts")
	}
	if n := len(c.AllPools()); n != 3 {
		t.Errorf("%d pools, want 3", n)
	}
	if !slices.Contains(c.TokenEnv(), "AGENT_EU") || !slices.Contains(c.TokenEnv(), "AGENT_LAB") {
		t.Errorf("TokenEnv %q lacks the agent token variables: run steps would inherit them", c.TokenEnv())
	}

	// An agent token is an agent principal of its pool, never a user.
	for _, tt := range []struct {
		token string
		want  config.Principal
	}{
		{"agent-eu-token-0123456789", config.Principal{Tenant: "payments", Name: "eu-agent-1", Pool: "private-eu"}},
		{"agent-us-token-0123456789", config.Principal{Tenant: "payments", Name: "us-agent-1", Pool: "private-us"}},
		{"agent-lab-token-0123456789", config.Principal{Tenant: "search", Name: "lab-1", Pool: "lab"}},
	} {
		p, ok := c.AuthenticateAny(tt.token)
		if !ok || p != tt.want || !p.Agent() {
			t.Errorf("AuthenticateAny(%s) = %+v, %v; want %+v", tt.want.Name, p, ok, tt.want)
		}
		if p, ok := c.Authenticate(tt.token); ok {
			t.Errorf("Authenticate(agent token %s) = %+v: an agent token must not authenticate as a user", tt.want.Name, p)
		}
	}
	if p, ok := c.AuthenticateAny(env["TOK_A"]); !ok || p.Agent() || p.Role != config.RoleRunner {
		t.Errorf("AuthenticateAny(user token) = %+v, %v", p, ok)
	}
}

func TestParsePoolErrors(t *testing.T) {
	tok := "\n    tokens: [{name: x, role: runner, env: TOK_A}]"
	agent := "\n        tokens: [{name: a1, env: AGENT_EU}]"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"no targets", "tenants:\n  a:" + tok + "\n    pools:\n      eu:" + agent, []string{"line 5: tenant a pool eu has no targets"}},
		{"bad target", "tenants:\n  a:" + tok + "\n    pools:\n      eu:\n        targets: [\"ftp://x\"]" + agent, []string{"line 6: tenant a pool eu: targets: pattern \"ftp://x\""}},
		{"no tokens", "tenants:\n  a:" + tok + "\n    pools:\n      eu:\n        targets: [\"https://x\"]", []string{"line 5: tenant a pool eu has no tokens"}},
		{"reserved name", "tenants:\n  a:" + tok + "\n    pools:\n      local:\n        targets: [\"https://x\"]" + agent, []string{`line 5: tenant a pool local: the name "local" is reserved`}},
		{"bad name", "tenants:\n  a:" + tok + "\n    pools:\n      'e u':\n        targets: [\"https://x\"]" + agent, []string{"line 5: tenant a pool e u: use letters"}},
		{"zero cap", "tenants:\n  a:" + tok + "\n    pools:\n      eu:\n        targets: [\"https://x\"]\n        max_concurrent_members: 0" + agent, []string{"line 7: tenant a pool eu: max_concurrent_members must be at least 1"}},
		{"bad stuck_after", "tenants:\n  a:" + tok + "\n    pools:\n      eu:\n        targets: [\"https://x\"]\n        stuck_after: -1s" + agent, []string{"line 7: tenant a pool eu: stuck_after must be positive"}},
		{"agent token with a role", "tenants:\n  a:" + tok + "\n    pools:\n      eu:\n        targets: [\"https://x\"]\n        tokens: [{name: a1, role: admin, env: AGENT_EU}]", []string{"line 7: unknown field role"}},
		{"agent token is a user's", "tenants:\n  a:" + tok + "\n    pools:\n      eu:\n        targets: [\"https://x\"]\n        tokens: [{name: a1, env: TOK_DUP}]",
			[]string{`line 7: tenant a pool eu token "a1": the same token is already configured for tenant a token "x"`}},
		{"agent token unset", "tenants:\n  a:" + tok + "\n    pools:\n      eu:\n        targets: [\"https://x\"]\n        tokens: [{name: a1, env: NOPE}]", []string{"line 7: tenant a pool eu token \"a1\": environment variable NOPE is not set"}},
		{"pure control plane without pools", "tenants:\n  a:\n    local_executor: false" + tok, []string{"line 3: tenant a: local_executor is false and the tenant has no pools"}},
		{"unknown pool field", "tenants:\n  a:" + tok + "\n    pools:\n      eu:\n        targets: [\"https://x\"]\n        labels: {a: b}" + agent, []string{"line 7: unknown field labels"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.yaml), "server.yaml", poolLookup)
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *config.Error", err)
			}
			if len(ce.Problems) != len(tt.want) {
				t.Fatalf("problems %q, want %d", ce.Problems, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(ce.Problems[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, ce.Problems[i], w)
				}
			}
		})
	}
}
