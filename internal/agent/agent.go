// Package agent is `zof agent`: an endpoint agent that leases members of its
// pool's runs from `zof serve` and executes them with the embedded engine's
// attempt (engine.RunAttempt) and step executor (docs/agents.md).
//
// The agent makes outbound HTTP(S) requests only. It keeps one poll open at
// all times (free may be 0, so a stop reaches it at once), sends a heartbeat
// every heartbeat_every while it holds leases, streams each step's start and
// end as it goes and the attempt's outcome at its end. It stops a lease —
// cancelling its steps, which kills their process groups, and dropping its
// results — when the server says stop, when a write under it is fenced (409),
// or when it has had no answer from the server for longer than the lease TTL
// (the server has given the member to another agent by then).
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/retry"
	"github.com/zof-ai/zof-ci/internal/secret"
	"github.com/zof-ai/zof-ci/internal/step"
	"github.com/zof-ai/zof-ci/internal/wait"
)

const (
	// DefaultConcurrency is how many members an agent executes at once.
	DefaultConcurrency = 1
	// DefaultDrainGrace is how long a draining agent (SIGTERM) lets the
	// members it holds finish before it kills them and exits. Keep a
	// supervisor's stop timeout above it (Kubernetes
	// terminationGracePeriodSeconds, systemd TimeoutStopSec).
	DefaultDrainGrace = time.Minute
	// Defaults for a session whose answer leaves a timing out (the server
	// always sends them; docs/agents.md).
	defaultHeartbeat = 5 * time.Second
	defaultLeaseTTL  = 15 * time.Second
	defaultPollWait  = 30 * time.Second
	// reconnectBase and reconnectCap bound the full-jitter wait
	// (retry.Backoff) between attempts to reach a server that is down, so a
	// fleet does not hit a restarting server in lockstep.
	reconnectBase = 250 * time.Millisecond
	reconnectCap  = 15 * time.Second
	// pollSlack is how much longer than poll_wait the agent waits for a held
	// poll's answer before it takes the connection for dead (a partition that
	// drops packets without a reset) and polls again.
	pollSlack = 10 * time.Second
	// disconnectWait bounds the goodbye (DELETE the session) at the end.
	disconnectWait = 5 * time.Second
	// stepsWait bounds the wait at exit for steps still being killed.
	stepsWait = 5 * time.Second
	// MaxEventOutput is the most of a step's output an event carries: the
	// step executor's cap (step.DefaultMaxOutput), so an agent sends no more
	// than the embedded engine stores; longer text keeps its end, after a marker.
	MaxEventOutput = step.DefaultMaxOutput
	// maxEventText bounds an event's other free text (message, failure
	// fields), under the server's 16 KiB (docs/agents.md).
	maxEventText = 8 << 10
	// maxReason is the server's cap on a result's reason (docs/agents.md).
	maxReason = 4 << 10
	// maxEvents is the server's cap on the events of one request (docs/agents.md).
	maxEvents = 1024
	// cancelledWait bounds sending a cancelled member's result: the server
	// waits 1.5 s for it, then ends the attempt itself (docs/agents.md, stop grace).
	cancelledWait = 1500 * time.Millisecond
	// cancelPrefix starts the reason of a stop for a cancelled run.
	cancelPrefix = "cancelled"
)

