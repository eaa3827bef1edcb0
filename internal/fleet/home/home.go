// Package home makes the fleet of endpoint agents one service across the
// replicas of `zof serve` on one PostgreSQL database (docs/agents.md,
// "Several replicas"): agents lease from whichever replica they reach.
//
// One replica at a time is the fleet's home, under a lease in the database
// (Store) that names the address other replicas reach it at. The home's own
// fleet (package fleet) serves every agent and every pool run's member:
//
//   - The agent API of a replica that is not the home is forwarded to the
//     home unchanged (ForwardAgent, a reverse proxy); the home authenticates
//     the agent's token, since replicas share server.yaml. No home known, or
//     the home unreachable: 503 with Retry-After, and the agent retries.
//   - A replica executing a pool run that is not the home hands each member's
//     attempt to the home (RunAttempt → POST /v1/cluster/attempts), whose
//     answer streams the attempt as NDJSON frames (frame.go): started, step
//     events, keep-alives, the outcome. The request is authenticated by the
//     cluster secret the replicas share in the database. Cancelling the
//     attempt closes the request: the home stops the agent's lease. A stream
//     that breaks (the home died, or is no longer the home) ends the attempt
//     as lost: the engine runs the member again as a new attempt, neither a
//     retry nor flaky, through the new home.
//   - The fleet view (GET /v1/agents, the console, wait reasons, /metrics) of
//     a replica that is not the home is the home's, read from it at most once
//     a second (GET /v1/cluster/fleet).
//
// A replica that stops being the home ends what its fleet held as lost
// (fleet.Abandon); its agents, told by the new home that their session is
// unknown, connect again.
package home

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/fleet"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

// Timings (docs/agents.md, "Several replicas").
const (
	// DefaultTTL is the home's lease, as the engine's leader lease
	// (engine.LeaderTTL): another replica is the home within TTL + one
	// renewal of the home's death, and a database outage shorter than
	// that changes nothing.
	DefaultTTL = engine.LeaderTTL
	// DefaultRenewEvery is how often each replica takes or renews the
	// home's lease (and so learns of a new home).
	DefaultRenewEvery = time.Second
	// ViewTTL is how long a replica that is not the home shows the home's
	// fleet view before reading it again ("cached ~1 s").
	ViewTTL = time.Second
	// viewStale is how long a view is shown when the home cannot be read.
	viewStale = 10 * time.Second
	// viewTimeout bounds one read of the home's view.
	viewTimeout = 2 * time.Second
	// DefaultAliveEvery is the keep-alive frame interval of an attempt's
	// stream; DefaultAliveTimeout without any frame and the home is taken
	// for lost (a partition that drops packets does not close the stream).
	DefaultAliveEvery   = 5 * time.Second
	DefaultAliveTimeout = 3 * DefaultAliveEvery
	// retryMin and retryMax bound the full-jitter backoff of an attempt
	// that finds no home, or a home that does not answer yet.
	retryMin = 250 * time.Millisecond
	retryMax = 2 * time.Second
	// retryAfter is the Retry-After (seconds) of a 503 while the home is
	// unknown or unreachable: a new home is chosen within DefaultTTL.
	retryAfter = 1
	// dialTimeout bounds connecting to the home.
	dialTimeout = 5 * time.Second
	// releaseTimeout bounds giving the lease up at a clean stop.
	releaseTimeout = 2 * time.Second
	// holdWhileDown is how long an agent request waits on a replica that
	// is not the home, while no home is known or the home does not answer,
	// for a new home before it is answered 503. Each failure doubles the
	// agent's backoff (up to 15 s): held, a request fails about once in
	// this time, so the agent reaches the new home within a second of it.
	// It stays below the agent's heartbeat interval (5 s), which is its
	// heartbeat's timeout.
	holdWhileDown = 3 * time.Second
)

// The internal endpoints (docs/serve.md, "Endpoint agents and replicas"),
// authenticated by the cluster secret, and the header that marks an agent
// request one replica forwarded to another.
const (
	PathPrefix      = "/v1/cluster/"
	AttemptsPath    = "/v1/cluster/attempts"
	FleetPath       = "/v1/cluster/fleet"
	ForwardedHeader = "Zof-Fleet-Forwarded"
)

