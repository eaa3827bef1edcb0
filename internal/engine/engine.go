package engine

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/secret"
)

const (
	// DefaultMaxParallel bounds a run's members executing at once when the run
	// does not say (shared/spec/lifecycle.md, Execution: "default 4").
	DefaultMaxParallel = 4
	// DefaultBlockAfter is how long a run may wait behind an exclusive
	// environment before it is blocked (lifecycle.md: "default 10 minutes").
	DefaultBlockAfter = 10 * time.Minute
	// StuckInitialAfter: a run still initial after this is a fault (lifecycle.md).
	StuckInitialAfter = 2 * time.Minute
	// IdempotencyTTL: keys are kept at least 7 days (api.md, Idempotency).
	IdempotencyTTL = 7 * 24 * time.Hour
	// CancelWithin: a cancelled running run stops within this (lifecycle.md, Cancel).
	CancelWithin = 2 * time.Second
	// DefaultCancelGrace is how long a step may take to return after its
	// context ends before the engine abandons it and marks it cancelled; it
	// leaves room inside CancelWithin for the bookkeeping that follows.
	DefaultCancelGrace = 1500 * time.Millisecond
	// DefaultServiceStopTimeout bounds stopping the environment's serve process group.
	DefaultServiceStopTimeout = 5 * time.Second
	// DefaultSubscriberBuffer is how many events a subscriber may lag behind
	// the engine before it is dropped.
	DefaultSubscriberBuffer = 1024
	// DefaultListLimit and MaxListLimit bound a List page.
	DefaultListLimit = 50
	MaxListLimit     = 500
	// eventPage is how many events are read from the store at once.
	eventPage = 512
)

// Config configures an Engine. Store and Steps are required.
type Config struct {
	Store Store
	Steps StepRunner
	// Services starts environments' serve commands; a run whose environment
	// has serve fails with a clear reason when it is nil.
	Services ServiceStarter
	// Now is the clock for timestamps, queue waits and block_after (default time.Now).
	Now func() time.Time
	// NewID makes run ids (default "run_" + 16 random base32 characters).
	NewID func() string
	// TenantLimit is a tenant's max_concurrent_runs; 0 (or a nil func) is unlimited.
	TenantLimit func(tenant string) int
	// BlockAfter is the server's block_after (default DefaultBlockAfter);
	// RunRequest.BlockAfter overrides it per run.
	BlockAfter time.Duration
	// MaxParallel is the member limit for runs that do not set one (default DefaultMaxParallel).
	MaxParallel int
	// Dir and Env are the working directory and base environment of run steps.
	Dir string
	Env []string
	// SubscriberBuffer: events a subscriber may lag before it is dropped (default DefaultSubscriberBuffer).
	SubscriberBuffer int
	// CancelGrace: see DefaultCancelGrace.
	CancelGrace time.Duration
	// ServiceStopTimeout: see DefaultServiceStopTimeout.
	ServiceStopTimeout time.Duration
	// LeaveQueuedOnStop leaves every unfinished run in the store when Run
	// returns, for the next start to resume (zof serve): initial and queued
	// runs keep their place; running runs have their in-flight steps stopped
	// and their service stopped, but nothing more is recorded, so the next
	// start finds them running and resumes them (see the package doc). When
	// false (the embedded runner) every unfinished run is cancelled.
	LeaveQueuedOnStop bool
	// RunURL, when set, gives a run's URL (Run.URL).
	RunURL func(runID string) string
	// URLPolicy, when set, gives the check every URL a tenant's http steps
	// reach must pass, redirects included (zof serve: allowed_targets).
	URLPolicy func(tenant string) func(*url.URL) error
	// Logger receives faults the engine cannot put in a run's log (store errors).
	Logger *slog.Logger
}

// CreateOptions are the parts of a create that are not the run definition.
type CreateOptions struct {
	// IdempotencyKey deduplicates creates per tenant (api.md); empty: none.
	IdempotencyKey string
	// Fingerprint identifies the request for the key; empty: Fingerprint(req).
	Fingerprint string
	// RerunOf names the run this one reruns. A rerun never supersedes.
	RerunOf string
}