// Options configure an agent. Server, Token and Out are required.
type Options struct {
	// Server is the zof serve base URL (http or https).
	Server string
	// Token is the agent token of one pool (server.yaml pools.<name>.tokens).
	Token       string
	Name        string
	Concurrency int
	Labels      map[string]string
	// Version is this build's version, sent in the hello.
	Version string
	// DrainGrace: see DefaultDrainGrace.
	DrainGrace time.Duration
	// Dir and Env are the working directory and base environment of run
	// steps; Env must not hold the agent token (the CLI removes it).
	Dir string
	Env []string
	// Proxy chooses the proxy of the requests to the server (the CLI's is
	// HTTPS_PROXY/HTTP_PROXY/NO_PROXY from the environment it was given);
	// nil: none. Steps' own requests never use it.
	Proxy func(*http.Request) (*url.URL, error)
	// Out receives the agent's log: plain lines, one per event.
	Out io.Writer
	// Steps runs the steps; nil is a step.Executor (tests give a fake).
	Steps engine.StepRunner
	// Groups records the run steps' process groups while they run (the
	// CLI's --state journal), so that the next start kills what a killed
	// agent left running; nil records nothing.
	Groups step.GroupRecorder
	// Transport sends the requests to the server; nil is an http.Transport
	// with Proxy (tests give a partitioning one).
	Transport http.RoundTripper
}

// held is a lease the agent executes.
type held struct {
	lease   api.Lease
	cancel  context.CancelCauseFunc
	stopped bool // told to stop or fenced: results dropped (under agent.mu)
	// cancelled: the run was cancelled; the attempt's cancelled outcome is
	// still sent (under agent.mu).
	cancelled bool
}

type agent struct {
	o     Options
	base  string
	hc    *http.Client
	mask  *secret.Masker // the token, for every line that came from the network
	steps engine.StepRunner
	exec  *step.Executor // the default Steps, waited for at exit

	outMu sync.Mutex

	mu             sync.Mutex
	sess           *api.AgentSession
	policy         *policy
	leases         map[string]*held
	draining       bool
	drainAnnounced bool
	last           time.Time // the server's last answer

	root  context.Context // the leases' parent: outlives the drain signal
	kill  context.CancelCauseFunc
	wg    sync.WaitGroup // lease goroutines
	ended chan struct{}  // a lease ended
	fatal chan error     // a fault the agent cannot outlive
	hbNow chan struct{}  // send a heartbeat now (drain)
	hbNew chan struct{}  // a new session: its heartbeat interval applies
	// forgot: a heartbeat found the session unknown (404): the poll loop
	// connects again at once, not after its current backoff.
	forgot chan struct{}
	// pollFree is the free of the poll in flight (under mu).
	pollFree int
}

// Run connects to the server and executes leased members until ctx ends,
// then drains: it takes no new member, lets the held ones finish within
// DrainGrace (killing them after it), disconnects and returns nil. It
// returns an *Error when the server refuses the token or speaks another
// protocol version; a server that is down is waited for (with backoff)
// however long it takes.
func Run(ctx context.Context, o Options) error {
	a := newAgent(ctx, o)
	hbStop := make(chan struct{})
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		a.heartbeats(hbStop)
	}()
	err := a.loop(ctx)
	if err != nil {
		a.stopAll("the agent is stopping: " + err.Error())
	}
	a.kill(errors.New("the agent stopped"))
	a.wg.Wait()
	close(hbStop)
	<-hbDone
	if a.exec != nil {
		wctx, cancel := context.WithTimeout(context.Background(), stepsWait)
		if werr := a.exec.Wait(wctx); werr != nil {
			a.printf("%v; some step processes may outlive the agent", werr)
		}
		cancel()
	}
	return err
}

// newAgent applies the defaults; its leases outlive ctx (the drain signal).
func newAgent(ctx context.Context, o Options) *agent {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.DrainGrace <= 0 {
		o.DrainGrace = DefaultDrainGrace
	}
	a := &agent{
		o:      o,
		base:   strings.TrimSuffix(o.Server, "/"),
		mask:   secret.NewMasker([]string{o.Token}),
		leases: map[string]*held{},
		ended:  make(chan struct{}, 1),
		fatal:  make(chan error, 1),
		hbNow:  make(chan struct{}, 1),
		hbNew:  make(chan struct{}, 1),
		forgot: make(chan struct{}, 1),
		last:   time.Now(),
	}
	a.steps = o.Steps
	if a.steps == nil {
		a.exec = step.NewExecutor(step.ExecutorOptions{Groups: o.Groups})
		a.steps = a.exec
	}
	tr := o.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = o.Proxy
		tr = t
	}
	a.hc = &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		// The API never redirects; following one could carry the token elsewhere.
		return fmt.Errorf("the server redirected the agent to %s; give --server the address the API answers on", req.URL.Redacted())
	}}
	a.root, a.kill = context.WithCancelCause(context.WithoutCancel(ctx))
	return a
}

