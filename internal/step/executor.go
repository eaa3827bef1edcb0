package step

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"sync"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/secret"
)

const (
	// DefaultMaxRedirects is how many redirects an http step follows; more is
	// treated as a loop (the same limit as Go's and browsers' order of magnitude).
	DefaultMaxRedirects = 10
	// DefaultKillGrace is how long a run step's process group gets between
	// SIGTERM and SIGKILL. lifecycle.md: a cancelled run stops within 2 seconds,
	// and the engine abandons a step that has not returned 1.5s after its context
	// ended (engine.DefaultCancelGrace): the group must be dead before that, or
	// zof could exit with the group still alive.
	DefaultKillGrace = 1 * time.Second
	// DefaultServiceKillGrace is the same grace for the environment's service,
	// which is stopped once, after the last case, and may need to flush.
	DefaultServiceKillGrace = 2 * time.Second
	// DefaultUserAgent identifies zof's requests in the service's access log.
	DefaultUserAgent = "zof-ci"
	// deadlineSlack tells a step timeout from an earlier case deadline: the
	// engine derives both just before Run, so they differ by far less.
	deadlineSlack = 50 * time.Millisecond
)

// ExecutorOptions tunes an Executor; zero values take the defaults.
type ExecutorOptions struct {
	// Transport sends the http steps' requests; nil builds one for this
	// Executor (no proxy, connections reused across steps).
	Transport http.RoundTripper
	// TLSConfig is used by the built transport (e.g. a private CA); nil is the system roots.
	TLSConfig    *tls.Config
	MaxBody      int64         // bytes of a response body read (DefaultMaxBody)
	MaxOutput    int           // bytes of a command's output kept (DefaultMaxOutput)
	MaxRedirects int           // redirects followed (DefaultMaxRedirects); negative follows none and checks the 3xx
	KillGrace    time.Duration // SIGTERM → SIGKILL grace for run steps (DefaultKillGrace)
	UserAgent    string        // default User-Agent of http steps (DefaultUserAgent)
	Groups       GroupRecorder // records run steps' process groups while they run (zof serve); nil records nothing
}

// Executor runs steps. It is safe for concurrent use; its http.Client is
// shared by every step so connections are reused.
type Executor struct {
	client *http.Client
	opts   ExecutorOptions
	// userAgent is the User-Agent header value every request shares (see
	// jsonContentType: nothing writes into a header's value slice).
	userAgent []string
	inFlight  sync.WaitGroup
}

// allowURLKey carries a step's Input.AllowURL to the client's redirect check.
type allowURLKey struct{}

// errRedirectRefused is a redirect to a URL the step may not reach.
type errRedirectRefused struct {
	url string
	err error
}

func (e errRedirectRefused) Error() string {
	return fmt.Sprintf("refused to follow a redirect to %s: %v", e.url, e.err)
}

// errTooManyRedirects carries the count for the step's message.
type errTooManyRedirects struct{ n int }

func (e errTooManyRedirects) Error() string {
	return fmt.Sprintf("stopped after %d redirects", e.n)
}

// NewExecutor returns an Executor with its own http.Client.
func NewExecutor(opts ExecutorOptions) *Executor {
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.MaxOutput <= 0 {
		opts.MaxOutput = DefaultMaxOutput
	}
	if opts.MaxRedirects == 0 {
		opts.MaxRedirects = DefaultMaxRedirects
	}
	if opts.KillGrace <= 0 {
		opts.KillGrace = DefaultKillGrace
	}
	if opts.UserAgent == "" {
		opts.UserAgent = DefaultUserAgent
	}
	rt := opts.Transport
	if rt == nil {
		rt = newTransport(opts.TLSConfig)
	}
	maxRedirects := opts.MaxRedirects
	return &Executor{
		opts:      opts,
		userAgent: []string{opts.UserAgent},
		client: &http.Client{
			Transport: rt,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if maxRedirects < 0 {
					return http.ErrUseLastResponse // the 3xx itself is what the step checks
				}
				if len(via) > maxRedirects {
					return errTooManyRedirects{maxRedirects}
				}
				if allow, ok := req.Context().Value(allowURLKey{}).(func(*url.URL) error); ok {
					if err := allow(req.URL); err != nil {
						return errRedirectRefused{url: req.URL.Redacted(), err: err}
					}
				}
				return nil
			},
		},
	}
}

