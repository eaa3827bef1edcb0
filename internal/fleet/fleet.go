// Package fleet dispatches the member attempts of pool runs to endpoint
// agents (docs/agents.md): a FIFO of pending attempts per pool, the agents
// connected to each pool (idle, busy, draining, lost), and leases with
// fencing.
//
// One lease is one attempt of one member, held by one agent. Every lease has
// an epoch, monotonic across restarts (EpochStore); every event, result and
// heartbeat must name it, and a write under a lease that was given up,
// expired or re-granted is refused with ErrFenced. A lease not renewed for
// LeaseTTL expires: the engine runs the member again as a new attempt, not
// a retry (engine.RemoteOutcome.Lost), at the front of its pool's queue.
//
// A poll that finds no work is held until work arrives or PollWait passes:
// an enqueued attempt wakes one held poll of its pool, never more polls than
// there are attempts. A cancelled attempt's lease is put in its holder's
// stop list and its held poll is woken at once.
package fleet

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/server/config"
)

// Timings of the protocol (docs/agents.md). The targets: a lost
// agent's member is re-dispatched within 20 s (a 15 s TTL plus a sweep of at
// most a second), and an idle agent costs at most one request per 30 s.
const (
	DefaultHeartbeatEvery = 5 * time.Second
	DefaultLeaseTTL       = 15 * time.Second
	DefaultPollWait       = 30 * time.Second
	// DefaultStopGrace is how long a cancelled attempt waits for its agent's
	// result before the engine ends it anyway; it fits in
	// engine.CancelWithin with room for the bookkeeping.
	DefaultStopGrace = 1500 * time.Millisecond
	// DefaultSweepEvery is how often expired leases and lost agents are looked for.
	DefaultSweepEvery = time.Second
	// DefaultForgetLost is how long a lost agent stays in the fleet view.
	DefaultForgetLost = time.Hour
	// MaxConcurrency bounds an agent's declared concurrency.
	MaxConcurrency = 256
)

// Errors of the agent API, typed by meaning (the server maps them to statuses).
var (
	// ErrFenced: the lease was given up, expired or re-granted; nothing was stored.
	ErrFenced = errors.New("lease fenced")
	// ErrUnknownAgent: the agent's session is not known (the server
	// restarted, or the agent was forgotten after being lost).
	ErrUnknownAgent = errors.New("unknown agent session")
	// ErrStopped: the fleet is shutting down.
	ErrStopped = errors.New("the fleet is stopping")
)

// BadInputError is a malformed request body: nothing of it was stored.
type BadInputError struct{ Problems []string }

func (e *BadInputError) Error() string { return strings.Join(e.Problems, "; ") }

// Audit records agent connects, disconnects and lost leases (zof serve's audit log).
type Audit func(tenant, pool, agent, action, result string)

// Options configure a Fleet. Config is required.
type Options struct {
	Config *config.Config
	// Epochs keeps the epoch high-water mark (default: in memory).
	Epochs EpochStore
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Zero values take the Default* constants.
	HeartbeatEvery time.Duration
	LeaseTTL       time.Duration
	PollWait       time.Duration
	StopGrace      time.Duration
	SweepEvery     time.Duration
	ForgetLost     time.Duration
	Logger         *slog.Logger
	Audit          Audit
	// NewID makes agent and lease ids (default random).
	NewID func(prefix string) string
}

type poolKey struct{ tenant, pool string }

// Fleet is the dispatcher. All methods are safe for concurrent use.
type Fleet struct {
	o Options

	mu      sync.Mutex
	pools   map[poolKey]*pool
	agents  map[string]*agent
	leases  map[string]*lease
	front   map[string]bool // "run\x00member": a lost attempt's next one goes first
	epoch   int64           // last epoch granted
	epochHi int64           // highest epoch reserved
	stopped bool
	away    string          // SetAway: why attempts are not taken here ("": they are)
	expired map[poolKey]int // lease expiries, for metrics

	auditFn atomic.Pointer[Audit] // SetAudit; else Options.Audit
}

