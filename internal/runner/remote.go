package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/client"
	"github.com/zof-ai/zof-ci/internal/ci"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/reporters/console"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/secret"
)

// Remote following (docs/cli.md "Following a run").
const (
	// DefaultPollInterval is --poll-interval's default.
	DefaultPollInterval = 2 * time.Second
	// maxStreamFailures: this many stream attempts in a row that deliver nothing, and the
	// follower polls instead.
	maxStreamFailures = 3
	// reconnectBase and reconnectCap bound the full-jitter wait before a reconnect or a
	// poll after a failure.
	reconnectBase = 250 * time.Millisecond
	reconnectCap  = 10 * time.Second
	// streamRetryEvery: while polling because the stream failed, try it again this often.
	streamRetryEvery = 30 * time.Second
	// healthyStream: a connection that stayed open this long was a working stream that
	// dropped (a proxy's idle timeout, a restart), not a failing one.
	healthyStream = 5 * time.Second
)

// RemoteOptions are what `zof run --server` adds to RunOptions.
type RemoteOptions struct {
	Client *client.Client
	// IdempotencyKey overrides the key derived from the CI context.
	IdempotencyKey string
	Supersede      bool
	// Detach submits, prints the run id on stdout and returns 0.
	Detach bool
	// CI is the detected CI context (ci.Detect).
	CI ci.Context
	// Coverage sends the coverage map of the checkout, by module, with the
	// run (api.RunRequest.Coverage, docs/coverage.md); outside a checkout
	// the run goes without it.
	Coverage bool
	// CoverageOff is how the user turns Coverage off, named in the line
	// that says why none was sent (default "--coverage=false").
	CoverageOff string
}

// RunRemote plans the run, submits it to the server (idempotently), follows it live, writes
// the reports and returns the gate's verdict, like RunEmbedded.
//
// Choices where cli.md is silent:
//   - The idempotency key is IdempotencyKey of the CI context when it names one job
//     execution (ci.Context.HasIdentity), else random (RandomKey): on a laptop a derived key
//     would attach today's run to yesterday's. --idempotency-key overrides both.
//   - The --timeout clock starts when the command starts; a create still failing at the
//     deadline is the client's error (the service could not be reached), not a timeout.
//   - With --detach only the run id goes to stdout (RUN=$(zof run --detach ...)); the
//     headline and the key go to stderr.
//   - Ctrl-C while the create is in flight re-sends the create with the same key (it
//     attaches to the run if it was made) and cancels that run.
//   - Healthy polls wait uniformly in [interval/2, 3·interval/2): the mean is the interval
//     asked for and many clients spread out; after failures the wait is full-jitter
//     exponential backoff (capped), or the server's Retry-After.
//   - While polling, changes are printed with the console's own lines (the same a stream
//     gives), so a log reads the same either way; the event log handed to reporters then
//     has gaps, the snapshot does not.
func RunRemote(ctx context.Context, o RunOptions, r RemoteOptions) (gate.Verdict, error) {
	start := time.Now()
	if r.Client == nil {
		return gate.Verdict{}, gate.Usagef("no execution service: set --server or ZOF_SERVER")
	}
	plan, failOn, err := planAndGate(ctx, o)
	if err != nil {
		return gate.Verdict{}, err
	}
	mask := secret.NewMasker(plan.Request.Secrets)
	// With --detach stdout carries only the run id, for RUN=$(zof run --detach ...).
	info := o.Stdout
	if r.Detach {
		info = o.Stderr
	}
	fmt.Fprintln(info, mask.String(planHeadline(plan)))
	var extra []report.Reporter
	if !r.Detach {
		// A detached run is not followed here: nothing would complete what a Starter began.
		extra = extraReporters(o, plan, mask)
	}
	if plan.Empty() {
		v := emptyPlan(info, plan)
		reportEmpty(ctx, o, plan, v, mask, extra)
		return v, nil
	}

	req := plan.Request
	c := r.CI
	if c.Provider == "" {
		c.Provider = ci.Local
	}
	dir := filepath.Dir(o.Select.SuitePath)
	if c.SHA == "" {
		c.SHA = gitOutput(dir, o.Select.Environ, "rev-parse", "HEAD")
	}
	branch := c.Branch()
	if branch == "" && c.PR == 0 && c.Provider == ci.Local {
		if b := gitOutput(dir, o.Select.Environ, "rev-parse", "--abbrev-ref", "HEAD"); b != "HEAD" {
			branch = b
		}
	}
	req.Source = requestSource(c)
	req.ConcurrencyGroup = gate.ConcurrencyGroup(req.Project, req.Environment.Name, c.PR, branch)
	req.Supersede = r.Supersede
	if r.Supersede && req.ConcurrencyGroup == "" {
		fmt.Fprintln(info, "notice: --supersede has no effect: no pull request or branch is known, so the run has no concurrency group")
	}
	if c.Job != "" || c.Shard != "" {
		req.Labels = map[string]string{}
		if c.Job != "" {
			req.Labels["ci.job"] = c.Job
		}
		if c.Shard != "" {
			req.Labels["ci.shard"] = c.Shard
		}
	}

	key, why := r.IdempotencyKey, "from --idempotency-key"
	switch {
	case key != "":
	case c.HasIdentity():
		key = gate.IdempotencyKey(gate.KeyInput{Project: req.Project, Environment: req.Environment.Name, Cases: plan.SelectedIDs(), SuiteDigest: plan.Suite.Digest, SHA: c.SHA, CI: c})
		why = fmt.Sprintf("derived from %s run %s", c.Provider, c.RunID)
		if c.Attempt > 0 {
			why += fmt.Sprintf(" attempt %d", c.Attempt)
		}
		if c.Job != "" {
			why += ", job " + c.Job
		}
		if c.Shard != "" {
			why += ", shard " + c.Shard
		}
	default:
		key = gate.RandomKey()
		why = "random: no CI run identity, so every invocation starts a new run"
	}
	fmt.Fprintf(info, "idempotency key: %s (%s)\n", key, why)
	if r.Coverage {
		off := r.CoverageOff
		if off == "" {
			off = "--coverage=false"
		}
		req.Coverage = coverageSummary(ctx, o, plan, mask, info, off)
	}

	deadline := start.Add(o.Timeout)
	cctx, cancel := context.WithDeadline(ctx, deadline)
	run, replayed, err := r.Client.Create(cctx, req, key)
	if err != nil && req.Coverage != nil && coverageRefused(err) {
		// An older zof serve, or one with other bounds: the run matters, the map does not.
		fmt.Fprintln(info, "coverage: not sent: the server does not accept it (an older zof serve?); submitting the run without it")
		req.Coverage = nil
		run, replayed, err = r.Client.Create(cctx, req, key)
	}
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return interruptedSubmit(o, r, req, key, info), nil
		}
		return gate.Verdict{}, err
	}
	url := run.URL
	if url == "" {
		url = r.Client.RunURL(run.ID)
	}
	if replayed {
		fmt.Fprintf(info, "attached to run %s: the idempotency key was used before (a retried step); %s\n", run.ID, url)
	} else {
		fmt.Fprintf(info, "submitted run %s to %s: %s\n", run.ID, r.Client.Server(), url)
	}
	if r.Detach {
		fmt.Fprintln(o.Stdout, run.ID)
		return gate.Verdict{Kind: gate.Passed}, nil
	}
	if run.URL == "" {
		run.URL = url
	}
	if run.IdempotencyKey == "" {
		run.IdempotencyKey = key
	}
	startReporters(ctx, o, run, extra)
	return followRemote(ctx, o, r.Client, run, failOn, mask, deadline, extra)
}