// Engine schedules and executes runs and keeps their event logs. All methods
// are safe for concurrent use.
type Engine struct {
	creating  map[string]bool // runs a Create is storing; resume leaves them to it (under mu)
	observers []Observer      // see Observe; appended under mu before Run
	cfg       Config

	mu        sync.Mutex
	active    map[string]*runState // non-terminal runs this engine manages
	waiting   []*runState          // initial and queued runs, by Order
	running   map[string]int       // running runs per tenant
	exclusive map[exKey]*runState  // holder of each exclusive environment
	started   bool
	stopped   bool
	baseCtx   context.Context
	wg        sync.WaitGroup // executing runs

	wake chan struct{}
	// resumed is closed once Run has loaded the store's unfinished runs.
	resumed     chan struct{}
	resumedOnce sync.Once
}

type exKey struct{ tenant, project, env string }

// Observer sees every change the engine records, right after it is stored:
// the run's tenant, its head after the events (every field of the run but
// Members, which is nil: the member events say what changed) and the events.
// Both are the observer's to keep and must not be changed. It is called with
// the run's lock held, so it must be quick and must not call the engine;
// `zof serve` counts metrics with it.
type Observer func(tenant string, run *api.Run, events []api.Event)

// Observe registers fn for every later change. Register before Run.
func (e *Engine) Observe(fn Observer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.observers = append(e.observers, fn)
}

// runState is the engine's live view of one non-terminal run.
type runState struct {
	id     string
	tenant string
	order  int64
	req    *api.RunRequest
	mask   *secret.Masker

	mu     sync.Mutex // serialises the run's appends; guards snap, done, frozen, subs
	snap   *api.Run
	index  map[string]int // member id → index in snap.Members (never changes)
	done   bool           // the terminal run.status is stored
	frozen bool           // the engine stopped and left the run for the next start: nothing more is recorded
	subs   map[*subscriber]struct{}

	// resumed: the run was running when a previous process stopped; this
	// engine continues it (see resumeRunning). interrupted counts, per
	// member, the attempts restarts cut short (set before execution starts).
	resumed     bool
	interrupted map[string]int

	// Guarded by Engine.mu.
	exSince      time.Time // when it started waiting behind an exclusive environment
	exHolder     string    // the run it waits behind
	posAt        time.Time // when its queue position was last written (scheduler only)
	cancel       context.CancelCauseFunc
	cancelReason string
}

// snapshot is a copy of the whole run: O(members), so for once-per-run
// decisions only; member reads one member.
func (rs *runState) snapshot() *api.Run {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.snap.Clone()
}

// member is a copy of one member, found through the index.
func (rs *runState) member(id string) (api.Member, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	i, ok := rs.index[id]
	if !ok {
		return api.Member{}, false
	}
	return cloneMember(rs.snap.Members[i]), true
}

// indexMembers maps each member id of run to its index.
func indexMembers(run *api.Run) map[string]int {
	idx := make(map[string]int, len(run.Members))
	for i, m := range run.Members {
		idx[m.ID] = i
	}
	return idx
}

// failures is how many of m's attempts failed: its FailedAttempts less those
// a restart interrupted.
func (rs *runState) failures(m *api.Member) int {
	return len(m.FailedAttempts) - rs.interrupted[m.ID]
}

func (rs *runState) status() (api.Status, int) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.snap.Status, rs.snap.Position
}

func (rs *runState) exclusiveKey() (exKey, bool) {
	return exKey{rs.tenant, rs.req.Project, rs.req.Environment.Name}, rs.req.Environment.Exclusive
}

