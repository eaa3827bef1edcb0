// More than one engine on one store: claims, leases, takeover and wake-ups.

package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// Cluster is an optional Store capability: a store several engines (the
// replicas of `zof serve` on one PostgreSQL database) share. An engine whose
// store has it decides nothing about starting runs from memory: each run it
// executes is claimed in the store, in one transaction that keeps tenant
// limits, exclusive environments and FIFO order exact across replicas, and
// is held under a lease the engine renews. A run whose lease expired (its
// replica died) is taken over by another replica, which resumes it under the
// restart rule (package doc). Every Append of a held run names its lease and
// is refused with ErrLeaseLost once another lease holds it (fencing). One
// replica at a time (the leader, under a lease of its own) writes the
// waiting runs' queue positions, blocks runs after block_after and reports
// stuck runs. docs/design-postgres.md describes the tables and statements.
type Cluster interface {
	// Claim takes, under lease for ttl, the oldest waiting (initial or
	// queued) run no lease holds, of the tenant whose oldest waiting run is
	// oldest among tenants with a free slot (fewer than limit(tenant) held
	// runs; 0: unlimited) and whose exclusive environment, if any, no held
	// run of the same tenant and project uses. A run counts as held from its
	// claim until its terminal event. nil: nothing may start now.
	Claim(ctx context.Context, lease string, ttl time.Duration, limit func(tenant string) int) (*Claimed, error)
	// TakeOver takes, under lease, one unfinished held run whose lease
	// expired (its replica stopped renewing it). nil: none.
	TakeOver(ctx context.Context, lease string, ttl time.Duration) (*Claimed, error)
	// Renew extends the given leases by ttl and returns those still held,
	// each with the cancel requested for its run ("" when none).
	Renew(ctx context.Context, leases []string, ttl time.Duration) (map[string]string, error)
	// Release gives leases up at once, so another replica may take their
	// runs over without waiting for them to expire (a clean stop). A
	// released run that had not started yet is waiting again.
	Release(ctx context.Context, leases []string) error
	// RequestCancel records a cancel for a held run and wakes its holder. It
	// returns false when the run is not held (waiting, or finished): the
	// caller cancels a waiting run itself.
	RequestCancel(ctx context.Context, tenant, id, reason string) (bool, error)
	// Lead takes or renews the leader lease for owner; it reports whether
	// owner is the leader until ttl from now.
	Lead(ctx context.Context, owner string, ttl time.Duration) (bool, error)
	// Queue is what the leader needs for its pass: the waiting runs no lease
	// holds, oldest first; held runs per tenant; the exclusive environments
	// held runs use.
	Queue(ctx context.Context) (*QueueState, error)
	// Group lists the unfinished runs of a tenant's concurrency group created
	// before order (what a superseding run cancels).
	Group(ctx context.Context, tenant, group string, before int64) ([]string, error)
	// Listen calls fn for every Note until ctx ends or the connection fails
	// (then it returns the error; the caller listens again).
	Listen(ctx context.Context, fn func(Note)) error
}

// Claimed is a run claimed under a lease.
type Claimed struct {
	Lease  string
	Record *RunRecord
	// CancelReason is the cancel requested for the run ("" when none).
	CancelReason string
}

// QueueState is Cluster.Queue's answer.
type QueueState struct {
	Waiting   []QueuedRun
	Held      map[string]int // tenant → held runs
	Exclusive []HeldEnv
}

// QueuedRun is a waiting run as Queue lists it.
type QueuedRun struct {
	ID      string
	Tenant  string
	Order   int64
	LastSeq int64
}

// HeldEnv is an exclusive environment a held run uses.
type HeldEnv struct {
	Tenant, Project, Environment, RunID string
}

// NoteKind says what a Note is about.
type NoteKind int

const (
	// NoteEvents: events were appended to run RunID.
	NoteEvents NoteKind = iota + 1
	// NoteQueue: a run was created or a held run ended: claims may succeed.
	NoteQueue
	// NoteCancel: a cancel was requested for run RunID.
	NoteCancel
)

// Note is a wake-up a Cluster store delivers to every replica.
type Note struct {
	Kind  NoteKind
	RunID string
}

// ErrLeaseLost: an append to a run held under another lease (Cluster).
var ErrLeaseLost = errors.New("the run is held by another replica (its lease was lost)")