// SetAudit sends agent connects, disconnects and lost leases to a (the
// server's audit log, which exists only once the fleet is built).
func (f *Fleet) SetAudit(a Audit) { f.auditFn.Store(&a) }

func (f *Fleet) audit(tenant, pool, agent, action, result string) {
	if a := f.auditFn.Load(); a != nil {
		(*a)(tenant, pool, agent, action, result)
		return
	}
	f.o.Audit(tenant, pool, agent, action, result)
}

var _ engine.RemoteRunner = (*Fleet)(nil)

type pool struct {
	key      poolKey
	cfg      *config.Pool
	queue    []*attempt
	agents   map[string]*agent
	waiters  []*agent // agents with a held poll, oldest first
	live     int      // leases granted and not ended
	lastSeen time.Time
	stuck    map[string]bool // runs logged as stuck
}

type agent struct {
	id, name, version string
	tenant, pool      string
	labels            map[string]string
	concurrency       int
	connectedAt       time.Time
	lastBeat          time.Time
	draining          bool
	lost              bool
	leases            map[string]*lease
	stops             []api.LeaseStop
	wake              chan struct{} // buffered 1: releases a held poll
	waiting           bool
	// free is how many leases the held poll would take now (its free, at
	// most the agent's room); a held poll with none is never woken for work.
	free int
	// answer: the held poll returns when woken even without work (a
	// lease of the agent ended: it polls again with its new free).
	answer bool
}

type attempt struct {
	a        engine.RemoteAttempt
	record   func([]api.Event)
	done     chan engine.RemoteOutcome // buffered 1
	queuedAt time.Time
	lease    *lease // nil while queued
	p        *pool
}

// lease is guarded by Fleet.mu except ended and recording, which mu (the
// lease's own) guards: a write is recorded under it, and the lease ends
// under it, so nothing is recorded for an attempt after its outcome.
type lease struct {
	id      string
	epoch   int64
	att     *attempt
	holder  *agent
	since   time.Time
	expires time.Time

	mu    sync.Mutex
	ended bool
}

// New returns a fleet; call Run for its expiry sweeps.
func New(o Options) (*Fleet, error) {
	if o.Config == nil {
		return nil, errors.New("fleet: Options.Config is required")
	}
	if o.Epochs == nil {
		o.Epochs = &MemEpochs{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.HeartbeatEvery, DefaultHeartbeatEvery)
	def(&o.LeaseTTL, DefaultLeaseTTL)
	def(&o.PollWait, DefaultPollWait)
	def(&o.StopGrace, DefaultStopGrace)
	def(&o.SweepEvery, DefaultSweepEvery)
	def(&o.ForgetLost, DefaultForgetLost)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Audit == nil {
		o.Audit = func(string, string, string, string, string) {}
	}
	if o.NewID == nil {
		o.NewID = newID
	}
	f := &Fleet{o: o, pools: map[poolKey]*pool{}, agents: map[string]*agent{}, leases: map[string]*lease{},
		front: map[string]bool{}, expired: map[poolKey]int{}}
	for _, p := range o.Config.AllPools() {
		k := poolKey{p.Tenant, p.Name}
		f.pools[k] = &pool{key: k, cfg: p, agents: map[string]*agent{}, stuck: map[string]bool{}}
	}
	return f, nil
}

func newID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return prefix + strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
}

// Run sweeps expired leases and lost agents until ctx ends, then ends
// every attempt as lost (the engine leaves them for its next start).
func (f *Fleet) Run(ctx context.Context) {
	t := time.NewTicker(f.o.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			f.mu.Lock()
			f.stopped = true
			for _, a := range f.agents {
				wakeAgent(a)
			}
			f.mu.Unlock()
			return
		case <-t.C:
			f.Sweep()
		}
	}
}

