package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/fleet"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

// The agent API (docs/agents.md): endpoint agents call /v1/agent/... with an
// agent token of their pool; users list the fleet with GET /v1/agents.
//
// Decisions where docs/agents.md is silent:
//   - A user token on /v1/agent/... and an agent token anywhere else are 403
//     (problem type wrong-principal), naming which kind of token is needed.
//   - A request without Zof-Agent-Protocol, or with another version, is 426
//     naming both versions; the answer carries the server's version in the
//     same header.
//   - An agent session the server does not know (it restarted, or forgot
//     the agent after it was lost) is 404 agent-unknown: the agent connects
//     again. A lease write at a stale epoch, or of a lease the server does
//     not know, is 409 lease-fenced; nothing of it is stored.
//   - Request bodies of the agent API are bounded by MaxAgentBody, not
//     max_body: a result carries at most fleet.MaxEvents events whose step
//     outputs are kept to fleet.MaxOutput each (the tail, marked).
const (
	probFenced         = probPrefix + "lease-fenced"
	probAgentUnknown   = probPrefix + "agent-unknown"
	probProtocol       = probPrefix + "agent-protocol"
	probWrongPrincipal = probPrefix + "wrong-principal"
	// MaxAgentBody bounds an agent request's body: room for a report of
	// fleet.MaxEvents events with a few full step outputs, far below what
	// would strain the server's memory.
	MaxAgentBody = 8 << 20
)

// Fleet is what the server needs of the dispatcher (package fleet).
type Fleet interface {
	Connect(p config.Principal, h api.AgentHello) (api.AgentSession, error)
	Disconnect(p config.Principal, agentID string) error
	Poll(ctx context.Context, p config.Principal, poll api.AgentPoll) (api.AgentWork, error)
	Heartbeat(p config.Principal, hb api.AgentHeartbeat) (api.AgentWork, error)
	Report(p config.Principal, leaseID string, rep api.LeaseReport) error
	Result(p config.Principal, leaseID string, res api.LeaseResult) error
	// Agents lists a tenant's agents; an error means they are not known right now
	// (fleet/home: the home's view cannot be read), answered 503.
	Agents(tenant, pool string) ([]api.Agent, error)
	MemberWaits(tenant, runID string) map[string]api.WaitReason
	Stats() []fleet.PoolStats
	SetAudit(fleet.Audit)
}

var _ Fleet = (*fleet.Fleet)(nil)

func (s *Server) agentRoutes() []route {
	return []route{
		{method: "POST", path: "/v1/agent/sessions", agent: true, h: s.agentConnect},
		{method: "DELETE", path: "/v1/agent/sessions/{agent}", agent: true, h: s.agentDisconnect},
		{method: "POST", path: "/v1/agent/poll", agent: true, stream: true, h: s.agentPoll},
		{method: "POST", path: "/v1/agent/heartbeat", agent: true, h: s.agentHeartbeat},
		{method: "POST", path: "/v1/agent/leases/{id}/events", agent: true, h: s.agentReport},
		{method: "POST", path: "/v1/agent/leases/{id}/result", agent: true, h: s.agentResult},
		{method: "GET", path: "/v1/agents", role: config.RoleViewer, h: s.listAgents},
	}
}

// agentGate checks the principal and protocol of an agent route; false
// when it answered.
func (s *Server) agentGate(w http.ResponseWriter, r *http.Request, p config.Principal) bool {
	if !p.Agent() {
		writeProblem(w, http.StatusForbidden, probWrongPrincipal, "Not an agent token",
			fmt.Sprintf("token %q of tenant %s is a user token; /v1/agent/... is for endpoint agents, with a token from a pool's tokens in server.yaml (docs/agents.md)", p.Name, p.Tenant))
		return false
	}
	v := r.Header.Get(api.AgentProtocolHeader)
	if n, err := strconv.Atoi(v); err != nil || n != api.AgentProtocol {
		if v == "" {
			v = "none"
		}
		w.Header().Set(api.AgentProtocolHeader, strconv.Itoa(api.AgentProtocol))
		writeProblem(w, http.StatusUpgradeRequired, probProtocol, "Agent protocol mismatch",
			fmt.Sprintf("this server speaks agent protocol %d and the agent speaks %.20s; run a zof agent of the server's release", api.AgentProtocol, v))
		return false
	}
	if s.fleet == nil {
		writeProblem(w, http.StatusNotFound, probNotFound, "No agent pools",
			"this server has no fleet of endpoint agents; configure pools in server.yaml (docs/agents.md)")
		return false
	}
	if fw, ok := s.fleet.(AgentForwarder); ok && fw.ForwardAgent(w, r) {
		return false
	}
	return true
}

