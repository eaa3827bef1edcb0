package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/fleet"
	"github.com/zof-ai/zof-ci/internal/server"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

const (
	tokAgentEU   = "agent-eu-token-0123456789abc"
	tokAgentLab  = "agent-lab-token-0123456789ab"
	tokPlaneUser = "plane-runner-token-012345678"
)

// agentConfig adds pools to the test config: alpha's runs to
// *.eu.internal go to pool eu; tenant plane is a pure control plane.
var agentConfig = testConfig + `
  plane:
    local_executor: false
    tokens:
      - {name: ci, role: runner, env: PLANE_RUNNER}
    pools:
      lab:
        targets: ["http://*.lab.internal:*"]
        tokens: [{name: lab-1, env: AGENT_LAB}]
`

func init() {
	testEnv["AGENT_EU"] = tokAgentEU
	testEnv["AGENT_LAB"] = tokAgentLab
	testEnv["PLANE_RUNNER"] = tokPlaneUser
}

// withEUPool gives tenant alpha a pool eu (inserted under alpha's tokens).
func withEUPool(cfg string) string {
	return strings.Replace(cfg, "      - {name: ops, role: admin, env: ALPHA_ADMIN}\n",
		"      - {name: ops, role: admin, env: ALPHA_ADMIN}\n    pools:\n      eu:\n        targets: [\"https://*.eu.internal\"]\n        allow_commands: false\n        max_concurrent_members: 5\n        tokens: [{name: eu-1, env: AGENT_EU}]\n", 1)
}

func newAgentHarness(t *testing.T) (*harness, *fleet.Fleet) {
	t.Helper()
	return newAgentHarnessWith(t, nil, nil)
}

// newAgentHarnessWith is newAgentHarness with the server's Fleet built from the
// engine's by wrap (nil: the fleet itself).
func newAgentHarnessWith(t *testing.T, wrap func(*fleet.Fleet) server.Fleet, configure func(*server.Options)) (*harness, *fleet.Fleet) {
	t.Helper()
	yaml := withEUPool(agentConfig)
	cfg, err := config.Parse([]byte(yaml), "server.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	fl, err := fleet.New(fleet.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	var sf server.Fleet = fl
	if wrap != nil {
		sf = wrap(fl)
	}
	h := newHarness(t, harnessOpts{config: yaml,
		engineConfig: func(c *engine.Config) { c.Remote = fl },
		configure: func(o *server.Options) {
			o.Fleet = sf
			if configure != nil {
				configure(o)
			}
		},
	})
	return h, fl
}

var proto = []string{api.AgentProtocolHeader, "1"}

func (h *harness) agent(method, path string, body any) resp {
	h.t.Helper()
	return h.do(method, path, tokAgentEU, body, proto...)
}

func TestAgentAPIPrincipals(t *testing.T) {
	h, _ := newAgentHarness(t)
	hello := api.AgentHello{Name: "eu-1", Version: "test", Protocol: api.AgentProtocol, Concurrency: 1}
	tests := []struct {
		name       string
		method     string
		path       string
		token      string
		hdr        []string
		body       any
		wantStatus int
		wantType   string
		wantDetail string
	}{
		{"user token on the agent API", "POST", "/v1/agent/sessions", tokAlphaAdmin, proto, hello, 403, "wrong-principal", "is a user token"},
		{"agent token on the user API", "GET", "/v1/runs", tokAgentEU, nil, nil, 403, "wrong-principal", "agent token of pool eu"},
		{"agent token creating a run", "POST", "/v1/runs", tokAgentEU, nil, api.RunRequest{}, 403, "wrong-principal", "may call only /v1/agent/"},
		{"agent token on the fleet view", "GET", "/v1/agents", tokAgentEU, nil, nil, 403, "wrong-principal", ""},
		{"no protocol header", "POST", "/v1/agent/sessions", tokAgentEU, nil, hello, 426, "agent-protocol", "speaks agent protocol 1 and the agent speaks none"},
		{"newer protocol", "POST", "/v1/agent/sessions", tokAgentEU, []string{api.AgentProtocolHeader, "2"}, hello, 426, "agent-protocol", "speaks agent protocol 1 and the agent speaks 2"},
		{"unknown token", "POST", "/v1/agent/sessions", "revoked-agent-token-0123456789", proto, hello, 401, "unauthorized", ""},
		{"unknown session", "POST", "/v1/agent/poll", tokAgentEU, proto, api.AgentPoll{AgentID: "agt_gone", Free: 1}, 404, "agent-unknown", "connect again"},
		{"fenced lease", "POST", "/v1/agent/leases/lse_x/result", tokAgentEU, proto, api.LeaseResult{Epoch: 1, Status: api.StatusPassed}, 409, "lease-fenced", "nothing was stored"},
		{"malformed body", "POST", "/v1/agent/heartbeat", tokAgentEU, proto, `{"agent_id": 3}`, 400, "malformed-json", ""},
		{"unknown field", "POST", "/v1/agent/poll", tokAgentEU, proto, `{"agent_id": "a", "free": 1, "greedy": true}`, 400, "unknown-field", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(tt.method, tt.path, tt.token, tt.body, tt.hdr...)
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			p := r.problem(t)
			if !strings.HasSuffix(p.Type, tt.wantType) || !strings.Contains(p.Detail, tt.wantDetail) {
				t.Errorf("problem %+v, want type …%s and detail containing %q", p, tt.wantType, tt.wantDetail)
			}
			if tt.wantStatus == 426 && r.header.Get(api.AgentProtocolHeader) != "1" {
				t.Errorf("426 without the server's %s", api.AgentProtocolHeader)
			}
		})
	}
}