// pollResult is what a poll brought back.
type pollResult struct {
	work api.AgentWork
	err  error
}

// loop keeps one poll open, hands out what it brings, and drives the drain.
func (a *agent) loop(ctx context.Context) error {
	var (
		polling    bool
		pollCancel context.CancelFunc = func() {}
		results                       = make(chan pollResult, 1)
		failures   int
		retryC     <-chan time.Time
		drainC     = ctx.Done()
		graceC     <-chan time.Time
	)
	defer func() { pollCancel() }()
	for {
		a.mu.Lock()
		idle, draining := len(a.leases) == 0, a.draining
		a.mu.Unlock()
		if draining && idle {
			if polling {
				pollCancel()
				<-results
			}
			a.disconnect()
			a.printf("drained: no member left; exiting")
			return nil
		}
		if !polling && retryC == nil {
			pctx, cancel := context.WithCancel(a.root)
			pollCancel, polling = cancel, true
			go func() {
				w, err := a.pollOnce(pctx)
				results <- pollResult{w, err}
			}()
		}
		select {
		case r := <-results:
			polling = false
			pollCancel()
			if r.err == nil {
				if failures > 0 {
					a.printf("reached the server again")
				}
				failures = 0
				a.handle(r.work)
				continue
			}
			var fe *Error
			switch {
			case errors.As(r.err, &fe):
				return fe
			case errors.Is(r.err, context.Canceled):
				// This loop cancelled the poll (drain): poll again at once.
				continue
			case errors.Is(r.err, errNotFound):
				a.dropSession()
				a.printf("the server no longer knows this agent (it restarted, or took the agent for lost); connecting again")
				// A server that answers: connect again at once, whatever
				// the outage before it cost (a new fleet home, a restart).
				failures = 0
			}
			failures++
			d := retry.Backoff(failures-1, reconnectBase, reconnectCap, nil)
			if failures == 1 {
				d = 0 // the first retry goes at once: a dropped connection is the usual cause
			} else {
				a.printf("%v; trying again in %s", r.err, d.Round(time.Millisecond))
			}
			retryC = time.After(d)
		case <-retryC:
			retryC = nil
		case <-a.forgot:
			// A server that answers forgot the session (a restart, a new
			// fleet home): connect again now, whatever the backoff, and end
			// a poll still held under the forgotten session (it can only
			// wait out poll_wait).
			if retryC == nil && !polling {
				break // a poll's own 404 handled it
			}
			a.printf("the server no longer knows this agent (it restarted, or took the agent for lost); connecting again")
			if retryC != nil {
				retryC, failures = nil, 0
			} else {
				pollCancel() // its result (cancelled) polls again at once, under a new session
			}
		case <-drainC:
			drainC = nil
			a.mu.Lock()
			a.draining = true
			n := len(a.leases)
			a.mu.Unlock()
			a.printf("draining: taking no new member; %d held, killed after %s if still running", n, a.o.DrainGrace)
			select {
			case a.hbNow <- struct{}{}:
			default:
			}
			if polling {
				pollCancel() // poll again with free 0 and draining
			}
			graceC = time.After(a.o.DrainGrace)
		case <-graceC:
			graceC = nil
			a.stopAll(fmt.Sprintf("the drain grace of %s ran out", a.o.DrainGrace))
		case <-a.ended:
			// A poll held with free 0 while the member ran may be waiting for
			// work the server will not wake it for (the server it went to
			// did not grant the lease that ended: a new fleet home; or the
			// lease ended after the server last answered). It can have been
			// granted nothing: poll again now with the slot free.
			a.mu.Lock()
			stale := polling && a.pollFree == 0 && !a.draining && len(a.leases) < a.o.Concurrency
			a.mu.Unlock()
			if stale {
				pollCancel()
			}
		case err := <-a.fatal:
			return err
		}
	}
}