// fleetError answers an error of the fleet.
func (s *Server) fleetError(w http.ResponseWriter, err error) {
	var bad *fleet.BadInputError
	switch {
	case errors.As(err, &bad):
		writeProblemBody(w, api.Problem{Type: probBadRequest, Title: "Malformed agent request", Status: http.StatusBadRequest,
			Detail: "nothing of it was stored: " + bad.Error(), Errors: bad.Problems})
	case errors.Is(err, fleet.ErrFenced):
		writeProblem(w, http.StatusConflict, probFenced, "Lease fenced",
			"the lease was given up, expired or granted again, or its epoch is stale; nothing was stored. Stop the member's steps")
	case errors.Is(err, fleet.ErrUnknownAgent):
		writeProblem(w, http.StatusNotFound, probAgentUnknown, "Unknown agent session",
			"this server does not know the agent's session (it restarted, or the agent was lost); connect again with POST /v1/agent/sessions")
	case errors.Is(err, fleet.ErrStopped):
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterStopped))
		writeProblem(w, http.StatusServiceUnavailable, probShuttingDown, "Shutting down", "the server is stopping; connect again after it restarts")
	default:
		s.log.Error("agent request failed", "err", err)
		writeProblem(w, http.StatusInternalServerError, probInternal, "Internal error", "the server failed on this request; it is logged. Retry")
	}
}

func (s *Server) agentConnect(w http.ResponseWriter, r *http.Request, p config.Principal) {
	if !s.agentGate(w, r, p) {
		return
	}
	var h api.AgentHello
	if berr := decodeJSON(w, r, MaxAgentBody, &h, false); berr != nil {
		berr.write(w)
		return
	}
	if h.Protocol != api.AgentProtocol {
		w.Header().Set(api.AgentProtocolHeader, strconv.Itoa(api.AgentProtocol))
		writeProblem(w, http.StatusUpgradeRequired, probProtocol, "Agent protocol mismatch",
			fmt.Sprintf("this server speaks agent protocol %d and the agent speaks %d; run a zof agent of the server's release", api.AgentProtocol, h.Protocol))
		return
	}
	sess, err := s.fleet.Connect(p, h)
	if err != nil {
		s.fleetError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, sess)
}