// New returns an engine; call Run to schedule and execute runs.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil {
		return nil, errors.New("engine: Config.Store is required (memstore.New() for an embedded run)")
	}
	if cfg.Steps == nil {
		return nil, errors.New("engine: Config.Steps is required (a *step.Executor)")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = newID
	}
	if cfg.TenantLimit == nil {
		cfg.TenantLimit = func(string) int { return 0 }
	}
	if cfg.BlockAfter <= 0 {
		cfg.BlockAfter = DefaultBlockAfter
	}
	if cfg.MaxParallel <= 0 {
		cfg.MaxParallel = DefaultMaxParallel
	}
	if cfg.SubscriberBuffer <= 0 {
		cfg.SubscriberBuffer = DefaultSubscriberBuffer
	}
	if cfg.CancelGrace <= 0 {
		cfg.CancelGrace = DefaultCancelGrace
	}
	if cfg.ServiceStopTimeout <= 0 {
		cfg.ServiceStopTimeout = DefaultServiceStopTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{
		cfg:       cfg,
		active:    map[string]*runState{},
		creating:  map[string]bool{},
		running:   map[string]int{},
		exclusive: map[exKey]*runState{},
		wake:      make(chan struct{}, 1),
		resumed:   make(chan struct{}),
	}, nil
}

func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "run_" + strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
}

// Fingerprint identifies a request for idempotency: the SHA-256 of its JSON.
func Fingerprint(req *api.RunRequest) string {
	b, _ := json.Marshal(req) // a RunRequest always marshals
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// kick asks the scheduler for a pass.
func (e *Engine) kick() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Validate checks what the engine needs of a request to execute it.
func Validate(req *api.RunRequest) error {
	if req == nil {
		return &ValidationError{Problems: []string{"no run request"}}
	}
	var p []string
	if req.MaxParallel < 0 {
		p = append(p, fmt.Sprintf("max_parallel is %d; use 0 for the default or a positive number", req.MaxParallel))
	}
	if req.BlockAfter < 0 {
		p = append(p, "block_after is negative")
	}
	if s := req.Environment.Serve; s != nil && strings.TrimSpace(s.Command) == "" {
		p = append(p, fmt.Sprintf("environment %s: serve has no command", req.Environment.Name))
	}
	members := map[string]bool{}
	cases := map[string]bool{}
	for i, c := range req.Cases {
		if c.ID == "" {
			p = append(p, fmt.Sprintf("case %d has no id", i+1))
			continue
		}
		cases[c.ID] = true
		if c.Retries < 0 || c.Timeout < 0 {
			p = append(p, fmt.Sprintf("case %s: retries and timeout must not be negative", c.ID))
		}
		vs := c.Variants
		if len(vs) == 0 {
			vs = []api.Variant{{}}
		}
		for _, v := range vs {
			id := api.MemberID(c.ID, v.Name)
			if members[id] {
				p = append(p, fmt.Sprintf("member %s appears twice; case ids and variant names must be unique", id))
			}
			members[id] = true
		}
		for j, s := range c.Steps {
			if (s.HTTP == nil) == (s.Run == nil) {
				p = append(p, fmt.Sprintf("case %s step %d: a step is exactly one of http or run", c.ID, j+1))
			}
			if s.Timeout < 0 {
				p = append(p, fmt.Sprintf("case %s step %d: timeout is negative", c.ID, j+1))
			}
		}
	}
	for _, s := range req.Sets {
		for _, c := range s.Cases {
			if !cases[c] {
				p = append(p, fmt.Sprintf("set %s names case %s, which is not in the run", s.Name, c))
			}
		}
	}
	if len(p) > 0 {
		return &ValidationError{Problems: p}
	}
	return nil
}

// cloneRequest deep-copies a request so the caller may reuse theirs.
func cloneRequest(req *api.RunRequest) (*api.RunRequest, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding the run request: %w", err)
	}
	var c api.RunRequest
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("copying the run request: %w", err)
	}
	return &c, nil
}

