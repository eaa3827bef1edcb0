// Package retry is the one retry policy of every HTTP call zof makes: the `zof serve` client
// (client), GitHub (internal/ci/github) and GitLab (internal/ci/gitlab). A transient failure
// is tried again after a full-jitter wait, or after the server's Retry-After when it sent one,
// until the call succeeds, fails for good, or the caller's deadline leaves no room for another
// attempt. Only the deadline decides when to give up, not a count of attempts: an 8 s server
// restart is outlived under a 15 s deadline, and a persistent 503 is retried until the deadline.
//
// Why not hashicorp/go-retryablehttp (already an indirect dependency through GitLab's
// client-go): it bounds retries by a count, wraps the http.Client in its own request type,
// and cannot tell a proxy's HTML page from the zof server's JSON without reading the body in
// its hook; what is needed here is a loop of a few dozen lines bounded by the context's
// deadline, shared by three callers that each classify their own API's answers.
package retry

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zof-ai/zof-ci/internal/wait"
)

// Backoff is "full jitter" (a uniform wait in [0, min(Cap, Base·2ⁿ)), AWS Architecture Blog,
// "Exponential Backoff And Jitter"), so many CI jobs retrying at once do not hit a recovering
// server in lockstep.
const (
	// DefaultBase and DefaultCap bound the full-jitter wait between attempts.
	DefaultBase = 250 * time.Millisecond
	DefaultCap  = 8 * time.Second
	// MaxRetryAfter caps a server's Retry-After (RFC 9110 §10.2.3): a CI job should not sleep
	// for an hour because a proxy said so; the deadline still rules.
	MaxRetryAfter = 2 * time.Minute
	// DefaultBudget bounds a call whose context has no deadline, so that nothing retries
	// forever.
	DefaultBudget = time.Minute
	// FinalMargin is left for the last attempt before the deadline, so that it still has
	// time to connect and be answered.
	FinalMargin = 250 * time.Millisecond
)

// Decision is what a failed attempt says about trying again.
type Decision struct {
	// Retry: the failure may pass (a 5xx, a 429, a refused connection).
	Retry bool
	// After is the server's own wait (Retry-After, a rate limit's reset), 0 when it gave none.
	After time.Duration
}

// Policy is the retry policy. Its zero value is the default: full jitter between DefaultBase
// and DefaultCap, until the context's deadline (DefaultBudget without one).
type Policy struct {
	// Base and Cap bound the full-jitter wait (0: DefaultBase, DefaultCap).
	Base, Cap time.Duration
	// Budget bounds the whole call when the context has no deadline (0: DefaultBudget).
	Budget time.Duration
	// MaxAttempts bounds the attempts (0: no bound but the deadline; 1: never retry).
	MaxAttempts int
	// Sleep waits d or until ctx ends (nil: a timer). Tests pass a fake clock's.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock the deadline is compared with (nil: time.Now; with Sleep replaced,
	// a clock that starts now and moves only by what was slept, so a test that stubs the
	// sleep out still sees the budget run out).
	Now func() time.Time
	// Random returns a uniform value in [0, n) for the jitter (nil: math/rand/v2).
	Random func(n int64) int64
}

// Backoff is the full-jitter wait before retry number attempt (0-based): uniform in
// [0, min(cap, base·2^attempt)). random(n) returns a value in [0, n); nil uses math/rand/v2.
func Backoff(attempt int, base, cap time.Duration, random func(n int64) int64) time.Duration {
	if random == nil {
		random = rand.Int64N
	}
	ceil := cap
	if attempt < 30 && base<<attempt < cap && base<<attempt > 0 {
		ceil = base << attempt
	}
	if ceil <= 0 {
		return 0
	}
	return time.Duration(random(int64(ceil)))
}

func (p Policy) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p Policy) sleep(ctx context.Context, d time.Duration) error {
	if p.Sleep != nil {
		return p.Sleep(ctx, d)
	}
	return wait.Sleep(ctx, d)
}

// Call is one call under the policy: it knows when it started and its deadline.
type Call struct {
	p        Policy
	ctx      context.Context
	deadline time.Time
	attempts int
}

