package api

import "time"

// The agent protocol (docs/agents.md): an endpoint agent (`zof agent`) makes
// outbound HTTP requests only, to /v1/agent/..., with an agent token in
// Authorization: Bearer and its protocol version in the AgentProtocolHeader.
// One lease is one attempt of one member; every write under a lease carries
// the lease's epoch and is refused (409, problem type "lease-fenced") once the
// lease has been given up, expired or re-granted.

// AgentProtocol is the version of the agent protocol this build speaks. A
// server refuses an agent of another version with 426 naming both.
const AgentProtocol = 1

// AgentProtocolHeader carries the agent's protocol version on every agent request.
const AgentProtocolHeader = "Zof-Agent-Protocol"

// AgentHello is the body of POST /v1/agent/sessions: an agent connecting.
type AgentHello struct {
	Name        string            `json:"name"`
	Version     string            `json:"version"`
	Protocol    int               `json:"protocol"`
	Labels      map[string]string `json:"labels,omitempty"`
	Concurrency int               `json:"concurrency"`
}

// AgentSession is the server's answer to AgentHello: who the agent is and the
// timings it must keep.
type AgentSession struct {
	AgentID string `json:"agent_id"`
	Tenant  string `json:"tenant"`
	Pool    string `json:"pool"`
	// HeartbeatEvery is how often the agent sends a heartbeat while it holds
	// leases; LeaseTTL is how long a lease lives without one.
	HeartbeatEvery Duration `json:"heartbeat_every"`
	LeaseTTL       Duration `json:"lease_ttl"`
	// PollWait is the longest the server holds a poll open.
	PollWait Duration `json:"poll_wait"`
	// Policy is what the pool's agents may reach and run; the agent checks
	// it again before every request and redirect.
	Policy AgentPolicy `json:"policy"`
}

// AgentPolicy is a pool's policy as an agent enforces it.
type AgentPolicy struct {
	// Targets are the URL patterns (server.yaml pools.<name>.targets) steps may reach.
	Targets       []string `json:"targets"`
	AllowCommands bool     `json:"allow_commands"`
}

// AgentPoll is the body of POST /v1/agent/poll: the agent asks for up to Free
// new leases and lists the leases it holds. The server answers at once when it
// has work or a stop for the agent, else holds the request up to PollWait.
type AgentPoll struct {
	AgentID  string     `json:"agent_id"`
	Free     int        `json:"free"`
	Draining bool       `json:"draining,omitempty"`
	Held     []LeaseRef `json:"held,omitempty"`
}

// LeaseRef names a lease at an epoch.
type LeaseRef struct {
	ID    string `json:"id"`
	Epoch int64  `json:"epoch"`
}

// AgentWork is the answer to a poll or a heartbeat: new leases, and leases the
// agent must stop at once (cancelled run, lease lost or fenced), killing their
// steps' process groups.
type AgentWork struct {
	Leases []Lease     `json:"leases,omitempty"`
	Stop   []LeaseStop `json:"stop,omitempty"`
}

// LeaseStop tells an agent to stop a lease's attempt, and why.
type LeaseStop struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// Lease is one attempt of one member, granted to one agent.
type Lease struct {
	ID    string `json:"id"`
	Epoch int64  `json:"epoch"`
	RunID string `json:"run_id"`
	// Member is the member's id; Attempt the attempt this lease executes.
	Member    string            `json:"member"`
	Attempt   int               `json:"attempt"`
	Case      Case              `json:"case"`
	Variant   Variant           `json:"variant"`
	BaseURL   string            `json:"base_url,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
	Secrets   []string          `json:"secrets,omitempty"`
	ExpiresIn Duration          `json:"expires_in"`
}

// AgentHeartbeat is the body of POST /v1/agent/heartbeat; the answer is AgentWork
// (only Stop is set).
type AgentHeartbeat struct {
	AgentID  string     `json:"agent_id"`
	Draining bool       `json:"draining,omitempty"`
	Held     []LeaseRef `json:"held"`
}

// LeaseReport is the body of POST /v1/agent/leases/{id}/events: step events of
// the lease's member (types step_status and log only), in order.
type LeaseReport struct {
	Epoch  int64   `json:"epoch"`
	Events []Event `json:"events"`
}

// LeaseResult is the body of POST /v1/agent/leases/{id}/result: the attempt's
// outcome (passed, failed or cancelled), with the step events not yet reported.
type LeaseResult struct {
	Epoch  int64   `json:"epoch"`
	Status Status  `json:"status"`
	Reason string  `json:"reason,omitempty"`
	Events []Event `json:"events,omitempty"`
	// Evidence is what the attempt's failed step left (docs/api.md,
	// Artifacts), masked by the agent; the server masks it again and keeps it
	// as the run's artifacts, like a local step's.
	Evidence []LeaseEvidence `json:"evidence,omitempty"`
}

// LeaseEvidence is one piece of a failed step's evidence, sent with the
// attempt's result. Content travels as base64 (JSON []byte).
type LeaseEvidence struct {
	Step        int          `json:"step"`
	Kind        ArtifactKind `json:"kind"`
	ContentType string       `json:"content_type,omitempty"`
	Content     []byte       `json:"content"`
	Truncated   bool         `json:"truncated,omitempty"`
}

// AgentState is an agent's state in the fleet.
type AgentState string

// Agent states (docs/agents.md).
const (
	AgentIdle     AgentState = "idle"
	AgentBusy     AgentState = "busy"
	AgentDraining AgentState = "draining"
	AgentLost     AgentState = "lost"
)

// Agent is one agent in the fleet (GET /v1/agents).
type Agent struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Tenant        string            `json:"tenant"`
	Pool          string            `json:"pool"`
	Version       string            `json:"version"`
	Labels        map[string]string `json:"labels,omitempty"`
	State         AgentState        `json:"state"`
	Concurrency   int               `json:"concurrency"`
	ConnectedAt   time.Time         `json:"connected_at"`
	LastHeartbeat time.Time         `json:"last_heartbeat"`
	Held          []AgentLease      `json:"held,omitempty"`
}

// AgentLease is a lease an agent holds, as the fleet view shows it.
type AgentLease struct {
	RunID   string    `json:"run_id"`
	Member  string    `json:"member"`
	Attempt int       `json:"attempt"`
	Since   time.Time `json:"since"`
}

// AgentList is the body of GET /v1/agents.
type AgentList struct {
	Agents []Agent `json:"agents"`
}

// WaitReason says which limit holds a waiting run or member (docs/agents.md,
// Why a run waits): Kind is one of "tenant_limit", "exclusive", "agent",
// "pool_limit"; Message is the sentence a person reads.
type WaitReason struct {
	Kind    string    `json:"kind"`
	Message string    `json:"message"`
	Since   time.Time `json:"since"`
}