// Create stores a new run (initial, substate analysing) and hands it to the
// scheduler. With an idempotency key already used by the same request it
// returns that run and replayed=true; with a different request it returns an
// *IdempotencyConflictError. A run with Supersede cancels the older
// non-terminal runs of its concurrency group (not when it is a rerun).
func (e *Engine) Create(ctx context.Context, tenant string, req *api.RunRequest, opts CreateOptions) (run *api.Run, replayed bool, err error) {
	if err := Validate(req); err != nil {
		return nil, false, err
	}
	e.mu.Lock()
	stopped := e.stopped
	e.mu.Unlock()
	if stopped {
		return nil, false, ErrStopped
	}
	req, err = cloneRequest(req)
	if err != nil {
		return nil, false, err
	}
	now := e.cfg.Now()
	id := e.cfg.NewID()
	initial := api.NewRun(id, req, now)
	initial.Tenant = tenant
	initial.IdempotencyKey = opts.IdempotencyKey
	initial.RerunOf = opts.RerunOf
	initial.Substate = api.SubstateAnalysing
	if e.cfg.RunURL != nil {
		initial.URL = e.cfg.RunURL(id)
	}
	first := api.Event{Seq: 1, At: now, Type: api.EventRunCreated, RunID: id, Run: initial}
	snap := &api.Run{}
	if err := snap.Apply(first); err != nil {
		return nil, false, fmt.Errorf("building run %s: %w", id, err)
	}
	rec := &RunRecord{Run: snap, Request: req}
	var idem *IdempotencyRecord
	if opts.IdempotencyKey != "" {
		fp := opts.Fingerprint
		if fp == "" {
			fp = Fingerprint(req)
		}
		idem = &IdempotencyRecord{Tenant: tenant, Key: opts.IdempotencyKey, Fingerprint: fp, RunID: id, CreatedAt: now, ExpiresAt: now.Add(IdempotencyTTL)}
	}
	// Marked before it is stored: Run's resume loads unfinished runs from the
	// store, and must leave one that is being created to this Create (else a
	// fast run could execute and finish there, and be registered again here).
	e.mu.Lock()
	e.creating[id] = true
	e.mu.Unlock()
	holder, err := e.cfg.Store.CreateRun(ctx, rec, first, idem)
	if err != nil || holder != nil {
		e.mu.Lock()
		delete(e.creating, id)
		e.mu.Unlock()
	}
	if err != nil {
		return nil, false, fmt.Errorf("storing run %s: %w", id, err)
	}
	if holder != nil {
		if holder.Fingerprint != idem.Fingerprint {
			return nil, false, &IdempotencyConflictError{Key: holder.Key, RunID: holder.RunID}
		}
		got, err := e.cfg.Store.GetRun(ctx, tenant, holder.RunID)
		if err != nil {
			return nil, false, fmt.Errorf("reading run %s that owns idempotency key %q: %w", holder.RunID, holder.Key, err)
		}
		return got.Run.Clone(), true, nil
	}

	created := snap.Clone()
	rs := newRunState(rec)
	e.mu.Lock()
	delete(e.creating, id)
	e.active[id] = rs
	e.insertWaiting(rs)
	if req.Supersede && req.ConcurrencyGroup != "" && opts.RerunOf == "" {
		for _, o := range e.active {
			if o != rs && o.tenant == tenant && o.order < rs.order && o.req.ConcurrencyGroup == req.ConcurrencyGroup {
				_ = e.cancelLocked(o, "superseded by "+id)
			}
		}
	}
	switch {
	case e.stopped && !e.cfg.LeaveQueuedOnStop:
		// Run returned while this create was in flight: nothing will execute it.
		_ = e.cancelLocked(rs, reasonStopped)
	case e.stopped:
		// Stored; the next start runs it. Followers resume against that one.
		rs.freeze()
	}
	e.mu.Unlock()
	e.kick()
	return created, false, nil
}

func newRunState(rec *RunRecord) *runState {
	return &runState{
		id:     rec.Run.ID,
		tenant: rec.Run.Tenant,
		order:  rec.Order,
		req:    rec.Request,
		mask:   secret.NewMasker(rec.Request.Secrets),
		snap:   rec.Run.Clone(),
		index:  indexMembers(rec.Run),
		subs:   map[*subscriber]struct{}{},
	}
}

// insertWaiting adds rs to the waiting list in creation order. Caller holds e.mu.
func (e *Engine) insertWaiting(rs *runState) {
	i, _ := slices.BinarySearchFunc(e.waiting, rs.order, func(w *runState, o int64) int {
		switch {
		case w.order < o:
			return -1
		case w.order > o:
			return 1
		}
		return 0
	})
	e.waiting = slices.Insert(e.waiting, i, rs)
}

func (e *Engine) removeWaiting(rs *runState) {
	e.waiting = slices.DeleteFunc(e.waiting, func(w *runState) bool { return w == rs })
}