// Start begins a call under the policy with ctx's deadline (or the budget from now).
func (p Policy) Start(ctx context.Context) *Call {
	if p.Now == nil && p.Sleep != nil {
		p.Now, p.Sleep = virtualClock(p.Sleep)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		budget := p.Budget
		if budget <= 0 {
			budget = DefaultBudget
		}
		deadline = p.now().Add(budget)
	}
	return &Call{p: p, ctx: ctx, deadline: deadline}
}

// virtualClock is a clock that starts now and moves by what sleep was asked to wait.
func virtualClock(sleep func(context.Context, time.Duration) error) (func() time.Time, func(context.Context, time.Duration) error) {
	var mu sync.Mutex
	t := time.Now()
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return t
	}
	return now, func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		t = t.Add(max(d, 0))
		mu.Unlock()
		return sleep(ctx, d)
	}
}

// Attempts is how many attempts were reported with Next.
func (c *Call) Attempts() int { return c.attempts }

// Next is told that an attempt failed with d. It returns the wait before the next attempt, or
// false when there is none: d says not to retry, the attempts are used up, the context ended,
// or the server's own wait or the deadline leaves no room for another attempt.
func (c *Call) Next(d Decision) (time.Duration, bool) {
	c.attempts++
	if !d.Retry || c.ctx.Err() != nil || (c.p.MaxAttempts > 0 && c.attempts >= c.p.MaxAttempts) {
		return 0, false
	}
	left := c.deadline.Sub(c.p.now())
	if left <= 0 {
		return 0, false
	}
	if d.After > 0 {
		// The server says it will not be ready before then: if that is past the
		// deadline, waiting would only postpone the same failure.
		after := min(d.After, MaxRetryAfter)
		return after, after < left
	}
	base, cap := c.p.Base, c.p.Cap
	if base <= 0 {
		base = DefaultBase
	}
	if cap <= 0 {
		cap = DefaultCap
	}
	if left <= FinalMargin {
		return 0, false
	}
	// The last attempt goes just before the deadline, not after it.
	return min(Backoff(c.attempts-1, base, cap, c.p.Random), left-FinalMargin), true
}

// Wait sleeps d and reports whether another attempt may follow: false when the context ended
// or the deadline passed meanwhile.
func (c *Call) Wait(d time.Duration) bool {
	if err := c.p.sleep(c.ctx, d); err != nil {
		return false
	}
	return c.ctx.Err() == nil && c.p.now().Before(c.deadline)
}

// Do calls attempt until it succeeds, fails for good, or the policy gives up, and returns the
// last attempt's error and how many attempts were made.
func (p Policy) Do(ctx context.Context, attempt func(ctx context.Context) (Decision, error)) (int, error) {
	c := p.Start(ctx)
	for {
		d, err := attempt(ctx)
		if err == nil {
			return c.attempts + 1, nil
		}
		wait, ok := c.Next(d)
		if !ok || !c.Wait(wait) {
			return c.attempts, err
		}
	}
}

// RetryAfter parses a Retry-After header: delay-seconds or an HTTP date (RFC 9110 §10.2.3),
// capped at MaxRetryAfter; 0 when absent or unreadable.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		if n > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxRetryAfter)
}

// Transport retries below an API client that takes an *http.Client (GitLab's client-go),
// under Policy and the request's context. Classify says whether an answer (or a failure to
// get one) is worth another attempt. A request body is sent again through GetBody; a request
// whose body cannot be replayed is sent once.
type Transport struct {
	Base     http.RoundTripper // nil: http.DefaultTransport
	Policy   Policy
	Classify func(req *http.Request, resp *http.Response, err error) Decision
}

var _ http.RoundTripper = (*Transport)(nil)

// RoundTrip sends req, again and again while the policy allows.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	c := t.Policy.Start(req.Context())
	for {
		resp, err := base.RoundTrip(req)
		d := t.Classify(req, resp, err)
		if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
			return resp, err
		}
		wait, ok := c.Next(d)
		if !ok {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if !c.Wait(wait) {
			if err == nil {
				err = req.Context().Err()
			}
			if err == nil {
				err = context.DeadlineExceeded
			}
			return nil, err
		}
		if req.GetBody != nil {
			body, berr := req.GetBody()
			if berr != nil {
				return nil, berr
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
	}
}
