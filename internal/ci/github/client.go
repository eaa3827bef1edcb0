package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v62/github"

	"github.com/zof-ai/zof-ci/internal/retry"
)

// DefaultBaseURL is GitHub.com's REST API; GitHub Enterprise Server sets
// GITHUB_API_URL (https://HOST/api/v3) instead.
const DefaultBaseURL = "https://api.github.com/"

// requestTimeout bounds one API request, so a hung connection cannot hold a
// report (or the diff) for long; the gate never waits on a report.
const requestTimeout = 30 * time.Second

// NewClient returns a go-github client for token (empty: unauthenticated)
// against baseURL (empty: DefaultBaseURL; tests pass an httptest server's URL).
// httpClient nil uses one with a per-request timeout.
func NewClient(token, baseURL string, httpClient *http.Client) (*gh.Client, error) {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: requestTimeout}
	}
	c := gh.NewClient(httpClient)
	if token != "" {
		c = c.WithAuthToken(token)
	}
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	if !strings.HasSuffix(baseURL, "/") {
		baseURL += "/"
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("GitHub API URL %q is not an http(s) URL: set GITHUB_API_URL to e.g. https://api.github.com", baseURL)
	}
	c.BaseURL = u
	c.UserAgent = "zof-ci"
	return c, nil
}

// Retrying GitHub. Every call goes through internal/retry, the one policy of all of zof's
// HTTP calls: full-jitter backoff, the server's own wait honoured, until the context's
// deadline or, without one, MaxWait. A rate limit that resets later than that is not waited
// for: the caller gets the error at once (the diff counts as unknown, a report degrades)
// instead of the job sleeping toward its own timeout.
const (
	// DefaultMaxRateLimitWait bounds the retrying of a call whose context has no deadline.
	DefaultMaxRateLimitWait = 60 * time.Second
	// resetSlack is added to a reset time: GitHub's clock and ours differ a little.
	resetSlack = time.Second
)

// Retry retries a GitHub request on a rate limit (403 with X-RateLimit-Remaining: 0, a
// secondary limit, or 429, honouring Retry-After and X-RateLimit-Reset) or a 5xx, under the
// policy of internal/retry. Its zero value is ready to use.
type Retry struct {
	// MaxWait bounds the retrying when the context has no deadline; 0 means
	// DefaultMaxRateLimitWait.
	MaxWait time.Duration
	// Sleep waits d or until ctx is done (nil: a timer). Tests replace it; with Now nil,
	// the policy's clock then moves by what was slept (see retry.Policy.Now).
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock X-RateLimit-Reset and the deadline are compared with (nil: time.Now).
	Now func() time.Time
}

// Do calls op until it succeeds, fails in a way retrying cannot fix, or the policy gives up;
// it returns op's last error.
func (r Retry) Do(ctx context.Context, op func() (*gh.Response, error)) error {
	now := r.Now
	if now == nil {
		now = time.Now
	}
	_, err := r.policy().Do(ctx, func(context.Context) (retry.Decision, error) {
		_, err := op()
		if err == nil {
			return retry.Decision{}, nil
		}
		return r.decide(err, now()), err
	})
	return err
}

// policy is the retry policy with r's clock.
func (r Retry) policy() retry.Policy {
	budget := r.MaxWait
	if budget <= 0 {
		budget = DefaultMaxRateLimitWait
	}
	return retry.Policy{Budget: budget, Sleep: r.Sleep, Now: r.Now}
}

// decide says whether a failed GitHub call may pass when tried again, and after how long.
func (r Retry) decide(err error, now time.Time) retry.Decision {
	if IsRateLimited(err) {
		wait, _ := RateLimitWait(err, now)
		return retry.Decision{Retry: true, After: wait}
	}
	if s := StatusCode(err); s >= 500 && s != http.StatusNotImplemented {
		return retry.Decision{Retry: true}
	}
	return retry.Decision{}
}

// response is the HTTP response behind a go-github error, or nil.
func response(err error) *http.Response {
	var rl *gh.RateLimitError
	var ab *gh.AbuseRateLimitError
	var er *gh.ErrorResponse
	switch {
	case errors.As(err, &rl):
		return rl.Response
	case errors.As(err, &ab):
		return ab.Response
	case errors.As(err, &er):
		return er.Response
	}
	return nil
}

// StatusCode is the HTTP status of a failed GitHub request, 0 when the
// request got no answer.
func StatusCode(err error) int {
	if r := response(err); r != nil {
		return r.StatusCode
	}
	return 0
}

// IsRateLimited reports whether a request failed on a primary or secondary
// rate limit: 429, or 403 with X-RateLimit-Remaining: 0 or a Retry-After
// ("Exceeding the rate limit",
// https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api).
func IsRateLimited(err error) bool {
	var rl *gh.RateLimitError
	var ab *gh.AbuseRateLimitError
	if errors.As(err, &rl) || errors.As(err, &ab) {
		return true
	}
	r := response(err)
	if r == nil {
		return false
	}
	switch r.StatusCode {
	case http.StatusTooManyRequests:
		return true
	case http.StatusForbidden:
		return r.Header.Get("X-RateLimit-Remaining") == "0" || r.Header.Get("Retry-After") != ""
	}
	return false
}

// RateLimitWait is how long to wait before retrying a rate-limited request:
// Retry-After (seconds) first, then X-RateLimit-Reset (epoch seconds) minus
// now. known is false when the response says neither.
func RateLimitWait(err error, now time.Time) (wait time.Duration, known bool) {
	var ab *gh.AbuseRateLimitError
	if errors.As(err, &ab) && ab.RetryAfter != nil && ab.Response != nil && ab.Response.Header.Get("Retry-After") != "" {
		return max(*ab.RetryAfter, 0), true
	}
	r := response(err)
	if r == nil {
		return 0, false
	}
	if v := r.Header.Get("Retry-After"); v != "" {
		if s, perr := strconv.Atoi(strings.TrimSpace(v)); perr == nil && s >= 0 {
			return time.Duration(s) * time.Second, true
		}
		if t, perr := http.ParseTime(v); perr == nil {
			return max(t.Sub(now), 0), true
		}
	}
	var rl *gh.RateLimitError
	if errors.As(err, &rl) && !rl.Rate.Reset.Time.IsZero() {
		return max(rl.Rate.Reset.Time.Sub(now)+resetSlack, 0), true
	}
	if v := r.Header.Get("X-RateLimit-Reset"); v != "" {
		if s, perr := strconv.ParseInt(strings.TrimSpace(v), 10, 64); perr == nil {
			return max(time.Unix(s, 0).Sub(now)+resetSlack, 0), true
		}
	}
	return 0, false
}

// IsPermissionDenied reports whether GitHub refused the request for lack of
// permission rather than a rate limit: a 403 (a read-only GITHUB_TOKEN on a
// fork pull request, or a workflow without `checks: write`: "Resource not
// accessible by integration"), or a 404 GitHub gives instead of 403 where it
// hides the resource.
func IsPermissionDenied(err error) bool {
	if IsRateLimited(err) {
		return false
	}
	s := StatusCode(err)
	return s == http.StatusForbidden || s == http.StatusNotFound || s == http.StatusUnauthorized
}