// session is the agent's session, connecting first when it has none.
func (a *agent) session(ctx context.Context) (*api.AgentSession, error) {
	a.mu.Lock()
	s := a.sess
	a.mu.Unlock()
	if s != nil {
		return s, nil
	}
	hello := api.AgentHello{
		Name: a.o.Name, Version: a.o.Version, Protocol: api.AgentProtocol,
		Labels: a.o.Labels, Concurrency: a.o.Concurrency,
	}
	var got api.AgentSession
	if err := a.call(ctx, "connect", http.MethodPost, "/v1/agent/sessions", hello, &got); err != nil {
		return nil, err
	}
	if got.AgentID == "" {
		return nil, &callError{op: "connect", msg: "the answer names no agent_id; is --server the zof serve API?"}
	}
	if got.HeartbeatEvery <= 0 {
		got.HeartbeatEvery = api.Duration(defaultHeartbeat)
	}
	if got.LeaseTTL <= 0 {
		got.LeaseTTL = api.Duration(defaultLeaseTTL)
	}
	if got.PollWait <= 0 {
		got.PollWait = api.Duration(defaultPollWait)
	}
	pol, bad := newPolicy(got.Pool, got.Policy)
	for _, b := range bad {
		a.printf("pool %s: %s; no step may reach what it would allow", got.Pool, b)
	}
	a.mu.Lock()
	a.sess, a.policy = &got, pol
	a.mu.Unlock()
	select {
	case a.hbNew <- struct{}{}:
	default:
	}
	a.printf("connected to %s as %s (agent %s, pool %s of tenant %s; heartbeat every %s, lease ttl %s, concurrency %d)",
		a.base, a.o.Name, got.AgentID, got.Pool, got.Tenant, got.HeartbeatEvery.D(), got.LeaseTTL.D(), a.o.Concurrency)
	return &got, nil
}

func (a *agent) dropSession() {
	a.mu.Lock()
	a.sess = nil
	a.mu.Unlock()
}

// refs lists the leases the agent holds and has not dropped (under mu).
func (a *agent) refs() []api.LeaseRef {
	out := make([]api.LeaseRef, 0, len(a.leases))
	for _, h := range a.leases {
		if !h.stopped {
			out = append(out, api.LeaseRef{ID: h.lease.ID, Epoch: h.lease.Epoch})
		}
	}
	slices.SortFunc(out, func(x, y api.LeaseRef) int { return strings.Compare(x.ID, y.ID) })
	return out
}

// pollOnce asks for up to free leases; the server answers at once when it
// has work or a stop, else holds the request up to poll_wait.
func (a *agent) pollOnce(ctx context.Context) (api.AgentWork, error) {
	s, err := a.session(ctx)
	if err != nil {
		return api.AgentWork{}, err
	}
	a.mu.Lock()
	p := api.AgentPoll{AgentID: s.AgentID, Free: max(0, a.o.Concurrency-len(a.leases)), Draining: a.draining, Held: a.refs()}
	if a.draining {
		p.Free = 0
	}
	a.pollFree = p.Free
	a.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, s.PollWait.D()+pollSlack)
	defer cancel()
	var w api.AgentWork
	err = a.call(pctx, "poll", http.MethodPost, "/v1/agent/poll", p, &w)
	if err != nil && ctx.Err() == nil && pctx.Err() != nil {
		err = &callError{op: "poll", temporary: true, msg: fmt.Sprintf("no answer within poll_wait (%s) + %s; the connection is taken for dead", s.PollWait.D(), pollSlack)}
	}
	return w, err
}