func (s *Server) agentDisconnect(w http.ResponseWriter, r *http.Request, p config.Principal) {
	if !s.agentGate(w, r, p) {
		return
	}
	if err := s.fleet.Disconnect(p, r.PathValue("agent")); err != nil {
		s.fleetError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// agentPoll is held up to the session's poll_wait (a stream route: no
// write deadline), and ends early when the server shuts down.
func (s *Server) agentPoll(w http.ResponseWriter, r *http.Request, p config.Principal) {
	if !s.agentGate(w, r, p) {
		return
	}
	var poll api.AgentPoll
	if berr := decodeJSON(w, r, MaxAgentBody, &poll, false); berr != nil {
		berr.write(w)
		return
	}
	// The body is read; the whole-request read deadline (ReadTimeout) must
	// not end a poll held up to poll_wait.
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	work, err := s.fleet.Poll(ctx, p, poll)
	if err != nil {
		s.fleetError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, work)
}

func (s *Server) agentHeartbeat(w http.ResponseWriter, r *http.Request, p config.Principal) {
	if !s.agentGate(w, r, p) {
		return
	}
	var hb api.AgentHeartbeat
	if berr := decodeJSON(w, r, MaxAgentBody, &hb, false); berr != nil {
		berr.write(w)
		return
	}
	work, err := s.fleet.Heartbeat(p, hb)
	if err != nil {
		s.fleetError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, work)
}

func (s *Server) agentReport(w http.ResponseWriter, r *http.Request, p config.Principal) {
	leaseWrite(s, w, r, p, s.fleet.Report)
}

func (s *Server) agentResult(w http.ResponseWriter, r *http.Request, p config.Principal) {
	leaseWrite(s, w, r, p, s.fleet.Result)
}

// leaseWrite is a write under the lease named in the path (a report or a
// result): the body decoded as T and handed to write; 204 when stored.
func leaseWrite[T any](s *Server, w http.ResponseWriter, r *http.Request, p config.Principal, write func(config.Principal, string, T) error) {
	if !s.agentGate(w, r, p) {
		return
	}
	var body T
	if berr := decodeJSON(w, r, MaxAgentBody, &body, false); berr != nil {
		berr.write(w)
		return
	}
	if err := write(p, r.PathValue("id"), body); err != nil {
		s.fleetError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listAgents is GET /v1/agents[?pool=P]: the tenant's agents.
func (s *Server) listAgents(w http.ResponseWriter, r *http.Request, p config.Principal) {
	q := r.URL.Query()
	for k := range q {
		if k != "pool" {
			writeProblem(w, http.StatusBadRequest, probBadQuery, "Unknown query parameter",
				fmt.Sprintf("unknown query parameter %q; GET /v1/agents takes pool", k))
			return
		}
	}
	pool := q.Get("pool")
	t := s.cfg.Tenants[p.Tenant]
	if pool != "" && (t == nil || t.Pools[pool] == nil) {
		writeProblem(w, http.StatusNotFound, probNotFound, "Unknown pool",
			fmt.Sprintf("tenant %s has no pool %q (pools: %s)", p.Tenant, pool, strings.Join(poolNames(t), ", ")))
		return
	}
	out := api.AgentList{Agents: []api.Agent{}}
	if s.fleet != nil {
		agents, err := s.fleet.Agents(p.Tenant, pool)
		if err != nil {
			// Not "no agents": unknown for a moment (a new fleet home being chosen).
			w.Header().Set("Retry-After", strconv.Itoa(retryAfterFleet))
			writeProblem(w, http.StatusServiceUnavailable, probUnavailable, "Agents unknown", err.Error())
			return
		}
		out.Agents = agents
	}
	writeJSON(w, http.StatusOK, out)
}

func poolNames(t *config.Tenant) []string {
	if t == nil || len(t.Pools) == 0 {
		return []string{"none"}
	}
	return t.PoolNames()
}

// poolPolicy applies the submission policy of pools (docs/agents.md,
// Which runs go to a pool): a run whose primary target matches a pool is
// checked against that pool's targets and allow_commands (a serve command
// is refused: serve runs on pools are not supported in this version); a
// run that matches no pool is the local executor's, refused when the
// tenant has local_executor: false. local reports whether the tenant's own
// checks (allowed_targets, allow_commands) still apply.
func poolPolicy(t *config.Tenant, req *api.RunRequest) (probs []string, local bool) {
	pool := fleet.PoolOf(t, req)
	if pool == nil {
		if !t.LocalExecutor {
			target := fleet.PrimaryTarget(req)
			if u, err := url.Parse(target); err == nil {
				target = redact(u)
			}
			return []string{fmt.Sprintf("target %s matches no pool of tenant %s (%s) and the tenant has local_executor: false, so no executor may run it; point the environment at a pool's targets or ask the operator to add a pool",
				target, t.Name, describePools(t))}, false
		}
		return nil, true
	}
	env := req.Environment
	if env.Serve != nil {
		probs = append(probs, fmt.Sprintf("environment %s has a serve command and its run goes to pool %s; serve commands do not run on agents in this version (the service would have to be started beside each agent's members): start the service in the private network and point the environment's url at it",
			env.Name, pool.Name))
	}
	// The pool's targets and allow_commands stand in for the tenant's.
	pt := &config.Tenant{Name: t.Name, AllowCommands: pool.AllowCommands, AllowedTargets: pool.Targets}
	for _, p := range safety(pt, &api.RunRequest{Environment: api.Environment{Name: env.Name, URL: env.URL}, Cases: req.Cases}) {
		p = strings.ReplaceAll(p, "tenant "+t.Name+" may not run commands on this server (allow_commands: false in server.yaml)",
			"pool "+pool.Name+" may not run commands (allow_commands: false in server.yaml)")
		p = strings.ReplaceAll(p, "(allowed_targets: ", "(pool "+pool.Name+" targets: ")
		probs = append(probs, "pool "+pool.Name+": "+p)
	}
	return probs, false
}

// describePools names a tenant's pools with their targets for refusals.
func describePools(t *config.Tenant) string {
	if len(t.Pools) == 0 {
		return "it has no pools"
	}
	var parts []string
	for _, n := range t.PoolNames() {
		parts = append(parts, n+": "+strings.Join(t.Pools[n].TargetStrings(), ", "))
	}
	return "pools " + strings.Join(parts, "; ")
}

// AddWaits is addWaits for the web console's run page (web.Waits).
func (s *Server) AddWaits(run *api.Run) { s.addWaits(run) }

// addWaits sets the wait reasons of a run read for a client: a queued run's
// from the engine, a running pool run's members' from the fleet (the run's
// own is its earliest waiting member's).
func (s *Server) addWaits(run *api.Run) {
	switch run.Status {
	case api.StatusInitial, api.StatusQueued:
		run.Wait = s.eng.WaitReason(run.Tenant, run.ID)
	case api.StatusRunning:
		var waits map[string]api.WaitReason
		if s.fleet != nil {
			waits = s.fleet.MemberWaits(run.Tenant, run.ID)
		}
		running := 0
		for i := range run.Members {
			if run.Members[i].Status == api.StatusRunning {
				running++
			}
		}
		for i := range run.Members {
			m := &run.Members[i]
			if w, ok := waits[m.ID]; ok && !m.Status.Terminal() {
				m.Wait = &w
				if run.Wait == nil || w.Since.Before(run.Wait.Since) {
					run.Wait = &w
				}
				continue
			}
			if m.Status == api.StatusInitial && m.Substate == api.SubstateNone {
				// Not started: the run's max_parallel holds it (a member of an
				// ordered set says so in its substate instead).
				m.Wait = &api.WaitReason{Kind: WaitRunLimit, Since: run.StartedAt,
					Message: fmt.Sprintf("waiting for a free slot of the run: %d of its members running (max_parallel)", running)}
			}
		}
	}
}

// WaitRunLimit is the wait kind of a member not started because its run
// already executes max_parallel members.
const WaitRunLimit = "run_limit"

// WaitRefresh is how often a stream that asked for them (?wait=1) checks
// its run's wait reason: "refreshed within 1 s" (docs/agents.md).
const WaitRefresh = time.Second

// currentWait is the wait reason of a run in status: a waiting run's from
// the engine, a running pool run's earliest waiting member's from the fleet.
func (s *Server) currentWait(tenant, id string, status api.Status) *api.WaitReason {
	switch status {
	case api.StatusInitial, api.StatusQueued:
		return s.eng.WaitReason(tenant, id)
	case api.StatusRunning:
		if s.fleet == nil {
			return nil
		}
		var first *api.WaitReason
		for _, w := range s.fleet.MemberWaits(tenant, id) {
			if first == nil || w.Since.Before(first.Since) {
				first = &w
			}
		}
		return first
	}
	return nil
}

// wait writes a `wait` overlay (no id: not part of the run's log) when the
// run's wait reason changed since the last one sent; `{}` when it no longer waits.
func (st *stream) wait(tenant string, status api.Status) error {
	data := []byte("{}")
	if w := st.s.currentWait(tenant, st.runID, status); w != nil {
		data, _ = json.Marshal(w)
	}
	if string(data) == st.lastWait || (st.lastWait == "" && string(data) == "{}") {
		return nil
	}
	st.lastWait = string(data)
	st.buf.Reset()
	st.buf.WriteString("event: " + api.EventWait + "\ndata: ")
	st.buf.Write(data)
	st.buf.WriteString("\n\n")
	return st.write()
}