// PoolOf is the pool of tenant t executing req (docs/agents.md, Pools): the
// first pool in name order whose targets match the run's primary target, the
// environment URL (without one, the first http step's absolute URL); nil
// when none does.
func PoolOf(t *config.Tenant, req *api.RunRequest) *config.Pool {
	if t == nil || len(t.Pools) == 0 {
		return nil
	}
	u, err := url.Parse(PrimaryTarget(req))
	if err != nil || u.Host == "" {
		return nil
	}
	return t.PoolFor(u)
}

// PrimaryTarget is the URL that decides a run's pool: the environment URL,
// or the first http step URL that is absolute.
func PrimaryTarget(req *api.RunRequest) string {
	if req.Environment.URL != "" {
		return req.Environment.URL
	}
	for _, c := range req.Cases {
		for _, s := range c.Steps {
			if s.HTTP == nil {
				continue
			}
			for _, v := range []string{s.HTTP.URL, s.HTTP.Path} {
				if strings.HasPrefix(v, "http://") || strings.HasPrefix(v, "https://") {
					return v
				}
			}
		}
	}
	return ""
}

// Pool implements engine.RemoteRunner.
func (f *Fleet) Pool(tenant string, req *api.RunRequest) string {
	if p := PoolOf(f.o.Config.Tenants[tenant], req); p != nil {
		return p.Name
	}
	return ""
}

// RunAttempt implements engine.RemoteRunner: the attempt waits in its
// pool's queue for an agent, is leased, and ends with the agent's result,
// its lease's expiry (Lost) or ctx (the agent is told to stop).
func (f *Fleet) RunAttempt(ctx context.Context, a engine.RemoteAttempt, record func([]api.Event)) engine.RemoteOutcome {
	att := &attempt{a: a, record: record, done: make(chan engine.RemoteOutcome, 1)}
	f.mu.Lock()
	p := f.pools[poolKey{a.Tenant, a.Pool}]
	if away := f.away; away != "" && p != nil && !f.stopped {
		f.mu.Unlock()
		return engine.RemoteOutcome{Lost: away}
	}
	if p == nil || f.stopped {
		f.mu.Unlock()
		why := fmt.Sprintf("pool %s of tenant %s is not configured on this server; add it to server.yaml or change the run's targets", a.Pool, a.Tenant)
		if f.stopped {
			why = "the server is stopping"
		}
		return engine.RemoteOutcome{Status: api.StatusCancelled, Why: why}
	}
	att.p, att.queuedAt = p, f.o.Now()
	key := a.RunID + "\x00" + a.Member
	if f.front[key] {
		delete(f.front, key)
		p.queue = slices.Insert(p.queue, 0, att)
	} else {
		p.queue = append(p.queue, att)
	}
	f.wakeWaiters(p)
	f.mu.Unlock()

	select {
	case out := <-att.done:
		return out
	case <-ctx.Done():
	}
	// Cancelled: a queued attempt simply leaves; a leased one is stopped on
	// its agent, whose result is awaited for StopGrace.
	f.mu.Lock()
	l := att.lease
	if l == nil {
		if i := slices.Index(p.queue, att); i >= 0 {
			p.queue = slices.Delete(p.queue, i, i+1)
		}
		f.mu.Unlock()
		select {
		case out := <-att.done: // granted and ended meanwhile
			return out
		default:
		}
		return engine.RemoteOutcome{Status: api.StatusCancelled, Why: "cancelled before an agent took it"}
	}
	if h := l.holder; h != nil {
		h.stops = append(h.stops, api.LeaseStop{ID: l.id, Reason: "cancelled: the run was cancelled"})
		wakeAgent(h)
	}
	f.mu.Unlock()
	grace := time.NewTimer(f.o.StopGrace)
	defer grace.Stop()
	select {
	case out := <-att.done:
		return out
	case <-grace.C:
	}
	if f.endLease(l, engine.RemoteOutcome{Status: api.StatusCancelled, Why: "cancelled; the agent did not confirm the stop within " + f.o.StopGrace.String()}) {
		f.release(l)
	}
	return <-att.done
}