// handle carries out a poll's answer: stops first, then new leases.
func (a *agent) handle(w api.AgentWork) {
	a.stops(w.Stop)
	for _, l := range w.Leases {
		a.mu.Lock()
		_, dup := a.leases[l.ID]
		full := len(a.leases) >= a.o.Concurrency
		draining := a.draining
		pol := a.policy
		a.mu.Unlock()
		switch {
		case l.ID == "" || l.Epoch <= 0:
			a.printf("a lease without an id or a positive epoch was ignored (run %q, member %q); the server re-queues it", l.RunID, l.Member)
			continue
		case dup:
			continue
		case draining || full:
			why := "no free slot"
			if draining {
				why = "draining"
			}
			a.printf("lease %s (run %s, member %s): not taken (%s); the server gives it to another agent", l.ID, l.RunID, l.Member, why)
			continue
		}
		a.start(l, pol)
	}
}

// start executes a lease in its own goroutine.
func (a *agent) start(l api.Lease, pol *policy) {
	ctx, cancel := context.WithCancelCause(a.root)
	h := &held{lease: l, cancel: cancel}
	a.mu.Lock()
	a.leases[l.ID] = h
	a.mu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.execute(ctx, h, pol)
		cancel(nil)
		a.mu.Lock()
		delete(a.leases, l.ID)
		a.mu.Unlock()
		select {
		case a.ended <- struct{}{}:
		default:
		}
	}()
}

// stops carries out the server's stops. A cancelled run's member still
// reports its cancelled outcome; any other stop (the lease was lost or
// fenced) drops the results.
func (a *agent) stops(ss []api.LeaseStop) {
	for _, st := range ss {
		if strings.HasPrefix(st.Reason, cancelPrefix) {
			a.cancelLease(st.ID, st.Reason)
			continue
		}
		a.stop(st.ID, "the server said stop: "+st.Reason)
	}
}

// cancelLease cancels a lease's steps (their process groups killed); the
// attempt's cancelled outcome is sent.
func (a *agent) cancelLease(id, why string) {
	a.mu.Lock()
	h := a.leases[id]
	if h == nil || h.stopped || h.cancelled {
		a.mu.Unlock()
		return
	}
	h.cancelled = true
	a.mu.Unlock()
	h.cancel(errors.New(why))
	a.printf("lease %s (run %s, member %s): %s; its steps are killed", id, h.lease.RunID, h.lease.Member, why)
}

// stop stops a lease at once: its steps are cancelled (their process groups
// killed) and its results dropped.
func (a *agent) stop(id, why string) {
	a.mu.Lock()
	h := a.leases[id]
	if h == nil || h.stopped {
		a.mu.Unlock()
		return
	}
	h.stopped = true
	a.mu.Unlock()
	h.cancel(errors.New(why))
	a.printf("lease %s (run %s, member %s): stopped: %s; its steps are killed and its results dropped", id, h.lease.RunID, h.lease.Member, why)
}

func (a *agent) stopAll(why string) {
	a.mu.Lock()
	ids := make([]string, 0, len(a.leases))
	for id := range a.leases {
		ids = append(ids, id)
	}
	a.mu.Unlock()
	slices.Sort(ids)
	for _, id := range ids {
		a.stop(id, why)
	}
}

