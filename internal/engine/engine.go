package engine

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

const (
	// DefaultMaxParallel bounds a run's members executing at once when the run
	// does not say (max_parallel).
	DefaultMaxParallel = 4
	// DefaultBlockAfter is how long a run may wait behind an exclusive
	// environment before it is blocked (docs/serve.md, server.yaml block_after).
	DefaultBlockAfter = 10 * time.Minute
	// StuckInitialAfter: a run still initial after this is a fault (docs/serve.md, Queue and restarts).
	StuckInitialAfter = 2 * time.Minute
	// IdempotencyTTL: keys are kept at least 7 days (docs/serve.md, Idempotency).
	IdempotencyTTL = 7 * 24 * time.Hour
	// CancelWithin: a cancelled running run stops within this.
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
	// Remote, when set, executes the members of pool runs on endpoint
	// agents (remote.go; zof serve's fleet). nil: every member runs here.
	Remote RemoteRunner
	// Logger receives faults the engine cannot put in a run's log (store errors).
	Logger *slog.Logger
	// Replica names this engine among the engines sharing a Cluster store
	// (its leases and leader lease); default host-pid-random.
	Replica string
	// LeaseTTL is how long a Cluster store's lease on a run lasts without
	// renewal (default LeaseTTL; tests shorten it).
	LeaseTTL time.Duration
}

// CreateOptions are the parts of a create that are not the run definition.
type CreateOptions struct {
	// IdempotencyKey deduplicates creates per tenant (docs/serve.md); empty: none.
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
	// cl is set when the store is a Cluster: runs start by claims (cluster.go).
	cl *clusterState
	// resumed is closed once Run has loaded the store's unfinished runs.
	resumed     chan struct{}
	resumedOnce sync.Once
	// appendCost is a moving average of the store's append, in ns: it
	// decides whether commits are grouped (commit.go, groupCommitAfter).
	appendCost atomic.Int64
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
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = LeaseTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var cl *clusterState
	if c, ok := cfg.Store.(Cluster); ok {
		cl = newClusterState(c, cfg.Replica)
	}
	e := &Engine{
		cl:        cl,
		cfg:       cfg,
		active:    map[string]*runState{},
		creating:  map[string]bool{},
		running:   map[string]int{},
		exclusive: map[exKey]*runState{},
		wake:      make(chan struct{}, 1),
		resumed:   make(chan struct{}),
	}
	// Until appends are measured, the store counts as slow: commits group.
	e.appendCost.Store(int64(groupCommitAfter))
	return e, nil
}

func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "run_" + strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
}

// kick asks the scheduler for a pass.
func (e *Engine) kick() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Run schedules and executes runs until ctx ends. It first resumes what the
// store holds: initial and queued runs are queued again in creation order; a
// run left running by a previous process is resumed (finished members keep
// their results, unfinished ones run again from their first step as a new
// attempt), or, when a cancel had been requested, its cancel is finished.
// When ctx ends it stops every running run (in-flight steps cancelled,
// services stopped). Without Config.LeaveQueuedOnStop they and the initial
// and queued runs are recorded as cancelled; with it nothing more is recorded
// and the next Run on the store resumes them all. Run waits for that and
// returns nil. Run may be called once.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return errors.New("engine: Run called twice")
	}
	e.started = true
	e.baseCtx = ctx
	e.mu.Unlock()

	if e.cl != nil {
		return e.runCluster(ctx)
	}
	err := e.resume(ctx)
	e.resumedOnce.Do(func() { close(e.resumed) })
	if err != nil {
		e.shutdown()
		return err
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		var tick <-chan time.Time
		if next := e.schedule(); !next.IsZero() {
			timer.Reset(max(next.Sub(e.cfg.Now()), time.Millisecond))
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			e.shutdown()
			return nil
		case <-e.wake:
		case <-tick:
		}
		timer.Stop()
	}
}

// runContext is the context of one run's execution. It does not end with
// Run's context: shutdown ends each run's context itself, after deciding how
// the run is left (cancelled, or frozen for the next start), so no executor
// records anything before that decision.
func (e *Engine) runContext() (context.Context, context.CancelCauseFunc) {
	return context.WithCancelCause(context.WithoutCancel(e.baseCtx))
}

func (e *Engine) shutdown() {
	e.mu.Lock()
	e.stopped = true
	for _, rs := range e.active {
		switch {
		case e.cfg.LeaveQueuedOnStop:
			// Left as a crash would leave it, for the next start to resume;
			// the executor still stops the steps and the service.
			rs.freeze()
			if rs.cancel != nil {
				rs.cancel(errCancelled)
			}
		case rs.cancel != nil:
			if rs.cancelReason == "" {
				rs.cancelReason = reasonStopped
			}
			rs.cancel(errCancelled)
		}
	}
	if !e.cfg.LeaveQueuedOnStop && e.cl == nil {
		// (With a Cluster store the waiting runs are every replica's: they stay.)
		for _, rs := range e.waiting {
			if st, _ := rs.status(); !st.Terminal() {
				_ = e.endWaiting(rs, api.StatusCancelled, reasonStopped)
			}
		}
		e.waiting = nil
	}
	e.mu.Unlock()
	e.wg.Wait()
}
