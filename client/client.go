// Package client is the typed HTTP client of the `zof serve` API (docs/api.md): create
// (idempotent), get, list, cancel, rerun and the live event stream. Transient faults (connection
// errors, 5xx, 429, a proxy's HTML page) are retried with capped full-jitter backoff; every error
// is an *Error whose Kind says what it means (unavailable, unauthorized, invalid).
package client

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/retry"
	"github.com/zof-ai/zof-ci/internal/sanitize"
	"github.com/zof-ai/zof-ci/internal/wait"
)

// Limits and retry policy. Every call retries a transient failure under the one policy of
// internal/retry: full-jitter backoff between BackoffBase and BackoffCap (AWS Architecture
// Blog, "Exponential Backoff And Jitter"), the server's Retry-After honoured, until the
// context's deadline (retry.DefaultBudget when it has none). Only the deadline ends the
// retrying, not a count of attempts.
const (
	// BackoffBase and BackoffCap bound the full-jitter wait between attempts.
	BackoffBase = retry.DefaultBase
	BackoffCap  = retry.DefaultCap
	// MaxRetryAfter caps a server's Retry-After (429/503, RFC 9110 §10.2.3): a CI job
	// should not sleep for an hour because a proxy said so; the deadline still rules.
	MaxRetryAfter = retry.MaxRetryAfter
	// RequestTimeout bounds one attempt of a unary call (not a stream).
	RequestTimeout = 30 * time.Second
	// MaxResponseBytes bounds a JSON response (a run with many members and step outputs,
	// a page of runs); the server's own request limit is 5 MiB (api.md).
	MaxResponseBytes = 32 << 20
	// maxErrorBytes bounds what is read of an error body (a problem, a proxy's page).
	maxErrorBytes = 64 << 10
	// maxEventBytes bounds one event of the stream (run.created carries the whole snapshot).
	maxEventBytes = 8 << 20
	// KeepaliveInterval is the server's promise: a comment at least every 15 s (api.md).
	KeepaliveInterval = 15 * time.Second
	// DefaultStreamSilence is how long a stream may say nothing at all (no event, no
	// keepalive) before it is treated as dead: twice the keepalive interval (cli.md).
	DefaultStreamSilence = 2 * KeepaliveInterval
)

// Options tune a Client. Zero values take the defaults.
type Options struct {
	// HTTPClient sends the requests (default: a client over http.DefaultTransport). Its
	// Timeout must be zero: a stream lasts as long as the run.
	HTTPClient *http.Client
	// UserAgent is sent on every request (default "zof").
	UserAgent string
	// MaxRetries bounds how often a transient failure is retried (0: no bound but the
	// context's deadline; negative: never).
	MaxRetries int
	// StreamSilence: see DefaultStreamSilence.
	StreamSilence time.Duration
	// Sleep waits between attempts (default: a timer that ends early with ctx).
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock for Retry-After dates (default time.Now).
	Now func() time.Time
	// Random returns a uniform value in [0, n) for the jitter (default math/rand/v2).
	Random func(n int64) int64
}

// Client talks to one `zof serve`. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	display string // the base URL as printed: no user info
	token   string
	hc      *http.Client
	opts    Options
	retries int // unbounded: until the deadline
}

// unbounded retries until the deadline.
const unbounded = -1