// interruptedSubmit handles Ctrl-C while the create was in flight: the run may exist. Sending
// the create again with the same key attaches to it if it does (and creates it if it does
// not: it is then cancelled at once, which is the same outcome), so it can be cancelled.
func interruptedSubmit(o RunOptions, r RemoteOptions, req *api.RunRequest, key string, info io.Writer) gate.Verdict {
	interrupted := gate.Verdict{Kind: gate.Interrupted}
	if !o.CancelOnInterrupt {
		fmt.Fprintf(info, "interrupted while submitting: the run may have started and goes on (--cancel-on-interrupt=false); zof runs lists it\n")
		return interrupted
	}
	wait := o.StopWait
	if wait <= 0 {
		wait = remoteStopWait
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	run, _, err := r.Client.Create(ctx, req, key)
	if err == nil {
		_, err = r.Client.Cancel(ctx, run.ID, "interrupted (SIGINT/SIGTERM)")
		var ce *client.Error
		if errors.As(err, &ce) && ce.Status == http.StatusConflict {
			err = nil // it had already finished
		}
	}
	if err != nil {
		fmt.Fprintf(info, "interrupted while submitting; could not make sure the run does not go on: %v\n", err)
		return interrupted
	}
	fmt.Fprintf(info, "interrupted while submitting: run %s cancelled\n", run.ID)
	return interrupted
}

// WatchOptions are what `zof watch` and `zof rerun --follow` need besides RunOptions.
type WatchOptions struct {
	Client *client.Client
	RunID  string
}

// Watch attaches to an existing run: the same following, reports and verdict as
// RunRemote. fail_on is o.FailOn, or all four outcomes.
func Watch(ctx context.Context, o RunOptions, w WatchOptions) (gate.Verdict, error) {
	start := time.Now()
	failOn, err := gate.ParseFailOn(o.FailOn)
	if err != nil {
		return gate.Verdict{}, err
	}
	gctx, cancel := context.WithDeadline(ctx, start.Add(o.Timeout))
	run, err := w.Client.Get(gctx, w.RunID)
	cancel()
	if err != nil {
		return gate.Verdict{}, err
	}
	url := run.URL
	if url == "" {
		url = w.Client.RunURL(run.ID)
	}
	fmt.Fprintf(o.Stdout, "following run %s (%s on %s, %s) on %s: %s\n", run.ID, run.Project, run.Environment, run.Status.Display(), w.Client.Server(), url)
	return followRemote(ctx, o, w.Client, run, failOn, secret.NewMasker(nil), start.Add(o.Timeout), nil)
}

// followRemote follows a server's run to its verdict and writes the reports.
func followRemote(ctx context.Context, o RunOptions, c *client.Client, run *api.Run, failOn []string, mask *secret.Masker, deadline time.Time, extra []report.Reporter) (gate.Verdict, error) {
	con, err := console.NewConsole(report.Options{Out: o.Stdout, TTY: o.TTY, Color: o.Color, GitHubActions: o.GitHubActions, Mask: mask, Now: o.Now})
	if err != nil {
		return gate.Verdict{}, err
	}
	url := run.URL
	if url == "" {
		url = c.RunURL(run.ID)
	}
	stopWait := o.StopWait
	if stopWait <= 0 {
		stopWait = remoteStopWait
	}
	src := newRemoteSource(c, run.ID, o.NoStream, o.PollInterval)
	if o.Sleep != nil {
		src.sleep = o.Sleep
	}
	out := follow(ctx, src, con, followOptions{
		RunID:             run.ID,
		URL:               url,
		Timeout:           o.Timeout,
		Deadline:          deadline,
		CancelOnInterrupt: o.CancelOnInterrupt,
		CancelOnTimeout:   o.CancelOnTimeout,
		StopWait:          stopWait,
		StuckAfter:        o.StuckAfter,
		Now:               o.Now,
	})
	if out.Run.ID == "" {
		out.Run.ID = run.ID
	}
	if out.Run.URL == "" {
		out.Run.URL = url
	}
	if out.Run.IdempotencyKey == "" {
		out.Run.IdempotencyKey = run.IdempotencyKey
	}
	v := gate.Judge(out.Outcome, failOn)
	res := &report.Result{Run: out.Run, Events: out.events, Gate: v.Kind, Exit: o.ExitOf(v), Verdict: v.Line, Notices: v.Notices, Shadow: gate.ShadowOf(out.Run, failOn)}
	res.Artifacts = collectArtifacts(ctx, o, serverArtifacts{c}, out.Run, mask)
	writeReports(context.WithoutCancel(ctx), res, con, o, mask, extra)
	return v, nil
}

// remoteSource follows a server's run: the event stream first, resumed after a drop from
// the last event; polling when the stream fails repeatedly, goes silent or is refused; back
// to the stream when the server has recovered.
type remoteSource struct {
	c        *client.Client // one attempt per call: this loop does the retrying, up to the deadline
	canceler *client.Client // retries: a cancel must get through
	id       string
	noStream bool
	poll     time.Duration
	sleep    func(ctx context.Context, d time.Duration) error
	random   func(n int64) int64
	now      func() time.Time
}

var _ source = (*remoteSource)(nil)

func newRemoteSource(c *client.Client, id string, noStream bool, poll time.Duration) *remoteSource {
	if poll <= 0 {
		poll = DefaultPollInterval
	}
	return &remoteSource{c: c.WithRetries(0), canceler: c, id: id, noStream: noStream, poll: poll, sleep: client.Sleep, now: time.Now}
}

func (s *remoteSource) cancel(ctx context.Context, reason string) error {
	_, err := s.canceler.Cancel(ctx, s.id, reason)
	var ce *client.Error
	if errors.As(err, &ce) && ce.Status == http.StatusConflict {
		return nil // already terminal
	}
	return err
}

func (s *remoteSource) snapshot(ctx context.Context) (*api.Run, error) {
	return s.canceler.Get(ctx, s.id)
}

// watch is the stream/poll state machine; see remoteSource.
func (s *remoteSource) watch(ctx context.Context, after int64, ch chan<- change) error {
	send := func(c change) bool {
		select {
		case ch <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}
	var (
		last      = after
		streaming = !s.noStream
		failures  int       // stream attempts in a row that delivered nothing
		pollFails int       // polls in a row that failed
		retryAt   time.Time // when polling tries the stream again (zero: never)
		down      bool      // the last poll failed: the server itself was unreachable
		fellBack  bool      // the person was told the follower polls
	)
	for ctx.Err() == nil {
		if streaming {
			opened := s.now()
			progressed, err := s.streamOnce(ctx, &last, send)
			if err == nil {
				return nil // the end event: the run is terminal and every event was delivered
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if fatal(err) {
				return err
			}
			switch {
			case progressed || s.now().Sub(opened) >= healthyStream:
				failures = 0
				if progressed && fellBack {
					fellBack = false
					send(change{notice: "event stream available again: following live"})
				}
			case errors.Is(err, client.ErrStreamEnded) || errors.Is(err, client.ErrGap) || errors.Is(err, client.ErrBadEvent) || errors.Is(err, client.ErrSilent):
				failures++ // the server answered: reachable, but the stream is no good
			default:
				failures++
				send(change{fault: err})
			}
			var ce *client.Error
			refused := errors.As(err, &ce) && ce.Status == http.StatusTooManyRequests
			if refused || errors.Is(err, client.ErrSilent) || failures >= maxStreamFailures {
				streaming = false
				retryAt = time.Time{}
				if !errors.Is(err, client.ErrSilent) {
					// A stream that stays silent is a buffering proxy: it will not get better.
					retryAt = s.now().Add(streamRetryEvery)
				}
				if !fellBack {
					fellBack = true
					send(change{notice: fmt.Sprintf("stream unavailable (%v): polling every %s", err, s.poll)})
				}
				continue
			}
			if failures == 0 {
				continue // a working stream dropped: reconnect at once from the last event
			}
			if s.sleep(ctx, wait(failures-1, err, s.random)) != nil {
				return ctx.Err()
			}
			continue
		}

		run, err := s.c.Get(ctx, s.id)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if fatal(err) {
				return err
			}
			down = true
			pollFails++
			send(change{fault: err})
			if s.sleep(ctx, wait(pollFails-1, err, s.random)) != nil {
				return ctx.Err()
			}
			continue
		}
		pollFails = 0
		w := api.WaitReason{}
		if run.Wait != nil {
			w = *run.Wait
		}
		send(change{wait: &w})
		if run.LastSeq > last {
			last = max(last, run.LastSeq)
			if !send(change{snap: run}) {
				return ctx.Err()
			}
		} else {
			send(change{ok: true})
		}
		if run.Status.Terminal() {
			return nil
		}
		if !s.noStream && (down || (!retryAt.IsZero() && !s.now().Before(retryAt))) {
			// The server is back, or it is time to try the stream again: one attempt; if it
			// fails, polling resumes without another message.
			streaming, failures, down = true, maxStreamFailures-1, false
			retryAt = s.now().Add(streamRetryEvery)
			continue
		}
		down = false
		if s.sleep(ctx, pollWait(s.poll, s.random)) != nil {
			return ctx.Err()
		}
	}
	return ctx.Err()
}

// streamOnce reads one connection of the stream, sending each new event. It returns nil
// after the end event, else why the connection ended; progressed tells whether any event came.
func (s *remoteSource) streamOnce(ctx context.Context, last *int64, send func(change) bool) (progressed bool, err error) {
	st, err := s.c.Events(ctx, s.id, *last, client.WithWait(func(w api.WaitReason) { send(change{wait: &w}) }))
	if err != nil {
		return false, err
	}
	defer st.Close()
	send(change{ok: true})
	for {
		e, err := st.Next()
		if err == io.EOF {
			return progressed, nil
		}
		if err != nil {
			return progressed, err
		}
		progressed = true
		*last = e.Seq
		if !send(change{event: &e}) {
			return progressed, ctx.Err()
		}
	}
}

// fatal errors end following: the service answered and refused (a revoked token, a run it
// no longer knows). Everything else is retried until the deadline.
func fatal(err error) bool {
	var ce *client.Error
	return errors.As(err, &ce) && !ce.Temporary
}

// wait is the full-jitter backoff before retry n, or the server's Retry-After.
func wait(n int, err error, random func(int64) int64) time.Duration {
	var ce *client.Error
	if errors.As(err, &ce) && ce.RetryAfter > 0 {
		return ce.RetryAfter
	}
	return client.Backoff(n, reconnectBase, reconnectCap, random)
}

// pollWait is the pause between healthy polls: uniform in [interval/2, 3·interval/2), so the
// mean is the interval the person asked for while many clients spread out over time.
func pollWait(interval time.Duration, random func(int64) int64) time.Duration {
	if random == nil {
		return interval/2 + client.Backoff(0, interval, interval, nil)
	}
	return interval/2 + time.Duration(random(int64(interval)))
}