// Get returns the run's snapshot.
func (e *Engine) Get(ctx context.Context, tenant, id string) (*api.Run, error) {
	rec, err := e.getRecord(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	return rec.Run.Clone(), nil
}

func (e *Engine) getRecord(ctx context.Context, tenant, id string) (*RunRecord, error) {
	rec, err := e.cfg.Store.GetRun(ctx, tenant, id)
	if errors.Is(err, ErrNotFound) {
		return nil, &NotFoundError{RunID: id}
	}
	if err != nil {
		return nil, fmt.Errorf("reading run %s: %w", id, err)
	}
	return rec, nil
}

// Events returns the run's events with seq > after, in order.
func (e *Engine) Events(ctx context.Context, tenant, id string, after int64) ([]api.Event, error) {
	if _, err := e.getRecord(ctx, tenant, id); err != nil {
		return nil, err
	}
	var out []api.Event
	for {
		evs, err := e.cfg.Store.Events(ctx, id, after, eventPage)
		if err != nil {
			return nil, fmt.Errorf("reading events of run %s: %w", id, err)
		}
		out = append(out, evs...)
		if len(evs) < eventPage {
			return out, nil
		}
		after = evs[len(evs)-1].Seq
	}
}

// List returns the tenant's runs newest first and the cursor of the next page ("" at the end).
func (e *Engine) List(ctx context.Context, tenant string, f ListFilter) ([]*api.Run, string, error) {
	if f.Limit <= 0 {
		f.Limit = DefaultListLimit
	}
	f.Limit = min(f.Limit, MaxListLimit)
	for _, s := range f.Statuses {
		if !s.Valid() {
			return nil, "", &ValidationError{Problems: []string{fmt.Sprintf("unknown status %q; use one of %v", s, api.Statuses)}}
		}
	}
	runs, next, err := e.cfg.Store.ListRuns(ctx, tenant, f)
	if errors.Is(err, ErrInvalidCursor) {
		return nil, "", &ValidationError{Problems: []string{"the cursor is not one this server returned; start again without it"}}
	}
	if err != nil {
		return nil, "", fmt.Errorf("listing runs: %w", err)
	}
	return runs, next, nil
}

const (
	reasonCancelled = "cancelled by request"
	reasonStopped   = "the run engine stopped (interrupted) before the run finished"
)

// Cancel cancels a non-terminal run. An initial or queued run is cancelled at
// once; a running run is told to stop and reaches cancelled within
// CancelWithin (follow it with Subscribe or Wait). The returned snapshot is
// the run as of the request. A terminal run gives a *StateError.
func (e *Engine) Cancel(ctx context.Context, tenant, id, reason string) (*api.Run, error) {
	if reason == "" {
		reason = reasonCancelled
	}
	e.mu.Lock()
	rs := e.active[id]
	if rs != nil && rs.tenant == tenant {
		err := e.cancelLocked(rs, reason)
		e.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return rs.snapshot(), nil
	}
	e.mu.Unlock()
	rec, err := e.getRecord(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if rec.Run.Status.Terminal() {
		return nil, &StateError{RunID: id, Status: rec.Run.Status, Op: "cancel"}
	}
	e.mu.Lock()
	stopped := e.stopped
	e.mu.Unlock()
	if stopped {
		return nil, ErrStopped
	}
	return nil, fmt.Errorf("run %s is %s but this engine has not loaded it yet (it resumes stored runs when it starts); retry in a moment", id, rec.Run.Status)
}

// cancelLocked cancels rs. Caller holds e.mu.
func (e *Engine) cancelLocked(rs *runState, reason string) error {
	st, _ := rs.status()
	switch {
	case st.Terminal():
		return &StateError{RunID: rs.id, Status: st, Op: "cancel"}
	case rs.cancel != nil: // running: the executor finishes the run
		if rs.cancelReason == "" {
			// Recorded, so that a restart before the run has stopped
			// finishes the cancel instead of resuming the run.
			switch err := e.commit(rs, cancelRequestEvent(reason)); {
			case errors.Is(err, errFrozen):
				return err
			case err != nil && !errors.Is(err, errRunClosed):
				e.cfg.Logger.Error("recording a cancel request", "run", rs.id, "err", err)
			}
			rs.cancelReason = reason
		}
		rs.cancel(errCancelled)
		return nil
	}
	e.removeWaiting(rs)
	err := e.endWaiting(rs, api.StatusCancelled, reason)
	e.kick() // queue positions move up
	return err
}

// errCancelled is the cause of a running run's context when it is cancelled.
var errCancelled = errors.New("run cancelled")

// endWaiting ends an initial or queued run as cancelled or blocked: its
// members first (a parent is non-terminal while a member is), then the run.
// Caller holds e.mu and has removed rs from e.waiting.
func (e *Engine) endWaiting(rs *runState, to api.Status, reason string) error {
	snap := rs.snapshot()
	var evs []api.Event
	for _, m := range snap.Members {
		if !m.Status.Terminal() {
			evs = append(evs, api.Event{Type: api.EventMemberStatus, Member: m.ID, Status: to, Reason: reason})
		}
	}
	evs = append(evs, api.Event{Type: api.EventRunStatus, Status: to, Reason: reason})
	err := e.commit(rs, evs...)
	if err != nil && !errors.Is(err, errFrozen) {
		e.cfg.Logger.Error("ending run", "run", rs.id, "status", to, "err", err)
	}
	delete(e.active, rs.id)
	return err
}

// Rerun creates a new run from a terminal run's definition, at the back of
// the queue, with RerunOf set. A non-terminal run gives a *StateError.
func (e *Engine) Rerun(ctx context.Context, tenant, id string) (*api.Run, error) {
	rec, err := e.getRecord(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if !rec.Run.Status.Terminal() {
		return nil, &StateError{RunID: id, Status: rec.Run.Status, Op: "rerun"}
	}
	run, _, err := e.Create(ctx, tenant, rec.Request, CreateOptions{RerunOf: id})
	return run, err
}

// Wait follows a run until it is terminal and returns its final snapshot.
func (e *Engine) Wait(ctx context.Context, tenant, id string) (*api.Run, error) {
	run, err := e.Get(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	after := run.LastSeq
	for !run.Status.Terminal() {
		sub, err := e.Subscribe(ctx, tenant, id, after)
		if err != nil {
			return nil, err
		}
		for ev := range sub.C {
			after = ev.Seq
		}
		switch err := sub.Err(); {
		case errors.Is(err, ErrDropped):
			continue
		case err != nil:
			return nil, err
		}
		if run, err = e.Get(ctx, tenant, id); err != nil {
			return nil, err
		}
	}
	return run, nil
}

// StuckRun is a run in a state lifecycle.md calls a fault.
type StuckRun struct {
	Tenant string
	RunID  string
	Status api.Status
	// Since is when the run was created.
	Since time.Time
	Why   string
}

// Stuck lists runs initial for longer than StuckInitialAfter and runs queued
// while their tenant has free capacity and no exclusive environment holds
// them. The second is normally momentary (the scheduler promotes on the next
// pass), so a server should report a run that is listed on two checks in a row.
func (e *Engine) Stuck() []StuckRun {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.cfg.Now()
	var out []StuckRun
	for _, rs := range e.waiting {
		rs.mu.Lock()
		st, created := rs.snap.Status, rs.snap.CreatedAt
		rs.mu.Unlock()
		switch st {
		case api.StatusInitial:
			if d := now.Sub(created); d > StuckInitialAfter {
				out = append(out, StuckRun{rs.tenant, rs.id, st, created, fmt.Sprintf("initial for %s: the scheduler has not picked it up", d.Truncate(time.Second))})
			}
		case api.StatusQueued:
			limit := e.cfg.TenantLimit(rs.tenant)
			key, excl := rs.exclusiveKey()
			held := excl && e.exclusive[key] != nil
			if !held && (limit <= 0 || e.running[rs.tenant] < limit) {
				out = append(out, StuckRun{rs.tenant, rs.id, st, created, fmt.Sprintf("queued while the tenant has free capacity (%d running, limit %d)", e.running[rs.tenant], limit)})
			}
		}
	}
	return out
}