// New returns a client for the server at baseURL ("https://zof.example.com", optionally with a
// path prefix) authenticating with token (may be empty for servers that need none).
func New(baseURL, token string, o Options) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, invalidf("--server %q: use the service's base URL, e.g. https://zof.example.com (check --server / ZOF_SERVER)", redactRaw(baseURL))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, invalidf("--server %s: the base URL takes no query or fragment", u.Redacted())
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	if strings.ContainsAny(token, "\r\n") {
		return nil, invalidf("the token contains a line break: check --token / ZOF_TOKEN")
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.UserAgent == "" {
		o.UserAgent = "zof"
	}
	if o.StreamSilence <= 0 {
		o.StreamSilence = DefaultStreamSilence
	}
	if o.Sleep == nil {
		o.Sleep = Sleep
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Random == nil {
		o.Random = rand.Int64N
	}
	retries := o.MaxRetries
	switch {
	case retries == 0:
		retries = unbounded
	case retries < 0:
		retries = 0
	}
	display := *u
	display.User = nil
	return &Client{base: u, display: display.String(), token: token, hc: o.HTTPClient, opts: o, retries: retries}, nil
}

// WithRetries returns a copy of c that retries a transient failure at most n times (0: never);
// the follower uses it to run its own loop, which lasts until the deadline.
func (c *Client) WithRetries(n int) *Client {
	cp := *c
	cp.retries = max(n, 0)
	return &cp
}

// Server is the base URL as shown to a person (no user info, never the token).
func (c *Client) Server() string { return c.display }

// RunURL is a run's page in the server's web console (/runs/{id}), printed so a person can
// find it when the server sets no public_url (Run.URL is then empty). The API's own address of
// the run stays /v1/runs/{id}.
func (c *Client) RunURL(id string) string { return c.display + "/runs/" + url.PathEscape(id) }

// Sleep waits d, or until ctx ends (then it returns ctx's error).
func Sleep(ctx context.Context, d time.Duration) error { return wait.Sleep(ctx, d) }

// Backoff is the full-jitter wait before retry number attempt (0-based): uniform in
// [0, min(cap, base·2^attempt)). random(n) returns a value in [0, n); nil uses math/rand/v2.
func Backoff(attempt int, base, cap time.Duration, random func(n int64) int64) time.Duration {
	return retry.Backoff(attempt, base, cap, random)
}

// Error is a failed call: what was attempted, how the server answered, and the exit code.
type Error struct {
	// Op is what was attempted ("create a run", "get run r_1").
	Op string
	// Status is the HTTP status, 0 when no response came.
	Status int
	// Problem is the server's problem details, when it sent some.
	Problem *api.Problem
	// RetryAfter is the server's Retry-After on 429/503, else 0.
	RetryAfter time.Duration
	// Temporary errors may succeed when tried again (5xx, 429, connection errors,
	// bodies that are not our JSON); the others will not (401, 404, 409, 422).
	Temporary bool
	// Kind is what the error means for the caller: the service is unavailable,
	// refused the credentials, or refused the request as invalid.
	Kind ErrorKind
	// Msg is the sentence for the person; Err the cause, if any.
	Msg string
	Err error
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the cause (a network error, a context error).
func (e *Error) Unwrap() error { return e.Err }

// ErrorKind is what an Error means, so a caller can act on it (the zof CLI
// maps each kind to its exit code).
type ErrorKind int

const (
	// KindUnavailable: the service could not be reached, or answered with
	// something that is not the API.
	KindUnavailable ErrorKind = iota + 1
	// KindUnauthorized: the service refused the credentials (401, 403).
	KindUnauthorized
	// KindInvalid: the request is wrong and sending it again will not help:
	// the service refused it (400, 404, 409, 422) or it could not be built
	// (the base URL, the token or the idempotency key is malformed).
	KindInvalid
)

// String names the kind.
func (k ErrorKind) String() string {
	switch k {
	case KindUnavailable:
		return "unavailable"
	case KindUnauthorized:
		return "unauthorized"
	case KindInvalid:
		return "invalid"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// invalidf is a KindInvalid error made here, before any request is sent.
func invalidf(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Kind: KindInvalid, Msg: err.Error(), Err: errors.Unwrap(err)}
}

// IsTemporary reports whether err is a failure that may pass when tried again.
func IsTemporary(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Temporary
}

// call is one API request.
type call struct {
	op     string
	method string
	path   string // below the base URL, already escaped
	query  url.Values
	body   []byte
	header http.Header
	runID  string // for "run R not found"
	// safe: a retry cannot do the work twice (GET, an idempotent create, cancel). Unsafe
	// calls are retried only when the request surely did not reach the handler.
	safe bool
	want []int
}

// response is a decoded success.
type response struct {
	status int
	header http.Header
}

// policy is the retry policy of c's calls.
func (c *Client) policy() retry.Policy {
	p := retry.Policy{Sleep: c.opts.Sleep, Now: c.opts.Now, Random: c.opts.Random}
	if c.retries != unbounded {
		p.MaxAttempts = c.retries + 1
	}
	return p
}

// do runs a call under the retry policy and decodes a JSON success into out. A call that
// may do its work twice is retried only when the request surely did not reach the handler.
func (c *Client) do(ctx context.Context, cl call, out any) (*response, error) {
	var last *Error
	var resp *response
	attempts, err := c.policy().Do(ctx, func(ctx context.Context) (retry.Decision, error) {
		r, err := c.once(ctx, cl, out)
		if err == nil {
			resp = r
			return retry.Decision{}, nil
		}
		var e *Error
		if !errors.As(err, &e) {
			return retry.Decision{}, err
		}
		last = e
		return retry.Decision{Retry: e.Temporary && (cl.safe || notDelivered(e)), After: e.RetryAfter}, err
	})
	if err == nil {
		return resp, nil
	}
	if last == nil {
		return nil, err
	}
	if ctx.Err() != nil {
		// The caller gave up (an interrupt, its deadline): say so, not "unreachable".
		return nil, &Error{Op: cl.op, Status: last.Status, Temporary: true, Kind: KindUnavailable, Err: ctx.Err(),
			Msg: fmt.Sprintf("%s: gave up: %v (last: %s)", cl.op, context.Cause(ctx), last.Msg)}
	}
	if last.Temporary {
		return nil, c.unreachable(last, attempts)
	}
	return nil, last
}

// unreachable turns the last transient failure into the KindUnavailable error a person reads.
func (c *Client) unreachable(e *Error, attempts int) *Error {
	out := *e
	out.Kind = KindUnavailable
	tries := ""
	if attempts > 1 {
		tries = fmt.Sprintf(" (after %d attempts)", attempts)
	}
	out.Msg = fmt.Sprintf("the execution service at %s could not be reached: %s%s. Is zof serve running? Check --server / ZOF_SERVER", c.display, e.Msg, tries)
	return &out
}

// notDelivered reports whether a failure proves the handler never ran: the connection was
// refused, or the server declined the request (429, 503) before doing anything.
func notDelivered(e *Error) bool {
	if e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable {
		return true
	}
	var op *net.OpError
	return e.Status == 0 && errors.As(e.Err, &op) && op.Op == "dial"
}

// once is one attempt of a call.
func (c *Client) once(ctx context.Context, cl call, out any) (*response, error) {
	actx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	req, err := c.request(actx, cl.method, cl.path, cl.query, cl.body)
	if err != nil {
		return nil, err
	}
	for k, v := range cl.header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json, "+api.MediaProblem)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, cl.op, err)
	}
	defer resp.Body.Close()
	if !slices.Contains(cl.want, resp.StatusCode) {
		return nil, c.statusError(cl, resp)
	}
	body, err := readLimited(resp.Body, MaxResponseBytes)
	if err != nil {
		return nil, c.bodyError(ctx, cl.op, resp, err)
	}
	if raw, ok := out.(*rawBody); ok {
		// An artifact: any content type, taken as it is.
		raw.data, raw.contentType = body, resp.Header.Get("Content-Type")
		return &response{status: resp.StatusCode, header: resp.Header}, nil
	}
	if !isJSON(resp.Header.Get("Content-Type")) {
		return nil, &Error{Op: cl.op, Status: resp.StatusCode, Temporary: true, Kind: KindUnavailable,
			Msg: fmt.Sprintf("%s: the server answered %d with %s instead of JSON", cl.op, resp.StatusCode, describeBody(resp.Header.Get("Content-Type"), body))}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return nil, &Error{Op: cl.op, Status: resp.StatusCode, Temporary: true, Kind: KindUnavailable, Err: err,
			Msg: fmt.Sprintf("%s: the server's answer is not the expected JSON (%v)", cl.op, err)}
	}
	return &response{status: resp.StatusCode, header: resp.Header}, nil
}

// request builds a request below the base URL with the common headers.
func (c *Client) request(ctx context.Context, method, path string, q url.Values, body []byte) (*http.Request, error) {
	u, err := url.Parse(c.base.String() + path) // path is already escaped
	if err != nil {
		return nil, invalidf("building the request to %s: %w", c.display, err)
	}
	u.RawQuery = q.Encode()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return nil, invalidf("building the request to %s: %w", c.display, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	return req, nil
}

// transportError is a failure without a response: refused, reset, timed out, DNS.
func (c *Client) transportError(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		// The caller gave up (interrupt, deadline): not the server's fault.
		return &Error{Op: op, Temporary: true, Kind: KindUnavailable, Err: ctx.Err(), Msg: fmt.Sprintf("%s: %v", op, ctx.Err())}
	}
	cause := err
	var ue *url.Error
	if errors.As(err, &ue) {
		cause = ue.Err
	}
	msg := cause.Error()
	if errors.Is(cause, context.DeadlineExceeded) {
		msg = fmt.Sprintf("no answer within %s", RequestTimeout)
	}
	return &Error{Op: op, Temporary: true, Kind: KindUnavailable, Err: err, Msg: fmt.Sprintf("%s: %s", op, msg)}
}

// bodyError is a failure while reading a response body.
func (c *Client) bodyError(ctx context.Context, op string, resp *http.Response, err error) error {
	if errors.Is(err, errTooLarge) {
		return &Error{Op: op, Status: resp.StatusCode, Kind: KindUnavailable, Err: err,
			Msg: fmt.Sprintf("%s: the server's answer is larger than %d MiB; is --server a zof server?", op, MaxResponseBytes>>20)}
	}
	e := c.transportError(ctx, op, err).(*Error)
	e.Status = resp.StatusCode
	e.Msg = fmt.Sprintf("%s: the answer was cut off: %v", op, err)
	return e
}

// statusError maps an unexpected status to an error with its exit code.
func (c *Client) statusError(cl call, resp *http.Response) error {
	body, _ := readLimited(resp.Body, maxErrorBytes)
	ctype := resp.Header.Get("Content-Type")
	var p *api.Problem
	if isJSON(ctype) {
		var pb api.Problem
		if json.Unmarshal(body, &pb) == nil && (pb.Title != "" || pb.Detail != "" || pb.Status != 0) {
			p = &pb
		}
	}
	e := &Error{Op: cl.op, Status: resp.StatusCode, Problem: p}
	detail := ""
	if p != nil {
		detail = sanitize.Line(cmp.Or(strings.TrimSpace(p.Detail), strings.TrimSpace(p.Title)))
	}
	withDetail := func(s string) string {
		if detail != "" {
			return s + ": " + detail
		}
		return s
	}
	st := resp.StatusCode
	switch {
	case st == http.StatusUnauthorized:
		e.Kind = KindUnauthorized
		if c.token == "" {
			e.Msg = "the server wants a token (401): set --token or ZOF_TOKEN"
		} else {
			e.Msg = "the server refused the token (401): check --token / ZOF_TOKEN"
		}
	case st == http.StatusForbidden:
		e.Kind = KindUnauthorized
		e.Msg = withDetail(fmt.Sprintf("the server refused the token (403): its role may not %s; check --token / ZOF_TOKEN", cl.op))
	case st == http.StatusNotFound && p != nil && cl.runID != "":
		e.Kind = KindInvalid
		e.Msg = fmt.Sprintf("run %s not found on %s (or it belongs to another tenant)", sanitize.Line(cl.runID), c.display)
	case st == http.StatusTooManyRequests || st >= 500 || p == nil:
		// 5xx, throttling, and any answer that is not our problem JSON (a proxy's error
		// page, a 404 from something that is not zof) may be a passing fault: retried.
		e.Temporary = true
		e.Kind = KindUnavailable
		if st == http.StatusTooManyRequests || st == http.StatusServiceUnavailable {
			e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), c.opts.Now())
		}
		what := "a problem"
		if p == nil {
			what = describeBody(ctype, body)
		}
		e.Msg = withDetail(fmt.Sprintf("%s: the server answered %d %s with %s", cl.op, st, http.StatusText(st), what))
		if st == http.StatusNotFound {
			e.Msg += " (is --server the base URL of a zof server?)"
		}
	default:
		// 400, 404 of something else, 409, 413, 422: the request itself is refused.
		e.Kind = KindInvalid
		e.Msg = withDetail(fmt.Sprintf("%s: refused (%d %s)", cl.op, st, http.StatusText(st)))
		if p != nil && p.RunID != "" && !strings.Contains(e.Msg, p.RunID) {
			e.Msg += " (run " + sanitize.Line(p.RunID) + ")"
		}
		for _, pe := range p.Errors {
			e.Msg += "\n  " + sanitize.Line(pe)
		}
	}
	return e
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
func retryAfter(v string, now time.Time) time.Duration { return retry.RetryAfter(v, now) }

var errTooLarge = errors.New("response too large")

// readLimited reads at most limit bytes; more is errTooLarge.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return b, err
	}
	if int64(len(b)) > limit {
		return b[:limit], errTooLarge
	}
	return b, nil
}

func isJSON(ctype string) bool {
	mt, _, err := mime.ParseMediaType(ctype)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// describeBody says what came back when it was not our JSON, without dumping a page.
func describeBody(ctype string, body []byte) string {
	mt, _, _ := mime.ParseMediaType(ctype)
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0:
		return "an empty body"
	case mt == "text/html" || bytes.HasPrefix(bytes.ToLower(trimmed), []byte("<!doctype html")) || bytes.HasPrefix(bytes.ToLower(trimmed), []byte("<html")):
		return "an HTML page (a proxy or load balancer answered, not zof serve)"
	}
	const most = 120
	s := sanitize.Line(string(trimmed))
	if len(s) > most {
		s = strings.ToValidUTF8(s[:most], "") + "…"
	}
	if mt == "" {
		mt = "no content type"
	}
	return fmt.Sprintf("%s %q", mt, s)
}

// redactRaw hides user info of a URL that did not parse well enough to use Redacted.
func redactRaw(s string) string {
	if i := strings.Index(s, "@"); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			return s[:j+3] + "xxxxx" + s[i:]
		}
	}
	return s
}