func TestPoolRunThroughTheAgentAPI(t *testing.T) {
	h, _ := newAgentHarness(t)
	req := api.RunRequest{Project: "shop", Environment: api.Environment{Name: "eu", URL: "https://api.eu.internal"},
		Cases: []api.Case{{ID: "c1", Steps: []api.Step{{Name: "get", HTTP: &api.HTTPRequest{Method: "GET", Path: "/health"}}}}}}
	r := h.do("POST", "/v1/runs", tokAlphaRunner, req)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	run := r.run(t)

	// Before an agent connects, the run's member says why it waits.
	var got *api.Run
	waitUntil(t, "the member waits for an agent", func() bool {
		// (Until the scheduler has taken the run it waits in the queue.)
		got = h.do("GET", "/v1/runs/"+run.ID, tokAlphaViewer, nil).run(t)
		return got.Wait != nil && got.Wait.Kind != "queue"
	})
	if got.Wait.Kind != "agent" || got.Wait.Message != "waiting for an agent of pool eu: 0 online (never seen)" || got.Members[0].Wait == nil {
		t.Fatalf("wait %+v, member wait %+v", got.Wait, got.Members[0].Wait)
	}

	var sess api.AgentSession
	r = h.agent("POST", "/v1/agent/sessions", api.AgentHello{Name: "eu-1", Version: "test", Protocol: api.AgentProtocol, Concurrency: 2})
	if r.status != 200 || json.Unmarshal(r.body, &sess) != nil || sess.Pool != "eu" || sess.Tenant != "alpha" || sess.Policy.AllowCommands {
		t.Fatalf("connect: %d %s", r.status, r.body)
	}
	var work api.AgentWork
	r = h.agent("POST", "/v1/agent/poll", api.AgentPoll{AgentID: sess.AgentID, Free: 2})
	if r.status != 200 || json.Unmarshal(r.body, &work) != nil || len(work.Leases) != 1 {
		t.Fatalf("poll: %d %s", r.status, r.body)
	}
	l := work.Leases[0]
	if l.RunID != run.ID || l.Member != "c1" || l.BaseURL != "https://api.eu.internal" || l.Attempt != 1 {
		t.Fatalf("lease %+v", l)
	}

	m := string(h.metrics())
	for _, want := range []string{
		`zof_agents{pool="eu",state="busy",tenant="alpha"} 1`,
		`zof_agents{pool="eu",state="idle",tenant="alpha"} 0`,
		`zof_pool_members_running{pool="eu",tenant="alpha"} 1`,
		`zof_pool_queue_depth{pool="eu",tenant="alpha"} 0`,
		`zof_lease_expiries_total{pool="eu",tenant="alpha"} 0`,
		`zof_pool_stuck_runs{pool="lab",tenant="plane"} 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	var agents api.AgentList
	r = h.do("GET", "/v1/agents?pool=eu", tokAlphaViewer, nil)
	if json.Unmarshal(r.body, &agents) != nil || len(agents.Agents) != 1 || agents.Agents[0].State != api.AgentBusy || len(agents.Agents[0].Held) != 1 {
		t.Fatalf("fleet view: %d %s", r.status, r.body)
	}
	if r := h.do("GET", "/v1/agents", tokBetaRunner, nil); !strings.Contains(string(r.body), `"agents":[]`) {
		t.Errorf("another tenant sees the agents: %s", r.body)
	}
	if r := h.do("GET", "/v1/agents?pool=nope", tokAlphaViewer, nil); r.status != 404 {
		t.Errorf("unknown pool: %d", r.status)
	}

	// A malformed result stores nothing; the lease is still live.
	if r := h.agent("POST", "/v1/agent/leases/"+l.ID+"/result", api.LeaseResult{Epoch: l.Epoch, Status: api.StatusPassed,
		Events: []api.Event{{Type: api.EventStepStatus, Step: 2, StepStatus: api.StepPassed}}}); r.status != 400 {
		t.Fatalf("malformed result: %d %s", r.status, r.body)
	}
	// A stale epoch is fenced.
	if r := h.agent("POST", "/v1/agent/leases/"+l.ID+"/events", api.LeaseReport{Epoch: l.Epoch - 1, Events: []api.Event{{Type: api.EventLog, Message: "stale"}}}); r.status != 409 {
		t.Fatalf("stale epoch: %d %s", r.status, r.body)
	}
	if r := h.agent("POST", "/v1/agent/leases/"+l.ID+"/events", api.LeaseReport{Epoch: l.Epoch, Events: []api.Event{
		{Type: api.EventStepStatus, Step: 1, StepStatus: api.StepRunning}, {Type: api.EventLog, Message: "on the agent"}}}); r.status != 204 {
		t.Fatalf("report: %d %s", r.status, r.body)
	}
	if r := h.agent("POST", "/v1/agent/leases/"+l.ID+"/result", api.LeaseResult{Epoch: l.Epoch, Status: api.StatusPassed,
		Events: []api.Event{{Type: api.EventStepStatus, Step: 1, StepStatus: api.StepPassed, Output: "200 OK"}}}); r.status != 204 {
		t.Fatalf("result: %d %s", r.status, r.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	final, err := h.eng.Wait(ctx, "alpha", run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != api.StatusPassed || final.Members[0].Steps[0].Output != "200 OK" {
		t.Fatalf("run %s, step %+v", final.Status, final.Members[0].Steps[0])
	}
	evs, _ := h.eng.Events(ctx, "alpha", run.ID, 0)
	for _, ev := range evs {
		if ev.Message == "stale" {
			t.Error("a fenced write was stored")
		}
	}
	if r := h.agent("DELETE", "/v1/agent/sessions/"+sess.AgentID, nil); r.status != 204 {
		t.Fatalf("disconnect: %d %s", r.status, r.body)
	}
	audit := h.audit.String()
	for _, want := range []string{`"action":"agent-connect"`, `"action":"agent-disconnect"`} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit log lacks %s:\n%s", want, audit)
		}
	}
}

func TestPoolSubmissionPolicy(t *testing.T) {
	h, _ := newAgentHarness(t)
	get := func(url string) api.Step {
		return api.Step{Name: "get", HTTP: &api.HTTPRequest{Method: "GET", URL: url}}
	}
	run := func(env string, steps ...api.Step) api.RunRequest {
		return api.RunRequest{Project: "shop", Environment: api.Environment{Name: "e", URL: env}, Cases: []api.Case{{ID: "c", Steps: steps}}}
	}
	withServe := run("https://api.eu.internal", get("https://api.eu.internal/x"))
	withServe.Environment.Serve = &api.Serve{Command: "./app"}
	tests := []struct {
		name  string
		token string
		req   api.RunRequest
		want  []string // "" = created
	}{
		{"pool run", tokAlphaRunner, run("https://api.eu.internal", get("https://api.eu.internal/x")), nil},
		{"local run", tokAlphaRunner, run("http://127.0.0.1:9", get("http://127.0.0.1:9/x")), nil},
		{"pool run reaching outside the pool", tokAlphaRunner, run("https://api.eu.internal", get("http://127.0.0.1:9/x")),
			[]string{"pool eu: case c step 1 (get): target http://127.0.0.1:9/x is not allowed for tenant alpha (pool eu targets: https://*.eu.internal)"}},
		{"run: step on a pool without commands", tokAlphaRunner, run("https://api.eu.internal", api.Step{Name: "sh", Run: &api.Command{Command: "true"}}),
			[]string{"pool eu may not run commands (allow_commands: false in server.yaml)"}},
		{"serve on a pool", tokAlphaRunner, withServe, []string{"serve commands do not run on agents in this version"}},
		{"matches no pool, outside allowed_targets", tokAlphaRunner, run("https://elsewhere.example.com"), []string{"target https://elsewhere.example.com is not allowed for tenant alpha"}},
		{"control plane: no pool matches", tokPlaneUser, run("http://127.0.0.1:9"),
			[]string{"target http://127.0.0.1:9 matches no pool of tenant plane (pools lab: http://*.lab.internal:*) and the tenant has local_executor: false"}},
		{"control plane: pool run", tokPlaneUser, run("http://db.lab.internal:5000", get("http://db.lab.internal:5000/x")), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do("POST", "/v1/runs", tt.token, tt.req)
			if tt.want == nil {
				if r.status != 201 {
					t.Fatalf("status %d, want 201: %s", r.status, r.body)
				}
				return
			}
			if r.status != 422 {
				t.Fatalf("status %d, want 422: %s", r.status, r.body)
			}
			p := r.problem(t)
			all := strings.Join(p.Errors, "\n")
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("problems %q lack %q", p.Errors, w)
				}
			}
		})
	}
}

// A stream that asks for them (?wait=1) gets `wait` overlays: why the run
// waits, at once (with a refresh of an hour, only the first overlay can
// bring it), and `{}` once it no longer does (a refresh later).
func TestStreamWaitOverlay(t *testing.T) {
	t.Run("first at once", func(t *testing.T) { testStreamWaitOverlay(t, time.Hour) })
	t.Run("refreshed", func(t *testing.T) { testStreamWaitOverlay(t, server.WaitRefresh) })
}

func testStreamWaitOverlay(t *testing.T, refresh time.Duration) {
	h, _ := newAgentHarnessWith(t, nil, func(o *server.Options) { o.WaitRefresh = refresh })
	req := api.RunRequest{Project: "shop", Environment: api.Environment{Name: "eu", URL: "https://api.eu.internal"},
		Cases: []api.Case{{ID: "c1", Steps: []api.Step{{Name: "get", HTTP: &api.HTTPRequest{Method: "GET", Path: "/"}}}}}}
	run := h.do("POST", "/v1/runs", tokAlphaRunner, req).run(t)
	hreq, _ := http.NewRequest("GET", h.url+"/v1/runs/"+run.ID+"/events?wait=1", nil)
	hreq.Header.Set("Authorization", "Bearer "+tokAlphaViewer)
	res, err := h.client.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	// nextWait returns the data of the next `wait` overlay.
	nextWait := func() string {
		t.Helper()
		deadline := time.After(waitLimit)
		isWait := false
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("the stream ended")
				}
				if d, found := strings.CutPrefix(l, "data: "); found && isWait {
					return d
				}
				isWait = l == "event: wait"
			case <-deadline:
				t.Fatal("no wait overlay")
			}
		}
	}
	var w api.WaitReason
	if d := nextWait(); json.Unmarshal([]byte(d), &w) != nil || w.Message != "waiting for an agent of pool eu: 0 online (never seen)" {
		t.Fatalf("overlay %s", d)
	}
	if refresh == time.Hour {
		return // the next overlay would come an hour later
	}
	var sess api.AgentSession
	_ = json.Unmarshal(h.agent("POST", "/v1/agent/sessions", api.AgentHello{Name: "eu-1", Protocol: api.AgentProtocol, Concurrency: 1}).body, &sess)
	if r := h.agent("POST", "/v1/agent/poll", api.AgentPoll{AgentID: sess.AgentID, Free: 1}); !strings.Contains(string(r.body), `"leases"`) {
		t.Fatalf("poll: %s", r.body)
	}
	if d := nextWait(); d != "{}" {
		t.Errorf("overlay after the lease %s, want {}", d)
	}
}

// A member not started because its run is at max_parallel says so.
func TestMemberWaitsForTheRunsSlots(t *testing.T) {
	h, _ := newAgentHarness(t)
	req := api.RunRequest{Project: "shop", Environment: api.Environment{Name: "local", URL: "http://127.0.0.1:9"}, MaxParallel: 1,
		Cases: []api.Case{{ID: "c1", Steps: []api.Step{{Name: "wait:slots", HTTP: &api.HTTPRequest{Method: "GET", Path: "/"}}}},
			{ID: "c2", Steps: []api.Step{{Name: "quick", HTTP: &api.HTTPRequest{Method: "GET", Path: "/"}}}}}}
	run := h.do("POST", "/v1/runs", tokAlphaRunner, req).run(t)
	var got *api.Run
	waitUntil(t, "c1 running", func() bool {
		got = h.do("GET", "/v1/runs/"+run.ID, tokAlphaViewer, nil).run(t)
		return got.Members[0].Status == api.StatusRunning
	})
	w := got.Members[1].Wait
	if w == nil || w.Kind != server.WaitRunLimit || w.Message != "waiting for a free slot of the run: 1 of its members running (max_parallel)" {
		t.Fatalf("c2 wait %+v", w)
	}
	if got.Members[0].Wait != nil {
		t.Errorf("a running local member waits: %+v", got.Members[0].Wait)
	}
	h.steps.open("slots")
}

// unknownFleet is a fleet whose agents are not known right now, as a replica
// that cannot read the fleet home's view (fleet/home.ErrViewUnknown).
type unknownFleet struct{ *fleet.Fleet }

func (unknownFleet) Agents(string, string) ([]api.Agent, error) {
	return nil, errors.New("the fleet's agents are not known on this replica right now: the fleet's home replica (none yet) does not answer; try again")
}

// TestListAgentsUnknown: agents that are not known are a 503 to retry, with
// why, never an empty list (which would say no agent is connected).
func TestListAgentsUnknown(t *testing.T) {
	h, _ := newAgentHarnessWith(t, func(fl *fleet.Fleet) server.Fleet { return unknownFleet{fl} }, nil)
	r := h.do("GET", "/v1/agents", tokBetaRunner, nil)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "1" || !strings.Contains(string(r.body), "the fleet's home replica (none yet) does not answer; try again") {
		t.Fatalf("GET /v1/agents = %d, Retry-After %q: %s", r.status, r.header.Get("Retry-After"), r.body)
	}
}