// newTransport is a transport with the usual dial and handshake limits; the
// overall bound of a step is its context.
func newTransport(tc *tls.Config) *http.Transport {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:           d.DialContext,
		TLSClientConfig:       tc,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Close drops idle connections; the Executor stays usable.
func (e *Executor) Close() {
	e.client.CloseIdleConnections()
}

// Run executes one step. It never panics and never outlives ctx by more than
// the kill grace of a run step: a deadline on ctx fails the step ("timed
// out"), any other cancellation marks it cancelled. A step Timeout is applied
// here too, so callers that only pass the case deadline get it right.
func (e *Executor) Run(ctx context.Context, s api.Step, in Input) (out Output) {
	e.inFlight.Add(1)
	defer e.inFlight.Done()
	start := time.Now()
	stepTimeout := s.Timeout.D()
	// stepBound: the step's own timeout is what will end it (not a case deadline).
	stepBound := false
	if stepTimeout > 0 {
		dl, ok := ctx.Deadline()
		stepBound = !ok || time.Until(dl) >= stepTimeout-deadlineSlack
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, stepTimeout)
		defer cancel()
	}
	defer func() {
		if r := recover(); r != nil {
			out = Output{Status: api.StepFailed, Failure: &api.Failure{
				Message: fmt.Sprintf("internal error in zof while running the step: %v (please report this with the log)", r),
			}, Output: in.Mask.String(string(debug.Stack()))}
		}
		out.Duration = time.Since(start)
	}()

	sub := &substituter{vars: in.Vars, captures: in.Captures}
	var r result
	switch {
	case s.HTTP != nil && s.Run != nil:
		r = failed("the step has both http and run; a step is exactly one of them")
	case s.HTTP != nil:
		r = e.runHTTP(ctx, s, in, sub)
	case s.Run != nil:
		r = e.runCommand(ctx, s, in, sub)
	default:
		r = failed("the step has neither http nor run; give it one of them")
	}

	out = Output{Status: api.StepPassed, Output: r.log, Captures: r.captures}
	switch {
	case r.interrupted && deadlineHit(ctx):
		msg := "timed out: the case timeout ran out during this step; raise the case's `timeout:` or find what is slow"
		if stepBound {
			msg = fmt.Sprintf("timed out after %s (the step's timeout); raise `timeout:` on the step or find what is slow", stepTimeout)
		}
		if r.doing != "" {
			msg += " — " + r.doing
		}
		out.Status, out.Failure, out.Captures = api.StepFailed, &api.Failure{Message: msg}, nil
	case r.interrupted:
		out.Status, out.Failure, out.Captures = api.StepCancelled, &api.Failure{Message: "cancelled"}, nil
	case r.failure != nil:
		out.Status, out.Failure, out.Captures = api.StepFailed, r.failure, nil
	}
	if out.Failure != nil {
		out.Failure = &api.Failure{
			Message:  in.Mask.String(out.Failure.Message),
			Expected: in.Mask.String(out.Failure.Expected),
			Actual:   in.Mask.String(out.Failure.Actual),
		}
	}
	out.Output = in.Mask.String(out.Output)
	if out.Status == api.StepFailed {
		out.Evidence = r.evidence(in.Mask, out.Output)
	}
	return out
}

// expired reports whether ctx is done or past its deadline. An I/O deadline
// derived from ctx (a dial, a read) can fire a moment before ctx itself
// reports done; such an error is the timeout, not a fault of the service.
func expired(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// deadlineHit tells a timeout from a cancellation of an expired ctx.
func deadlineHit(ctx context.Context) bool {
	if err := ctx.Err(); err != nil {
		return errors.Is(err, context.DeadlineExceeded)
	}
	return expired(ctx)
}

// result is what an http or run step reports to Run.
type result struct {
	failure     *api.Failure
	log         string
	captures    map[string]string
	interrupted bool   // ctx ended before the step finished
	doing       string // what the step was waiting for, for a timeout message

	// What the evidence of a failure is made of, only when the step fails
	// (a passing step pays for these pointers, nothing more).
	req       *http.Request // an http step's request, once built
	line      string        // its request line, from masked parts
	resp      response      // its response, when hasResp (a copy: a pointer would move every response to the heap)
	hasResp   bool
	command   bool // a run step that started: its log is the evidence
	outputCut bool // the command wrote more than the tail kept
}

// evidence is the evidence of the failed step r reports; output is the
// step's final (masked) log.
func (r *result) evidence(m *secret.Masker, output string) []engine.Evidence {
	switch {
	case r.req != nil:
		var resp *response
		if r.hasResp {
			resp = &r.resp
		}
		return httpEvidence(m, r.line, r.req, resp)
	case r.command:
		return commandEvidence(output, r.outputCut)
	}
	return nil
}

func failed(msg string) result {
	return result{failure: &api.Failure{Message: msg}}
}

// Wait blocks until every step in flight has returned (its process group
// killed), or ctx ends. A caller about to exit calls it after the engine has
// stopped, so that no step a run abandoned outlives zof.
func (e *Executor) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		e.inFlight.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("steps still running after %w", ctx.Err())
	}
}