// endLease ends a live lease with out (under the lease's lock, so no write
// of it is recorded after); false when it had ended already.
func (f *Fleet) endLease(l *lease, out engine.RemoteOutcome) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return false
	}
	l.ended = true
	l.att.done <- out
	return true
}

// release forgets an ended lease: its pool's capacity is free again.
func (f *Fleet) release(l *lease) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.releaseLocked(l)
}

func (f *Fleet) releaseLocked(l *lease) {
	if _, ok := f.leases[l.id]; !ok {
		return
	}
	delete(f.leases, l.id)
	p := l.att.p
	p.live--
	if h := l.holder; h != nil {
		delete(h.leases, l.id)
	}
	// Capacity came free: a held poll may now take what waited.
	f.wakeWaiters(p)
}

// wakeWaiters releases as many held polls of p as there are attempts an
// agent could take now (under f.mu).
func (f *Fleet) wakeWaiters(p *pool) {
	n := len(p.queue)
	if c := p.cfg.MaxConcurrentMembers; c > 0 {
		n = min(n, c-p.live)
	}
	for i := 0; n > 0 && i < len(p.waiters); {
		a := p.waiters[i]
		if a.free <= 0 || a.draining || a.lost {
			i++ // it would take nothing: another agent must be woken
			continue
		}
		p.waiters = slices.Delete(p.waiters, i, i+1)
		a.waiting = false
		wakeAgent(a)
		n -= min(n, a.free)
	}
}

// unwait takes a out of pl's held polls (under f.mu).
func unwait(pl *pool, a *agent) {
	if !a.waiting {
		return
	}
	a.waiting = false
	if i := slices.Index(pl.waiters, a); i >= 0 {
		pl.waiters = slices.Delete(pl.waiters, i, i+1)
	}
}