// execute runs the lease's attempt and reports it.
func (a *agent) execute(ctx context.Context, h *held, pol *policy) {
	l := h.lease
	a.printf("lease %s (run %s, member %s, attempt %d): started", l.ID, l.RunID, l.Member, l.Attempt)
	in := engine.StepInput{
		BaseURL:  l.BaseURL,
		Headers:  l.Headers,
		Dir:      a.o.Dir,
		Env:      a.o.Env,
		Mask:     secret.NewMasker(append(slices.Clone(l.Secrets), a.o.Token)),
		AllowURL: pol.allowURL,
	}
	var evidence []api.LeaseEvidence
	status, why, last := engine.RunAttempt(ctx, engine.Attempt{
		Member:  l.Member,
		Case:    &l.Case,
		Variant: l.Variant,
		Input:   in,
		Steps:   policySteps{inner: a.steps, pol: pol},
		// A failed step's evidence goes with the result, for the run's artifacts.
		Failed: func(step int, out engine.StepOutput) {
			for _, x := range out.Evidence {
				evidence = append(evidence, api.LeaseEvidence{Step: step, Kind: x.Kind, ContentType: x.ContentType, Content: x.Content, Truncated: x.Truncated})
			}
		},
		Record: func(evs ...api.Event) {
			if err := a.report(ctx, h, evs); err != nil {
				a.lost(h, err)
			}
		},
	}, nil)
	sendCtx := ctx
	if ctx.Err() != nil {
		a.mu.Lock()
		cancelled := h.cancelled && !h.stopped
		a.mu.Unlock()
		if !cancelled {
			return // stopped: stop said why
		}
		// The run was cancelled: say how the attempt ended, briefly.
		var cancel context.CancelFunc
		sendCtx, cancel = context.WithTimeout(a.root, cancelledWait)
		defer cancel()
		status, why = api.StatusCancelled, context.Cause(ctx).Error()
	}
	if err := a.result(sendCtx, h, api.LeaseResult{Epoch: l.Epoch, Status: status, Reason: clipHead(why, maxReason), Events: last, Evidence: evidence}); err != nil {
		a.lost(h, err)
		return
	}
	line := fmt.Sprintf("lease %s (run %s, member %s, attempt %d): %s", l.ID, l.RunID, l.Member, l.Attempt, status)
	if why != "" {
		line += ": " + why
	}
	a.printf("%s", line)
}

// report sends step events under the lease, at most maxEvents a request.
func (a *agent) report(ctx context.Context, h *held, evs []api.Event) error {
	for len(evs) > 0 {
		n := min(len(evs), maxEvents)
		if err := a.send(ctx, h, "events", "events", api.LeaseReport{Epoch: h.lease.Epoch, Events: clipEvents(evs[:n])}); err != nil {
			return err
		}
		evs = evs[n:]
	}
	return nil
}

// result sends the attempt's outcome with its last events; events beyond
// one request's maxEvents go first in reports.
func (a *agent) result(ctx context.Context, h *held, r api.LeaseResult) error {
	if extra := len(r.Events) - maxEvents; extra > 0 {
		if err := a.report(ctx, h, r.Events[:extra]); err != nil {
			return err
		}
		r.Events = r.Events[extra:]
	}
	r.Events = clipEvents(r.Events)
	return a.send(ctx, h, "result", "result", r)
}

// lost stops a lease whose write failed for good.
func (a *agent) lost(h *held, err error) {
	var fe *Error
	if errors.As(err, &fe) {
		select {
		case a.fatal <- fe:
		default:
		}
	}
	a.stop(h.lease.ID, err.Error()) // nothing more when it was stopped already
}

// send writes under a lease, again while the server is unreachable, until
// it is accepted, fenced, or the lease is stopped. A lease whose server has
// not answered for longer than the lease TTL is taken as fenced without
// sending: the server has given it to another agent.
func (a *agent) send(ctx context.Context, h *held, op, what string, body any) error {
	path := "/v1/agent/leases/" + url.PathEscape(h.lease.ID) + "/" + what
	for attempt := 0; ; attempt++ {
		if err := a.expired(); err != nil {
			return err
		}
		err := a.call(ctx, op, http.MethodPost, path, body, nil)
		var (
			fe *Error
			ce *callError
		)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return context.Cause(ctx)
		case errors.Is(err, errFenced), errors.Is(err, errNotFound):
			return errFenced
		case errors.As(err, &fe):
			return fe
		case errors.As(err, &ce) && ce.temporary:
			if werr := wait.Sleep(ctx, retry.Backoff(attempt, reconnectBase, reconnectCap, nil)); werr != nil {
				return context.Cause(ctx)
			}
		default:
			return fmt.Errorf("the server refused the lease's %s: %w; they are dropped", op, err)
		}
	}
}