const (
	// LeaseTTL is how long a claimed run's lease lasts without renewal; a
	// dead replica's runs are taken over within LeaseTTL + ClusterPoll
	// (docs/serve.md promises 20 s).
	LeaseTTL = 15 * time.Second
	// LeaderTTL is the leader lease: another replica leads within LeaderTTL
	// + ClusterPoll of the leader's death (docs/serve.md promises 15 s).
	LeaderTTL = 10 * time.Second
	// ClusterPoll is the slow pass that backs up the store's notifications
	// (a missed one costs at most this).
	ClusterPoll = time.Second
	// listenRetry is the pause before listening again after a failure.
	listenRetry = time.Second
	// cancelAttempts bounds Cancel's retries of a waiting run that another
	// replica changes meanwhile.
	cancelAttempts = 5
)

// clusterState is the engine's part of a cluster (nil without one).
type clusterState struct {
	cl      Cluster
	replica string

	mu    sync.Mutex
	seq   uint64
	watch map[string]map[chan struct{}]struct{} // run id → pumps waiting for its events
	// renewNow asks the lease loop for a renewal now (a cancel was requested).
	renewNow chan struct{}
	leader   bool
	held     map[string]int // leader: held runs per tenant (Stuck)
	holders  map[exKey]string
}

func newClusterState(cl Cluster, replica string) *clusterState {
	if replica == "" {
		replica = defaultReplica()
	}
	return &clusterState{cl: cl, replica: replica, watch: map[string]map[chan struct{}]struct{}{}, renewNow: make(chan struct{}, 1)}
}

// defaultReplica names this process: host, pid and a random part, so a
// restarted process never reuses a predecessor's leases.
func defaultReplica() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}

// newLease is a token unique to one claim: the replica and a counter.
func (c *clusterState) newLease() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	return c.replica + "#" + strconv.FormatUint(c.seq, 10)
}

// wait registers a wake-up channel for run id's events.
func (c *clusterState) wait(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	if c.watch[id] == nil {
		c.watch[id] = map[chan struct{}]struct{}{}
	}
	c.watch[id][ch] = struct{}{}
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		delete(c.watch[id], ch)
		if len(c.watch[id]) == 0 {
			delete(c.watch, id)
		}
		c.mu.Unlock()
	}
}