// Store keeps the home's lease and the cluster secret (pgstore.Store).
type Store interface {
	// TakeFleetHome takes the lease for replica at address when it is free
	// or expired, renews it when replica holds it, and returns who holds it
	// now and where it is reached ("" when nobody does).
	TakeFleetHome(ctx context.Context, replica, address string, ttl time.Duration) (home, homeAddress string, err error)
	// ReleaseFleetHome gives the lease up when replica holds it.
	ReleaseFleetHome(ctx context.Context, replica string) error
	// ClusterSecret is the secret every replica of the database reads.
	ClusterSecret(ctx context.Context) (string, error)
}

// Options configure a Home. Fleet, Store, Replica and Advertise are required.
type Options struct {
	// Fleet is this replica's own fleet: it serves the agents while this
	// replica is the home.
	Fleet *fleet.Fleet
	Store Store
	// Replica names this replica (the engine's Config.Replica).
	Replica string
	// Advertise is the base URL other replicas reach this one at
	// (zof serve --advertise), e.g. http://10.0.0.5:8080.
	Advertise string
	// Client calls the home (default: connections time out after dialTimeout).
	Client *http.Client
	Logger *slog.Logger
	// Zero values take the Default* constants.
	TTL          time.Duration
	RenewEvery   time.Duration
	AliveEvery   time.Duration
	AliveTimeout time.Duration
}

// holder is the replica holding the home's lease.
type holder struct{ replica, address string }

// Home routes the fleet's work to the replica that is its home. It is the
// engine's RemoteRunner and the server's Fleet.
type Home struct {
	o      Options
	secret string
	log    *slog.Logger
	proxy  *httputil.ReverseProxy

	mu      sync.Mutex
	cur     holder
	meUntil time.Time // this replica is the home until then (its own clock)
	serving bool      // its fleet takes attempts (SetAway("")): renew's last word
	pending map[pendingKey]time.Time
	stopped bool

	stopping     chan struct{} // closed when Run ends: forwarded requests end
	stoppingOnce sync.Once

	// warned is the home a "does not answer" was last logged at Warn for:
	// while it stays unreachable, further ones go to Debug.
	warned atomic.Pointer[string]
	// down is the home a forwarded request last failed to reach; cleared by
	// its next answer.
	down atomic.Pointer[string]
	// changed is closed, and replaced, when the home changes (under mu).
	changed chan struct{}

	viewMu   sync.Mutex
	view     *fleet.Snapshot
	viewAt   time.Time
	viewFrom string
}

type pendingKey struct{ tenant, run, member string }

var _ engine.RemoteRunner = (*Home)(nil)

// NewReplicaName names this process among the replicas: host, pid and a
// random part, so a restarted process is never taken for its predecessor.
func NewReplicaName() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = crand.Read(b[:])
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}

// New reads the cluster secret and takes part in choosing the home once,
// so the first request already knows where the home is. Call Run.
func New(ctx context.Context, o Options) (*Home, error) {
	switch {
	case o.Fleet == nil || o.Store == nil:
		return nil, errors.New("home: Options.Fleet and Options.Store are required")
	case o.Replica == "":
		return nil, errors.New("home: Options.Replica is required")
	}
	if err := CheckAdvertise(o.Advertise); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.TTL, DefaultTTL)
	def(&o.RenewEvery, DefaultRenewEvery)
	def(&o.AliveEvery, DefaultAliveEvery)
	def(&o.AliveTimeout, DefaultAliveTimeout)
	if o.Client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil // replicas reach each other directly
		tr.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
		o.Client = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	secret, err := o.Store.ClusterSecret(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the cluster secret: %w", err)
	}
	h := &Home{o: o, secret: secret, log: o.Logger, pending: map[pendingKey]time.Time{}, stopping: make(chan struct{}), changed: make(chan struct{})}
	h.proxy = h.newProxy()
	// Until this replica is the home, its fleet takes no attempt.
	o.Fleet.SetAway(fmt.Sprintf("replica %s is not the fleet's home", o.Replica))
	h.renew(ctx)
	return h, nil
}

// CheckAdvertise checks an advertise URL: absolute http(s) with a host that
// is not a wildcard, no path beyond "/", no credentials.
func CheckAdvertise(s string) error {
	u, err := url.Parse(s)
	if s == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("advertise URL %q: it must be the http(s)://host:port other replicas reach this one at (zof serve --advertise, env ZOF_ADVERTISE_URL)", s)
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("advertise URL %q: %s is a wildcard address, which other replicas cannot reach; name this replica's own address (zof serve --advertise)", s, u.Hostname())
	}
	return nil
}

