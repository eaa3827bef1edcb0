package cli

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/exitcode"
)

func TestAgentsOptions(t *testing.T) {
	env := Env{"ZOF_SERVER": "https://zof.test", "ZOF_TOKEN": "tok"}
	o, err := capture(t, newCmdAgents, env, "--pool", "eu", "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	if o.Server.URL != "https://zof.test" || o.Pool != "eu" || o.Output != "json" {
		t.Errorf("options %+v", o)
	}
	for _, args := range [][]string{{"--output", "yaml"}, {"extra"}} {
		if _, err := capture(t, newCmdAgents, env, args...); exitcode.Of(err) != exitcode.Usage {
			t.Errorf("%v: err %v, want a usage error", args, err)
		}
	}
	if _, err := capture(t, newCmdAgents, Env{}); exitcode.Of(err) != exitcode.Usage {
		t.Errorf("without a server: %v, want a usage error", err)
	}
}

func TestWriteAgents(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	agents := []api.Agent{
		{Name: "eu-1", Pool: "eu", State: api.AgentBusy, Version: "1.4.0", Concurrency: 2, Labels: map[string]string{"zone": "a", "region": "eu"},
			LastHeartbeat: now.Add(-3 * time.Second), Held: []api.AgentLease{{RunID: "run_a", Member: "login", Attempt: 1}}},
		{Name: "eu-2", Pool: "eu", State: api.AgentLost, Concurrency: 1, LastHeartbeat: now.Add(-4 * time.Minute)},
	}
	for _, tt := range []struct {
		name   string
		agents []api.Agent
		pool   string
		want   string
	}{
		{"fleet", agents, "", "" +
			"POOL  NAME  STATE  VERSION  LABELS            LAST HEARTBEAT  HELD\n" +
			"eu    eu-1  busy   1.4.0    region=eu,zone=a  3s ago          1/2 run_a:login#1\n" +
			"eu    eu-2  lost   -        -                 4m0s ago        0/1\n"},
		{"none in a pool", nil, "eu", "no endpoint agents are connected in pool eu (start one with zof agent; docs/agents.md)\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeAgents(&b, tt.agents, tt.pool, now); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, b.String()); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