func (c *clusterState) wakeRun(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ch := range c.watch[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// wakeAll wakes every waiting pump (after a missed notification: the
// listener reconnected).
func (c *clusterState) wakeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, chs := range c.watch {
		for ch := range chs {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// Replica names this engine among the replicas of its store ("" without a Cluster store).
func (e *Engine) Replica() string {
	if e.cl == nil {
		return ""
	}
	return e.cl.replica
}

// runCluster is Run on a Cluster store.
func (e *Engine) runCluster(ctx context.Context) error {
	e.resumedOnce.Do(func() { close(e.resumed) })
	var wg sync.WaitGroup
	wg.Go(func() { e.listen(ctx) })
	wg.Go(func() { e.renewLoop(ctx) })
	defer wg.Wait()
	timer := time.NewTimer(ClusterPoll)
	defer timer.Stop()
	for {
		wait := ClusterPoll
		if next := e.clusterPass(ctx); !next.IsZero() {
			wait = min(wait, max(next.Sub(e.cfg.Now()), time.Millisecond))
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			// Listed first: retiring executors leave e.active.
			leases := e.heldLeases()
			e.shutdown()
			e.releaseAll(leases)
			return nil
		case <-e.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// clusterPass claims what may start, takes over what dead replicas left and,
// when this replica leads, moves the waiting runs' queue positions. It
// returns when the next block_after expires (zero: none pending).
func (e *Engine) clusterPass(ctx context.Context) time.Time {
	cl := e.cl.cl
	for !e.isStopped() {
		c, err := cl.Claim(ctx, e.cl.newLease(), e.cfg.LeaseTTL, e.cfg.TenantLimit)
		if err != nil {
			if ctx.Err() == nil {
				e.cfg.Logger.Error("claiming runs", "err", err)
			}
			break
		}
		if c == nil {
			break
		}
		e.startClaimed(ctx, c)
	}
	for !e.isStopped() {
		c, err := cl.TakeOver(ctx, e.cl.newLease(), e.cfg.LeaseTTL)
		if err != nil {
			if ctx.Err() == nil {
				e.cfg.Logger.Error("taking over runs of stopped replicas", "err", err)
			}
			break
		}
		if c == nil {
			break
		}
		e.takeOver(ctx, c)
	}
	lead, err := cl.Lead(ctx, e.cl.replica, LeaderTTL)
	if err != nil {
		if ctx.Err() == nil {
			e.cfg.Logger.Error("taking the leader lease", "err", err)
		}
		lead = false
	}
	e.cl.mu.Lock()
	was := e.cl.leader
	e.cl.leader = lead
	e.cl.mu.Unlock()
	if lead != was {
		e.cfg.Logger.Info("leader lease", "replica", e.cl.replica, "leader", lead)
	}
	if !lead {
		e.mu.Lock()
		e.waiting = nil
		e.mu.Unlock()
		return time.Time{}
	}
	return e.leadQueue(ctx)
}

func (e *Engine) isStopped() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stopped
}

// startClaimed makes a claimed waiting run running and executes it.
func (e *Engine) startClaimed(ctx context.Context, c *Claimed) {
	rs := newRunState(c.Record)
	rs.lease = c.Lease
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		e.release(c.Lease)
		return
	}
	if err := e.start(rs); err != nil {
		e.cfg.Logger.Error("starting a claimed run", "run", rs.id, "err", err)
		e.release(c.Lease)
		return
	}
	e.active[rs.id] = rs
	e.removeWaiting(rs)
	if c.CancelReason != "" {
		_ = e.cancelLocked(rs, c.CancelReason)
	}
}

// release gives one lease up (in the background: the caller holds e.mu).
func (e *Engine) release(lease string) {
	go func() {
		if err := e.cl.cl.Release(context.Background(), []string{lease}); err != nil {
			e.cfg.Logger.Warn("releasing a lease; the run is taken over when it expires", "lease", lease, "err", err)
		}
	}()
}

// takeOver resumes a run whose lease expired or was released.
func (e *Engine) takeOver(ctx context.Context, c *Claimed) {
	rec := c.Record
	if rec.Run.Status != api.StatusRunning {
		e.startClaimed(ctx, c) // claimed, never started
		return
	}
	rs := newRunState(rec)
	rs.lease = c.Lease
	facts, err := e.readLog(ctx, rs.id)
	if err != nil {
		e.cfg.Logger.Error("taking over a run", "run", rs.id, "err", err)
		e.mu.Lock()
		e.release(c.Lease)
		e.mu.Unlock()
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		e.release(c.Lease)
		return
	}
	if old := e.active[rs.id]; old != nil {
		// This replica's own earlier lease expired (its renewals failed):
		// the old executor is fenced off and stopped; the run resumes anew.
		old.mu.Lock()
		e.leaseLost(old)
		old.mu.Unlock()
	}
	reason := c.CancelReason
	if facts.cancelRequested {
		reason = facts.cancelReason
	}
	if reason != "" {
		e.cfg.Logger.Info("finishing the cancel of a run whose replica stopped", "run", rs.id, "tenant", rs.tenant, "reason", reason)
		if err := e.commit(rs, interruptEvents(rs.snapshot(), reason)...); err != nil {
			e.cfg.Logger.Error("ending a run taken over", "run", rs.id, "err", err)
		}
		return
	}
	rs.interrupted = facts.interrupted
	e.resumeRunning(rs, "the replica executing this run stopped (its lease expired or was released); replica "+e.cl.replica+" resumes it")
}

// leaseLost stops recording for a run another replica holds now and stops
// its executor. Caller holds rs.mu.
func (e *Engine) leaseLost(rs *runState) {
	if !rs.frozen && !rs.done {
		rs.frozen = true
		rs.closeSubs(ErrStopped)
	}
	go func() {
		e.mu.Lock()
		if rs.cancel != nil {
			rs.cancel(errCancelled)
		}
		e.mu.Unlock()
		e.cfg.Logger.Warn("lost the lease of a run: another replica holds it now; this one stops executing it", "run", rs.id, "replica", e.cl.replica)
	}()
}

// renewLoop renews the leases of the runs this replica executes and acts on
// cancels requested through other replicas.
func (e *Engine) renewLoop(ctx context.Context) {
	// Three renewals per lease: one may fail without losing the run.
	t := time.NewTicker(e.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.cl.renewNow:
		}
		e.renew(ctx)
	}
}

func (e *Engine) renew(ctx context.Context) {
	e.mu.Lock()
	byLease := make(map[string]*runState, len(e.active))
	for _, rs := range e.active {
		if rs.lease != "" {
			byLease[rs.lease] = rs
		}
	}
	e.mu.Unlock()
	if len(byLease) == 0 {
		return
	}
	leases := make([]string, 0, len(byLease))
	for l := range byLease {
		leases = append(leases, l)
	}
	held, err := e.cl.cl.Renew(ctx, leases, e.cfg.LeaseTTL)
	if err != nil {
		if ctx.Err() == nil {
			// The appends are fenced: if another replica takes a run over
			// meanwhile, this one's next append is refused and it stops.
			e.cfg.Logger.Error("renewing leases", "runs", len(leases), "err", err)
		}
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for lease, rs := range byLease {
		reason, ok := held[lease]
		switch {
		case !ok:
			rs.mu.Lock()
			if !rs.done {
				e.leaseLost(rs)
			}
			rs.mu.Unlock()
		case reason != "" && rs.cancelReason == "" && e.active[rs.id] == rs:
			_ = e.cancelLocked(rs, reason)
		}
	}
}

// heldLeases lists the leases of the runs this replica executes.
func (e *Engine) heldLeases() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var leases []string
	for _, rs := range e.active {
		if rs.lease != "" {
			leases = append(leases, rs.lease)
		}
	}
	return leases
}

// releaseAll gives up the leases of the runs this replica left on stopping
// (their executors stopped, nothing more recorded), so another replica
// resumes them at once (a rolling restart).
func (e *Engine) releaseAll(leases []string) {
	if len(leases) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.cl.cl.Release(ctx, leases); err != nil {
		e.cfg.Logger.Warn("releasing leases on stop; other replicas take the runs over when they expire", "runs", len(leases), "err", err)
	}
}

// listen delivers the store's notes until ctx ends, listening again after
// a failure (and then waking every follower: a note may have been missed).
func (e *Engine) listen(ctx context.Context) {
	for ctx.Err() == nil {
		err := e.cl.cl.Listen(ctx, e.onNote)
		if ctx.Err() != nil {
			return
		}
		e.cfg.Logger.Warn("listening for changes from other replicas failed; polling until it listens again", "err", err)
		e.cl.wakeAll()
		e.kick()
		t := time.NewTimer(listenRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (e *Engine) onNote(n Note) {
	switch n.Kind {
	case NoteEvents:
		e.cl.wakeRun(n.RunID)
	case NoteQueue:
		e.kick()
	case NoteCancel:
		select {
		case e.cl.renewNow <- struct{}{}:
		default:
		}
	}
}

// leadQueue is the leader's share of a pass: the waiting runs are read from
// the store (reloading those another replica changed), then queued, given
// positions or blocked as in a one-process pass, without starting any:
// claims start runs.
func (e *Engine) leadQueue(ctx context.Context) time.Time {
	qs, err := e.cl.cl.Queue(ctx)
	if err != nil {
		if ctx.Err() == nil {
			e.cfg.Logger.Error("reading the queue", "err", err)
		}
		return time.Time{}
	}
	e.mu.Lock()
	old := make(map[string]*runState, len(e.waiting))
	for _, rs := range e.waiting {
		old[rs.id] = rs
	}
	e.mu.Unlock()
	list := make([]*runState, 0, len(qs.Waiting))
	for _, w := range qs.Waiting {
		rs := old[w.ID]
		if rs != nil {
			if _, last, _ := rs.head(); last == w.LastSeq {
				list = append(list, rs)
				continue
			}
		}
		rec, err := e.cfg.Store.GetRun(ctx, w.Tenant, w.ID)
		if err != nil {
			if !errors.Is(err, ErrNotFound) && ctx.Err() == nil {
				e.cfg.Logger.Error("reading a waiting run", "run", w.ID, "err", err)
			}
			continue
		}
		nrs := newRunState(rec)
		if rs != nil {
			nrs.exSince, nrs.exHolder, nrs.posAt = rs.exSince, rs.exHolder, rs.posAt
		}
		list = append(list, nrs)
	}
	holders := make(map[exKey]string, len(qs.Exclusive))
	for _, h := range qs.Exclusive {
		holders[exKey{h.Tenant, h.Project, h.Environment}] = h.RunID
	}
	e.cl.mu.Lock()
	e.cl.held, e.cl.holders = qs.Held, holders
	e.cl.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return time.Time{}
	}
	e.waiting = list
	free := map[string]int{}
	taken := map[exKey]bool{}
	// Every waiting run stays listed for Stuck, those a claim should start
	// too: one still there on the next check is stuck.
	defer func() { e.waiting = list }()
	return e.queuePass(func(rs *runState) (string, bool) {
		key, excl := rs.exclusiveKey()
		if excl {
			if h := holders[key]; h != "" {
				return h, false
			}
			if taken[key] {
				return "", false
			}
		}
		limit := e.cfg.TenantLimit(rs.tenant)
		if _, ok := free[rs.tenant]; !ok {
			free[rs.tenant] = limit - qs.Held[rs.tenant]
		}
		if limit > 0 && free[rs.tenant] <= 0 {
			return "", false
		}
		// A claim starts it: not counted in the queue.
		free[rs.tenant]--
		if excl {
			taken[key] = true
		}
		return "", true
	})
}

// cancelStored cancels a run this engine does not execute, on a Cluster
// store: a held run through its holder (RequestCancel), a waiting one by
// appending its end where no lease holds it.
func (e *Engine) cancelStored(ctx context.Context, tenant, id, reason string) (*api.Run, error) {
	var last error
	for range cancelAttempts {
		rec, err := e.getRecord(ctx, tenant, id)
		if err != nil {
			return nil, err
		}
		if rec.Run.Status.Terminal() {
			return nil, &StateError{RunID: id, Status: rec.Run.Status, Op: "cancel"}
		}
		ok, err := e.cl.cl.RequestCancel(ctx, tenant, id, reason)
		if err != nil {
			return nil, fmt.Errorf("requesting the cancel of run %s: %w", id, err)
		}
		if ok {
			return rec.Run, nil
		}
		if rec.Run.Status == api.StatusRunning {
			continue // released or ended meanwhile: look again
		}
		rs := newRunState(rec)
		snap := rs.snapshot()
		var evs []api.Event
		for _, m := range snap.Members {
			if !m.Status.Terminal() {
				evs = append(evs, api.Event{Type: api.EventMemberStatus, Member: m.ID, Status: api.StatusCancelled, Reason: reason})
			}
		}
		evs = append(evs, api.Event{Type: api.EventRunStatus, Status: api.StatusCancelled, Reason: reason})
		last = e.commit(rs, evs...)
		if last == nil {
			e.kick()
			return rs.snapshot(), nil
		}
		if !errors.Is(last, ErrSeqConflict) && !errors.Is(last, ErrLeaseLost) {
			return nil, last
		}
	}
	return nil, fmt.Errorf("cancelling run %s: it kept changing (claimed or moved by another replica): %w; retry", id, last)
}

// createdCluster finishes a Create on a Cluster store: the run is stored,
// the claims of every replica take it from there (the store's note wakes
// them); a superseding run cancels its group's older runs wherever they are.
func (e *Engine) createdCluster(ctx context.Context, tenant string, rec *RunRecord, opts CreateOptions) *api.Run {
	e.mu.Lock()
	delete(e.creating, rec.Run.ID)
	e.mu.Unlock()
	e.kick()
	created := copyRun(rec.Run)
	req := rec.Request
	if !req.Supersede || req.ConcurrencyGroup == "" || opts.RerunOf != "" {
		return created
	}
	ids, err := e.cl.cl.Group(ctx, tenant, req.ConcurrencyGroup, rec.Order)
	if err != nil {
		e.cfg.Logger.Error("finding the runs a new run supersedes", "run", rec.Run.ID, "err", err)
		return created
	}
	for _, id := range ids {
		var se *StateError
		if _, err := e.Cancel(ctx, tenant, id, "superseded by "+rec.Run.ID); err != nil && !errors.As(err, &se) {
			e.cfg.Logger.Error("cancelling a superseded run", "run", id, "by", rec.Run.ID, "err", err)
		}
	}
	return created
}

// ErrUnavailable marks a store error that says the store could not be
// reached (a database restarting or unreachable): the operation may be
// tried again later. A server answers it with 503 and Retry-After.
var ErrUnavailable = errors.New("the run store is unreachable; retry in a moment")