// expired says whether the server has been silent for longer than the
// lease TTL.
func (a *agent) expired() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	ttl := defaultLeaseTTL
	if a.sess != nil {
		ttl = a.sess.LeaseTTL.D()
	}
	if since := time.Since(a.last); since > ttl {
		return fmt.Errorf("no answer from the server for %s, longer than the lease ttl %s: the server has given the member to another agent", since.Round(time.Second), ttl)
	}
	return nil
}

// contact notes an answer from the server.
func (a *agent) contact() {
	a.mu.Lock()
	a.last = time.Now()
	a.mu.Unlock()
}

// heartbeats renews the held leases every heartbeat_every and stops them all
// once the server has been silent for longer than the lease TTL.
func (a *agent) heartbeats(stop <-chan struct{}) {
	for {
		a.mu.Lock()
		every := defaultHeartbeat
		if a.sess != nil {
			every = a.sess.HeartbeatEvery.D()
		}
		a.mu.Unlock()
		t := time.NewTimer(every)
		select {
		case <-stop:
			t.Stop()
			return
		case <-t.C:
		case <-a.hbNow:
			t.Stop()
		case <-a.hbNew:
			t.Stop()
			continue
		}
		a.heartbeat(every)
	}
}

func (a *agent) heartbeat(every time.Duration) {
	a.mu.Lock()
	s, refs, draining := a.sess, a.refs(), a.draining
	announce := draining && !a.drainAnnounced
	if len(refs) == 0 && !announce {
		// Nothing to renew: an idle agent's only request is its held poll.
		a.last = time.Now()
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	if len(refs) > 0 {
		if err := a.expired(); err != nil {
			a.stopAll(err.Error())
			return
		}
	}
	if s == nil {
		return // connecting: the poll loop is on it
	}
	ctx, cancel := context.WithTimeout(a.root, every)
	defer cancel()
	var w api.AgentWork
	err := a.call(ctx, "heartbeat", http.MethodPost, "/v1/agent/heartbeat", api.AgentHeartbeat{AgentID: s.AgentID, Draining: draining, Held: refs}, &w)
	var fe *Error
	switch {
	case err == nil:
		if announce {
			a.mu.Lock()
			a.drainAnnounced = true
			a.mu.Unlock()
		}
		a.stops(w.Stop)
	case errors.As(err, &fe):
		select {
		case a.fatal <- fe:
		default:
		}
	case errors.Is(err, errNotFound):
		a.dropSession()
		select {
		case a.forgot <- struct{}{}:
		default:
		}
	case a.root.Err() == nil:
		a.printf("%v (the leases live until their ttl; the next heartbeat retries)", err)
	}
}

// disconnect says goodbye; the server gives what the agent still held to
// other agents at once.
func (a *agent) disconnect() {
	a.mu.Lock()
	s := a.sess
	a.mu.Unlock()
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), disconnectWait)
	defer cancel()
	if err := a.call(ctx, "disconnect", http.MethodDelete, "/v1/agent/sessions/"+url.PathEscape(s.AgentID), nil, nil); err != nil {
		a.printf("%v (the server takes the agent for lost after the lease ttl)", err)
	}
}

// printf writes one line of the agent's log, the token masked.
func (a *agent) printf(format string, args ...any) {
	line := a.mask.String(fmt.Sprintf(format, args...))
	a.outMu.Lock()
	defer a.outMu.Unlock()
	fmt.Fprintf(a.o.Out, "zof agent: %s\n", line)
}