func wakeAgent(a *agent) {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Connect registers an agent of principal's pool.
func (f *Fleet) Connect(p config.Principal, h api.AgentHello) (api.AgentSession, error) {
	var probs []string
	if strings.TrimSpace(h.Name) == "" || len(h.Name) > 128 {
		probs = append(probs, "name must be 1 to 128 characters (zof agent --name)")
	}
	if h.Concurrency < 1 || h.Concurrency > MaxConcurrency {
		probs = append(probs, fmt.Sprintf("concurrency %d must be from 1 to %d (zof agent --concurrency)", h.Concurrency, MaxConcurrency))
	}
	if len(h.Labels) > 64 {
		probs = append(probs, "at most 64 labels")
	}
	for k, v := range h.Labels {
		if k == "" || len(k) > 128 || len(v) > 256 {
			probs = append(probs, fmt.Sprintf("label %.40q: keys are 1 to 128 characters, values at most 256", k))
		}
	}
	if len(h.Version) > 128 {
		probs = append(probs, "version is at most 128 characters")
	}
	if len(probs) > 0 {
		return api.AgentSession{}, &BadInputError{probs}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	pl := f.pools[poolKey{p.Tenant, p.Pool}]
	if pl == nil || f.stopped {
		return api.AgentSession{}, ErrStopped
	}
	now := f.o.Now()
	a := &agent{id: f.o.NewID("agt_"), name: h.Name, version: h.Version, tenant: p.Tenant, pool: p.Pool,
		labels: h.Labels, concurrency: h.Concurrency, connectedAt: now, lastBeat: now,
		leases: map[string]*lease{}, wake: make(chan struct{}, 1)}
	f.agents[a.id] = a
	pl.agents[a.id] = a
	pl.lastSeen = now
	f.audit(p.Tenant, p.Pool, h.Name, "agent-connect", fmt.Sprintf("agent %s connected as %s (version %s, concurrency %d)", h.Name, a.id, h.Version, h.Concurrency))
	return api.AgentSession{AgentID: a.id, Tenant: p.Tenant, Pool: p.Pool,
		HeartbeatEvery: api.Duration(f.o.HeartbeatEvery), LeaseTTL: api.Duration(f.o.LeaseTTL), PollWait: api.Duration(f.o.PollWait),
		Policy: api.AgentPolicy{Targets: pl.cfg.TargetStrings(), AllowCommands: pl.cfg.AllowCommands}}, nil
}

// Disconnect ends an agent's session; leases it still holds expire as lost.
func (f *Fleet) Disconnect(p config.Principal, agentID string) error {
	f.mu.Lock()
	a, err := f.agentOf(p, agentID)
	if err != nil {
		f.mu.Unlock()
		return err
	}
	held := make([]*lease, 0, len(a.leases))
	for _, l := range a.leases {
		held = append(held, l)
	}
	f.forgetAgent(a)
	f.mu.Unlock()
	for _, l := range held {
		f.lose(l, fmt.Sprintf("agent %s disconnected holding it", a.name))
	}
	f.audit(a.tenant, a.pool, a.name, "agent-disconnect", fmt.Sprintf("agent %s (%s) disconnected", a.name, a.id))
	return nil
}

func (f *Fleet) forgetAgent(a *agent) {
	delete(f.agents, a.id)
	if pl := f.pools[poolKey{a.tenant, a.pool}]; pl != nil {
		delete(pl.agents, a.id)
		if i := slices.Index(pl.waiters, a); i >= 0 {
			pl.waiters = slices.Delete(pl.waiters, i, i+1)
		}
	}
	wakeAgent(a)
}

// agentOf finds the principal's agent (under f.mu): an agent of another
// pool is as unknown as a missing one.
func (f *Fleet) agentOf(p config.Principal, id string) (*agent, error) {
	a := f.agents[id]
	if a == nil || a.tenant != p.Tenant || a.pool != p.Pool {
		return nil, ErrUnknownAgent
	}
	return a, nil
}

// renew records a sign of life and renews the held leases; leases the agent
// names but does not hold at that epoch are to be stopped (under f.mu).
func (f *Fleet) renew(a *agent, held []api.LeaseRef, draining bool) {
	now := f.o.Now()
	a.lastBeat = now
	if a.lost {
		a.lost = false
		f.audit(a.tenant, a.pool, a.name, "agent-reconnect", fmt.Sprintf("agent %s (%s) is heard from again", a.name, a.id))
	}
	if draining && !a.draining {
		a.draining = true
	}
	if pl := f.pools[poolKey{a.tenant, a.pool}]; pl != nil {
		pl.lastSeen = now
	}
	for _, r := range held {
		l := a.leases[r.ID]
		if l == nil || l.epoch != r.Epoch {
			if !slices.ContainsFunc(a.stops, func(s api.LeaseStop) bool { return s.ID == r.ID }) {
				a.stops = append(a.stops, api.LeaseStop{ID: r.ID, Reason: "lease-fenced: this agent no longer holds the lease (it expired or was re-granted)"})
			}
			continue
		}
		l.expires = now.Add(f.o.LeaseTTL)
	}
}

// Heartbeat renews the agent's leases; the answer lists leases to stop.
func (f *Fleet) Heartbeat(p config.Principal, hb api.AgentHeartbeat) (api.AgentWork, error) {
	if err := checkRefs(hb.Held); err != nil {
		return api.AgentWork{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a, err := f.agentOf(p, hb.AgentID)
	if err != nil {
		return api.AgentWork{}, err
	}
	f.renew(a, hb.Held, hb.Draining)
	var w api.AgentWork
	w.Stop, a.stops = a.stops, nil
	return w, nil
}

func checkRefs(refs []api.LeaseRef) error {
	if len(refs) > MaxConcurrency {
		return &BadInputError{[]string{fmt.Sprintf("held lists %d leases; an agent holds at most %d", len(refs), MaxConcurrency)}}
	}
	for _, r := range refs {
		if r.ID == "" || r.Epoch < 1 {
			return &BadInputError{[]string{"every held lease needs its id and epoch (≥ 1)"}}
		}
	}
	return nil
}

// Poll asks for up to poll.Free leases. It answers at once with stops or
// new leases, else holds until either arrives, PollWait passes or ctx ends
// (then the answer is empty).
func (f *Fleet) Poll(ctx context.Context, p config.Principal, poll api.AgentPoll) (api.AgentWork, error) {
	if err := checkRefs(poll.Held); err != nil {
		return api.AgentWork{}, err
	}
	if poll.Free < 0 || poll.Free > MaxConcurrency {
		return api.AgentWork{}, &BadInputError{[]string{fmt.Sprintf("free %d must be from 0 to %d", poll.Free, MaxConcurrency)}}
	}
	// Polls of one agent are sequential: a lease granted by an earlier
	// answer and missing from held was dropped by the agent (it came while
	// draining, or the answer was lost): it is given up at once and its
	// member runs again, not waiting for the TTL.
	f.mu.Lock()
	a, err := f.agentOf(p, poll.AgentID)
	var dropped []*lease
	if err == nil {
		for _, l := range a.leases {
			if !slices.ContainsFunc(poll.Held, func(r api.LeaseRef) bool { return r.ID == l.id && r.Epoch == l.epoch }) {
				dropped = append(dropped, l)
			}
		}
	}
	f.mu.Unlock()
	for _, l := range dropped {
		f.lose(l, fmt.Sprintf("agent %s dropped it (not in its held leases)", a.name))
	}
	timer := time.NewTimer(f.o.PollWait)
	defer timer.Stop()
	first := true
	for {
		f.mu.Lock()
		a, err := f.agentOf(p, poll.AgentID)
		if err != nil || f.stopped {
			f.mu.Unlock()
			if err == nil {
				err = ErrStopped
			}
			return api.AgentWork{}, err
		}
		if first {
			f.renew(a, poll.Held, poll.Draining)
		} else {
			a.lastBeat = f.o.Now()
		}
		w := f.take(a, poll.Free)
		pl := f.pools[poolKey{a.tenant, a.pool}]
		if len(w.Leases) > 0 || len(w.Stop) > 0 || (a.answer && !first) {
			a.answer = false
			unwait(pl, a)
			starts := startsOf(f, w)
			f.mu.Unlock()
			runStarts(starts)
			return w, nil
		}
		a.answer = false
		if !a.waiting {
			a.waiting = true
			pl.waiters = append(pl.waiters, a)
		}
		a.free = min(poll.Free, a.concurrency-len(a.leases))
		// Drain a stale wake-up so the wait below sleeps until a new one.
		select {
		case <-a.wake:
		default:
		}
		f.mu.Unlock()
		first = false
		select {
		case <-a.wake:
			continue
		case <-timer.C:
		case <-ctx.Done():
		}
		f.mu.Lock()
		unwait(pl, a)
		if ctx.Err() != nil {
			// The agent went away (or the server stops): a lease granted
			// now would only wait for its TTL. Stops stay for its next poll.
			f.mu.Unlock()
			return api.AgentWork{}, nil
		}
		// Work that woke nobody else may have arrived with the deadline.
		w = f.take(a, poll.Free)
		starts := startsOf(f, w)
		f.mu.Unlock()
		runStarts(starts)
		return w, nil
	}
}

// take hands an agent its pending stops and up to free new leases (under f.mu).
// startsOf lists the Started hooks of the attempts leased in w. Caller
// holds f.mu.
func startsOf(f *Fleet, w api.AgentWork) []func() {
	var out []func()
	for _, gl := range w.Leases {
		if l := f.leases[gl.ID]; l != nil && l.att.a.Started != nil {
			out = append(out, l.att.a.Started)
		}
	}
	return out
}

// runStarts tells the engine its attempts were taken (the member's running
// status is recorded then), before the agent hears of them; outside f.mu,
// since it commits to the store.
func runStarts(starts []func()) {
	for _, s := range starts {
		s()
	}
}

func (f *Fleet) take(a *agent, free int) api.AgentWork {
	var w api.AgentWork
	w.Stop, a.stops = a.stops, nil
	pl := f.pools[poolKey{a.tenant, a.pool}]
	n := min(free, a.concurrency-len(a.leases))
	if a.draining || a.lost {
		n = 0
	}
	if c := pl.cfg.MaxConcurrentMembers; c > 0 {
		n = min(n, c-pl.live)
	}
	now := f.o.Now()
	for ; n > 0 && len(pl.queue) > 0; n-- {
		att := pl.queue[0]
		pl.queue = pl.queue[1:]
		epoch, err := f.nextEpoch()
		if err != nil {
			// Without a durable epoch no lease may be granted: fencing would break.
			pl.queue = slices.Insert(pl.queue, 0, att)
			f.o.Logger.Error("no lease granted: the epoch mark could not be stored", "err", err)
			break
		}
		l := &lease{id: f.o.NewID("lse_"), epoch: epoch, att: att, holder: a, since: now, expires: now.Add(f.o.LeaseTTL)}
		att.lease = l
		f.leases[l.id] = l
		a.leases[l.id] = l
		pl.live++
		a2 := att.a
		w.Leases = append(w.Leases, api.Lease{ID: l.id, Epoch: epoch, RunID: a2.RunID, Member: a2.Member, Attempt: a2.Attempt,
			Case: *a2.Case, Variant: a2.Variant, BaseURL: a2.BaseURL, Headers: a2.Headers, Secrets: a2.Secrets, ExpiresIn: api.Duration(f.o.LeaseTTL)})
	}
	return w
}

// nextEpoch is the next lease epoch, reserving a block when the last is used (under f.mu).
func (f *Fleet) nextEpoch() (int64, error) {
	if f.epoch >= f.epochHi {
		var hi int64
		prev, err := f.o.Epochs.Reserve(func(prev int64) int64 {
			hi = max(prev, f.epoch) + epochBlock
			return hi
		})
		if err != nil {
			return 0, err
		}
		f.epoch, f.epochHi = max(prev, f.epoch), hi
	}
	f.epoch++
	return f.epoch, nil
}

// leaseFor finds a live lease of the principal's pool at epoch.
func (f *Fleet) leaseFor(p config.Principal, id string, epoch int64) (*lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.leases[id]
	if l == nil || l.epoch != epoch || l.att.a.Tenant != p.Tenant || l.att.a.Pool != p.Pool {
		return nil, ErrFenced
	}
	return l, nil
}

// Report records step events under a lease. A write of a lease that is not
// live at that epoch is ErrFenced; a malformed one is a *BadInputError; in
// both cases nothing is recorded.
func (f *Fleet) Report(p config.Principal, leaseID string, rep api.LeaseReport) error {
	l, err := f.leaseFor(p, leaseID, rep.Epoch)
	if err != nil {
		return err
	}
	evs, err := checkEvents(l.att.a, rep.Events)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return ErrFenced
	}
	if len(evs) > 0 {
		l.att.record(evs)
	}
	return nil
}

// Result ends a lease with the agent's outcome (passed, failed or cancelled).
func (f *Fleet) Result(p config.Principal, leaseID string, res api.LeaseResult) error {
	l, err := f.leaseFor(p, leaseID, res.Epoch)
	if err != nil {
		return err
	}
	switch res.Status {
	case api.StatusPassed, api.StatusFailed, api.StatusCancelled:
	default:
		return &BadInputError{[]string{fmt.Sprintf("status %q: a result is passed, failed or cancelled", res.Status)}}
	}
	if len(res.Reason) > MaxReason {
		return &BadInputError{[]string{fmt.Sprintf("reason is %d bytes; at most %d", len(res.Reason), MaxReason)}}
	}
	evs, err := checkEvents(l.att.a, res.Events)
	if err != nil {
		return err
	}
	evidence, err := checkEvidence(l.att.a, res.Evidence)
	if err != nil {
		return err
	}
	if !f.endLease(l, engine.RemoteOutcome{Status: res.Status, Why: res.Reason, Events: evs, Evidence: evidence}) {
		return ErrFenced
	}
	f.mu.Lock()
	f.releaseLocked(l)
	if h := l.holder; h != nil && h.waiting {
		// The agent's held poll answers now, so it polls again with its new free.
		h.answer = true
		wakeAgent(h)
	}
	f.mu.Unlock()
	return nil
}

// lose ends a live lease as lost: the engine runs its member again, first
// in its pool's queue.
func (f *Fleet) lose(l *lease, why string) {
	if !f.endLease(l, engine.RemoteOutcome{Lost: why}) {
		return
	}
	f.mu.Lock()
	a := l.att.a
	f.front[a.RunID+"\x00"+a.Member] = true
	f.expired[poolKey{a.Tenant, a.Pool}]++
	f.releaseLocked(l)
	f.mu.Unlock()
	holder := "?"
	if l.holder != nil {
		holder = l.holder.name
	}
	f.audit(a.Tenant, a.Pool, holder, "lease-lost", fmt.Sprintf("run %s member %s attempt %d (lease %s epoch %d): %s", a.RunID, a.Member, a.Attempt, l.id, l.epoch, why))
	f.o.Logger.Warn("lease lost", "tenant", a.Tenant, "pool", a.Pool, "agent", holder, "run", a.RunID, "member", a.Member, "attempt", a.Attempt, "why", why)
}

// Sweep expires leases past their TTL, marks agents silent for a TTL lost
// (forgetting those lost for ForgetLost) and logs runs stuck waiting for an
// agent. Run calls it every SweepEvery; tests call it with a fake clock.
func (f *Fleet) Sweep() {
	now := f.o.Now()
	type loss struct {
		l   *lease
		why string
	}
	var losses []loss
	f.mu.Lock()
	for _, l := range f.leases {
		if now.After(l.expires) {
			name := "?"
			if l.holder != nil {
				name = l.holder.name
			}
			losses = append(losses, loss{l, fmt.Sprintf("agent %s lost (no heartbeat for %s)", name, now.Sub(l.expires.Add(-f.o.LeaseTTL)).Round(time.Second))})
		}
	}
	for _, a := range f.agents {
		silent := now.Sub(a.lastBeat)
		if a.waiting {
			continue // a held poll is a sign of life
		}
		switch {
		case silent > f.o.ForgetLost:
			f.forgetAgent(a)
		case silent > f.o.LeaseTTL && !a.lost:
			a.lost = true
			f.audit(a.tenant, a.pool, a.name, "agent-lost", fmt.Sprintf("agent %s (%s) lost: no request for %s", a.name, a.id, silent.Round(time.Second)))
		}
	}
	for _, pl := range f.pools {
		stuck := map[string]bool{}
		if f.online(pl) == 0 {
			for _, att := range pl.queue {
				if now.Sub(att.queuedAt) <= pl.cfg.StuckAfter || stuck[att.a.RunID] {
					continue
				}
				stuck[att.a.RunID] = true
				if !pl.stuck[att.a.RunID] {
					f.o.Logger.Warn("run stuck: waiting for an agent of its pool, none online", "tenant", pl.key.tenant, "pool", pl.key.pool,
						"run", att.a.RunID, "waiting", now.Sub(att.queuedAt).Round(time.Second), "stuck_after", pl.cfg.StuckAfter)
				}
			}
		}
		pl.stuck = stuck
	}
	f.mu.Unlock()
	slices.SortFunc(losses, func(a, b loss) int { return int(a.l.epoch - b.l.epoch) })
	for _, x := range losses {
		f.lose(x.l, x.why)
	}
}

// online counts a pool's agents that are not lost (under f.mu).
func (f *Fleet) online(pl *pool) int {
	n := 0
	for _, a := range pl.agents {
		if !a.lost {
			n++
		}
	}
	return n
}