// AdvertiseFromListen derives the advertise URL from a listen address
// (host:port) when its host is not a wildcard; "" when it is.
func AdvertiseFromListen(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil || host == "" || port == "" || port == "0" {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return ""
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Run renews or takes the home's lease every RenewEvery until ctx ends;
// then, when this replica is the home, it gives the lease up (another
// replica is the home at its next renewal) and ends what its fleet held as
// lost, and forwarded agent requests end.
func (h *Home) Run(ctx context.Context) {
	t := time.NewTicker(h.o.RenewEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			h.stop()
			return
		case <-t.C:
			h.renew(ctx)
		}
	}
}

func (h *Home) stop() {
	h.stoppingOnce.Do(func() { close(h.stopping) })
	h.mu.Lock()
	me := h.serving
	h.stopped, h.meUntil, h.serving = true, time.Time{}, false
	h.mu.Unlock()
	if !me {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	if err := h.o.Store.ReleaseFleetHome(ctx, h.o.Replica); err != nil {
		h.log.Warn("releasing the fleet home's lease; another replica takes it when it expires", "err", err)
	}
	h.o.Fleet.SetAway(fmt.Sprintf("the fleet's home replica %s stopped", h.o.Replica))
	h.log.Info("fleet home released", "replica", h.o.Replica)
}

// unreachable logs that the home does not answer: at Warn once per home,
// at Debug after, so an outage of the home costs one line per replica.
func (h *Home) unreachable(cur holder, msg string, args ...any) {
	args = append([]any{"home", cur.replica, "address", cur.address}, args...)
	if p := h.warned.Swap(&cur.replica); p == nil || *p != cur.replica {
		h.log.Warn(msg, args...)
		return
	}
	h.log.Debug(msg, args...)
}

// isMe reports whether this replica is the home at now (under h.mu).
func (h *Home) isMe(now time.Time) bool { return now.Before(h.meUntil) }

// renew takes part in choosing the home once.
func (h *Home) renew(ctx context.Context) {
	start := time.Now()
	home, addr, err := h.o.Store.TakeFleetHome(ctx, h.o.Replica, h.o.Advertise, h.o.TTL)
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return
	}
	prev := h.cur
	if err == nil {
		h.cur = holder{home, addr}
		if home == h.o.Replica {
			// The lease runs from the database's now, after start: a
			// second's margin covers clocks that run at other rates.
			h.meUntil = start.Add(h.o.TTL - min(time.Second, h.o.TTL/4))
		} else {
			h.meUntil = time.Time{}
		}
	}
	now := h.isMe(time.Now())
	cur, was := h.cur, h.serving
	if cur != prev {
		close(h.changed)
		h.changed = make(chan struct{})
	}
	if now && !was {
		// Before any attempt is routed here (state waits for h.mu), the
		// fleet takes attempts again.
		h.o.Fleet.SetAway("")
	}
	h.serving = now
	h.mu.Unlock()
	switch {
	case err != nil && ctx.Err() == nil:
		h.log.Warn("taking the fleet home's lease", "err", err)
	case cur != prev && !now:
		h.log.Info("fleet home", "home", orNone(cur.replica), "address", cur.address)
	}
	if now && !was {
		h.log.Info("this replica is the fleet's home: agents are served here", "replica", h.o.Replica, "address", h.o.Advertise)
	}
	if was && !now {
		// The lease moved, or could not be renewed in time (checked at
		// every renewal, whether the database answers or not).
		why := fmt.Sprintf("the fleet's home moved from replica %s to %s", h.o.Replica, orNone(cur.replica))
		if err != nil {
			why = fmt.Sprintf("the fleet's home replica %s could not renew its lease (%v)", h.o.Replica, err)
		}
		h.log.Warn("this replica is no longer the fleet's home: its attempts run again through the new home", "why", why)
		h.o.Fleet.SetAway(why)
	}
}

func orNone(s string) string {
	if s == "" {
		return "none yet"
	}
	return s
}

// state is the home as last seen, and whether it is this replica.
func (h *Home) state() (holder, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cur, h.isMe(time.Now())
}

// IsHome reports whether this replica is the fleet's home now.
func (h *Home) IsHome() bool {
	_, me := h.state()
	return me
}

// Pool implements engine.RemoteRunner (the same on every replica: server.yaml).
func (h *Home) Pool(tenant string, req *api.RunRequest) string { return h.o.Fleet.Pool(tenant, req) }

// RunAttempt implements engine.RemoteRunner: on the home, its own fleet
// runs the attempt; elsewhere the home does (delegate.go). While no home
// answers, the attempt waits, its member saying why.
func (h *Home) RunAttempt(ctx context.Context, a engine.RemoteAttempt, record func([]api.Event)) engine.RemoteOutcome {
	key := pendingKey{a.Tenant, a.RunID, a.Member}
	defer func() {
		h.mu.Lock()
		delete(h.pending, key)
		h.mu.Unlock()
	}()
	backoff := retryMin
	for {
		cur, me := h.state()
		if me {
			return h.o.Fleet.RunAttempt(ctx, a, record)
		}
		if cur.address != "" {
			if out, done := h.delegate(ctx, cur, a, record); done {
				return out
			}
		}
		h.mu.Lock()
		if _, ok := h.pending[key]; !ok {
			h.pending[key] = time.Now()
		}
		h.mu.Unlock()
		t := time.NewTimer(rand.N(backoff) + time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return engine.RemoteOutcome{Status: api.StatusCancelled, Why: "cancelled before an agent took it"}
		case <-t.C:
		}
		backoff = min(2*backoff, retryMax)
	}
}

// Connect, Disconnect, Poll, Heartbeat, Report and Result are the agent
// API of this replica's fleet: reached only on the home (elsewhere
// ForwardAgent sends the request to the home first).

// Connect implements server.Fleet.
func (h *Home) Connect(p config.Principal, hello api.AgentHello) (api.AgentSession, error) {
	return h.o.Fleet.Connect(p, hello)
}

// Disconnect implements server.Fleet.
func (h *Home) Disconnect(p config.Principal, agentID string) error {
	return h.o.Fleet.Disconnect(p, agentID)
}

// Poll implements server.Fleet.
func (h *Home) Poll(ctx context.Context, p config.Principal, poll api.AgentPoll) (api.AgentWork, error) {
	return h.o.Fleet.Poll(ctx, p, poll)
}

// Heartbeat implements server.Fleet.
func (h *Home) Heartbeat(p config.Principal, hb api.AgentHeartbeat) (api.AgentWork, error) {
	return h.o.Fleet.Heartbeat(p, hb)
}

// Report implements server.Fleet.
func (h *Home) Report(p config.Principal, leaseID string, rep api.LeaseReport) error {
	return h.o.Fleet.Report(p, leaseID, rep)
}

// Result implements server.Fleet.
func (h *Home) Result(p config.Principal, leaseID string, res api.LeaseResult) error {
	return h.o.Fleet.Result(p, leaseID, res)
}

// SetAudit implements server.Fleet: the audit log of the replica that is
// the home records its agents.
func (h *Home) SetAudit(a fleet.Audit) { h.o.Fleet.SetAudit(a) }

// Agents implements server.Fleet: the home's view of the tenant's agents,
// or ErrViewUnknown while this replica cannot read it.
func (h *Home) Agents(tenant, pool string) ([]api.Agent, error) {
	if h.IsHome() {
		return h.o.Fleet.List(tenant, pool), nil
	}
	s, err := h.snapshot()
	if err != nil {
		return nil, err
	}
	return s.List(tenant, pool), nil
}

// MemberWaits implements server.Fleet: the home's reasons, and the
// attempts of this replica's runs that wait for a home to answer.
func (h *Home) MemberWaits(tenant, runID string) map[string]api.WaitReason {
	var out map[string]api.WaitReason
	if h.IsHome() {
		out = h.o.Fleet.MemberWaits(tenant, runID)
	} else {
		s, _ := h.snapshot() // unknown: only this replica's own waits below
		out = s.MemberWaits(tenant, runID)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, since := range h.pending {
		if k.tenant != tenant || k.run != runID {
			continue
		}
		if out == nil {
			out = map[string]api.WaitReason{}
		}
		if _, ok := out[k.member]; !ok {
			out[k.member] = api.WaitReason{Kind: "agent", Since: since.UTC(),
				Message: fmt.Sprintf("waiting for the fleet's home replica (%s) to answer; agents are served there", orNone(h.cur.replica))}
		}
	}
	return out
}

// Stats implements server.Fleet: the home's figures.
func (h *Home) Stats() []fleet.PoolStats {
	if h.IsHome() {
		return h.o.Fleet.Stats()
	}
	s, _ := h.snapshot() // unknown: no figures rather than old ones
	return s.Stats
}
