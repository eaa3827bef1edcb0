package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/retry"
)

const testToken = "s3cr3t-token-value"

// testEpoch is where the fake clock starts.
var testEpoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// sleeps records the waits between attempts instead of sleeping, and is the client's clock:
// a wait moves it on.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
	t  time.Time
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.t = s.t.Add(d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t
}

func (s *sleeps) list() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// newClient returns a client for srv that records its sleeps; the jitter is the maximum.
func newClient(t *testing.T, srv *httptest.Server, o Options) (*Client, *sleeps) {
	t.Helper()
	sl := &sleeps{t: testEpoch}
	if o.Sleep == nil {
		o.Sleep = sl.sleep
		o.Now = sl.now
	}
	o.Random = func(n int64) int64 { return n - 1 }
	c, err := New(srv.URL, testToken, o)
	if err != nil {
		t.Fatal(err)
	}
	return c, sl
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeProblem(w http.ResponseWriter, p api.Problem) {
	w.Header().Set("Content-Type", api.MediaProblem)
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

// dropConnection closes the connection without an answer, as a crashing server or a proxy does.
func dropConnection(t *testing.T, w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		t.Error("response writer cannot hijack")
		return
	}
	c, _, err := hj.Hijack()
	if err != nil {
		t.Error(err)
		return
	}
	c.Close()
}

func testRequest() *api.RunRequest {
	return &api.RunRequest{Project: "shop", Environment: api.Environment{Name: "staging"},
		Cases: []api.Case{{ID: "a", Steps: []api.Step{{Run: &api.Command{Command: "true"}}}}}}
}

func TestCreate(t *testing.T) {
	var (
		mu   sync.Mutex
		keys []string
		runs = map[string]string{}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/runs" {
			t.Errorf("request %s %s", r.Method, r.URL.Path)
		}
		if got := r.Header.Get("Authorization"); got != "Bearer "+testToken {
			t.Errorf("Authorization = %q", got)
		}
		var req api.RunRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Project != "shop" {
			t.Errorf("body: %v %+v", err, req)
		}
		key := r.Header.Get(api.HeaderIdempotencyKey)
		mu.Lock()
		keys = append(keys, key)
		id, seen := runs[key]
		if !seen {
			id = fmt.Sprintf("run_%d", len(runs)+1)
			runs[key] = id
		}
		n := len(keys)
		mu.Unlock()
		if n == 1 {
			dropConnection(t, w) // the first attempt is lost after the server stored the run
			return
		}
		if seen {
			w.Header().Set(api.HeaderReplayed, "true")
			writeJSON(w, http.StatusOK, api.Run{ID: id, Status: api.StatusRunning})
			return
		}
		writeJSON(w, http.StatusCreated, api.Run{ID: id, Status: api.StatusInitial})
	}))
	defer srv.Close()
	c, sl := newClient(t, srv, Options{})

	run, replayed, err := c.Create(context.Background(), testRequest(), "k-1")
	if err != nil {
		t.Fatal(err)
	}
	// The lost attempt created run_1; the retry with the same key must attach to it.
	if run.ID != "run_1" || !replayed {
		t.Errorf("Create = %s replayed %v, want run_1 replayed", run.ID, replayed)
	}
	run, replayed, err = c.Create(context.Background(), testRequest(), "k-2")
	if err != nil || run.ID != "run_2" || replayed {
		t.Errorf("second key: %v %v %v, want run_2 not replayed", run, replayed, err)
	}
	if diff := cmp.Diff([]string{`"k-1"`, `"k-1"`, `"k-2"`}, keys); diff != "" {
		t.Errorf("Idempotency-Key headers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]time.Duration{BackoffBase - 1}, sl.list()); diff != "" {
		t.Errorf("sleeps (-want +got):\n%s", diff)
	}
}

func TestSFString(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"abc123", `"abc123"`, false},
		{`a"b\c`, `"a\"b\\c"`, false},
		{"with space", `"with space"`, false},
		{"tab\there", "", true},
		{"naïve", "", true},
		{strings.Repeat("k", MaxIdempotencyKey+1), "", true},
	}
	for _, tt := range tests {
		got, err := SFString(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("SFString(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.err)
		}
		if err != nil && kindOf(err) != KindInvalid {
			t.Errorf("SFString(%q) error kind %s, want invalid", tt.in, kindOf(err))
		}
	}
}

// TestFaults drives each call through what a broken network, a proxy or a refusing server
// does, and checks the exit code, the message and how often it was tried.
func TestFaults(t *testing.T) {
	html502 := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>")
	}
	tests := []struct {
		name     string
		handler  func(n int, w http.ResponseWriter, r *http.Request)
		call     func(ctx context.Context, c *Client) error
		code     ErrorKind
		msg      []string
		attempts int
		sleeps   []time.Duration
	}{
		{
			name: "401 is a refused token",
			handler: func(n int, w http.ResponseWriter, r *http.Request) {
				writeProblem(w, api.Problem{Status: 401, Title: "Unauthorized"})
			},
			call:     func(ctx context.Context, c *Client) error { _, err := c.Get(ctx, "run_1"); return err },
			code:     KindUnauthorized,
			msg:      []string{"the server refused the token (401): check --token / ZOF_TOKEN"},
			attempts: 1,
		},
		{
			name: "403 names the role",
			handler: func(n int, w http.ResponseWriter, r *http.Request) {
				writeProblem(w, api.Problem{Status: 403, Title: "Forbidden", Detail: "role viewer cannot cancel runs"})
			},
			call:     func(ctx context.Context, c *Client) error { _, err := c.Cancel(ctx, "run_1", ""); return err },
			code:     KindUnauthorized,
			msg:      []string{"(403)", "may not cancel run run_1", "role viewer cannot cancel runs"},
			attempts: 1,
		},
		{
			name: "404 of a run",
			handler: func(n int, w http.ResponseWriter, r *http.Request) {
				writeProblem(w, api.Problem{Status: 404, Title: "Not Found"})
			},
			call:     func(ctx context.Context, c *Client) error { _, err := c.Get(ctx, "run_9"); return err },
			code:     KindInvalid,
			msg:      []string{"run run_9 not found on http://127.0.0.1:", "(or it belongs to another tenant)"},
			attempts: 1,
		},
		{
			name: "409 cancel of a finished run",
			handler: func(n int, w http.ResponseWriter, r *http.Request) {
				writeProblem(w, api.Problem{Status: 409, Title: "Conflict", Detail: "run run_1 is passed: a finished run cannot be cancelled", RunID: "run_1"})
			},
			call:     func(ctx context.Context, c *Client) error { _, err := c.Cancel(ctx, "run_1", "x"); return err },
			code:     KindInvalid,
			msg:      []string{"cancel run run_1: refused (409 Conflict): run run_1 is passed: a finished run cannot be cancelled"},
			attempts: 1,
		},
		{
			name: "422 key owned by another request",
			handler: func(n int, w http.ResponseWriter, r *http.Request) {
				writeProblem(w, api.Problem{Status: 422, Title: "Unprocessable", Detail: "the idempotency key belongs to a different request", RunID: "run_7", Errors: []string{"cases differ"}})
			},
			call:     func(ctx context.Context, c *Client) error { _, _, err := c.Create(ctx, testRequest(), "k"); return err },
			code:     KindInvalid,
			msg:      []string{"create a run: refused (422 Unprocessable Entity): the idempotency key belongs to a different request (run run_7)", "\n  cases differ"},
			attempts: 1,
		},
		{
			name:    "HTML 502 from a proxy, every time",
			handler: func(n int, w http.ResponseWriter, r *http.Request) { html502(w, r) },
			call:    func(ctx context.Context, c *Client) error { _, err := c.Get(ctx, "run_1"); return err },
			code:    KindUnavailable,
			msg:     []string{"the execution service at http://127.0.0.1:", "could not be reached: get run run_1: the server answered 502 Bad Gateway with an HTML page (a proxy or load balancer answered, not zof serve) (after 7 attempts). Is zof serve running? Check --server / ZOF_SERVER"},
			// Retried until the deadline, not a count: the doubling waits reach 7.75 s, and
			// the last attempt is made just before the 15 s deadline.
			attempts: 7,
			sleeps:   []time.Duration{BackoffBase - 1, 2*BackoffBase - 1, 4*BackoffBase - 1, 8*BackoffBase - 1, 16*BackoffBase - 1, 15*time.Second - retry.FinalMargin - (31*BackoffBase - 5)},
		},
		{
			name: "500 then 200",
			handler: func(n int, w http.ResponseWriter, r *http.Request) {
				if n == 1 {
					writeProblem(w, api.Problem{Status: 500, Title: "Internal Server Error"})
					return
				}
				writeJSON(w, 200, api.Run{ID: "run_1"})
			},
			call:     func(ctx context.Context, c *Client) error { _, err := c.Get(ctx, "run_1"); return err },
			attempts: 2,
			sleeps:   []time.Duration{BackoffBase - 1},
		},
		{
			name: "garbage with a 200",
			handler: func(n int, w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"id": "run_1", "status": `)
			},
			call:     func(ctx context.Context, c *Client) error { _, err := c.Get(ctx, "run_1"); return err },
			code:     KindUnavailable,
			msg:      []string{"get run run_1: the server's answer is not the expected JSON"},
			attempts: 7,
		},
		{
			name: "plain text 200 (a captive portal)",
			handler: func(n int, w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				io.WriteString(w, "please log in\x1b[31m")
			},
			call:     func(ctx context.Context, c *Client) error { _, err := c.List(ctx, ListOptions{}); return err },
			code:     KindUnavailable,
			msg:      []string{`list runs: the server answered 200 with text/plain "please log in" instead of JSON`},
			attempts: 7,
		},
		{
			name: "429 with Retry-After seconds",
			handler: func(n int, w http.ResponseWriter, r *http.Request) {
				if n == 1 {
					w.Header().Set("Retry-After", "3")
					writeProblem(w, api.Problem{Status: 429, Title: "Too Many Requests"})
					return
				}
				writeJSON(w, 200, api.RunList{})
			},
			call:     func(ctx context.Context, c *Client) error { _, err := c.List(ctx, ListOptions{}); return err },
			attempts: 2,
			sleeps:   []time.Duration{3 * time.Second},
		},
		{
			name: "503 with a Retry-After date, then one past the deadline: no waiting for nothing",
			handler: func(n int, w http.ResponseWriter, r *http.Request) {
				switch n {
				case 1:
					w.Header().Set("Retry-After", time.Date(2030, 1, 1, 0, 0, 7, 0, time.UTC).Format(http.TimeFormat))
					writeProblem(w, api.Problem{Status: 503, Title: "Service Unavailable"})
				case 2:
					w.Header().Set("Retry-After", "86400")
					writeProblem(w, api.Problem{Status: 503, Title: "Service Unavailable"})
				default:
					writeJSON(w, 200, api.Run{ID: "run_1"})
				}
			},
			call:     func(ctx context.Context, c *Client) error { _, err := c.Get(ctx, "run_1"); return err },
			code:     KindUnavailable,
			msg:      []string{"503 Service Unavailable", "(after 2 attempts)"},
			attempts: 2,
			sleeps:   []time.Duration{7 * time.Second},
		},
		{
			name: "rerun is not retried after a 502: it may have started",
			handler: func(n int, w http.ResponseWriter, r *http.Request) {
				writeProblem(w, api.Problem{Status: 502, Title: "Bad Gateway"})
			},
			call:     func(ctx context.Context, c *Client) error { _, err := c.Rerun(ctx, "run_1"); return err },
			code:     KindUnavailable,
			msg:      []string{"rerun run run_1: the server answered 502 Bad Gateway with a problem"},
			attempts: 1,
		},
		{
			name: "rerun is retried after a 503: it did not start",
			handler: func(n int, w http.ResponseWriter, r *http.Request) {
				if n == 1 {
					writeProblem(w, api.Problem{Status: 503, Title: "Service Unavailable"})
					return
				}
				writeJSON(w, 201, api.Run{ID: "run_2"})
			},
			call:     func(ctx context.Context, c *Client) error { _, err := c.Rerun(ctx, "run_1"); return err },
			attempts: 2,
			sleeps:   []time.Duration{BackoffBase - 1},
		},
		{
			name: "a 404 page that is not ours",
			handler: func(n int, w http.ResponseWriter, r *http.Request) {
				http.NotFound(w, r)
			},
			call:     func(ctx context.Context, c *Client) error { _, err := c.List(ctx, ListOptions{}); return err },
			code:     KindUnavailable,
			msg:      []string{"404 Not Found", "(is --server the base URL of a zof server?)"},
			attempts: 7,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			n := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				n++
				cur := n
				mu.Unlock()
				tt.handler(cur, w, r)
			}))
			defer srv.Close()
			c, sl := newClient(t, srv, Options{})
			// A 15 s deadline on the fake clock: persistent faults are retried until it.
			ctx, cancel := context.WithDeadline(context.Background(), testEpoch.Add(15*time.Second))
			defer cancel()
			err := tt.call(ctx, c)
			if got := kindOf(err); got != tt.code {
				t.Errorf("kind %s (%v), want %s", got, err, tt.code)
			}
			for _, m := range tt.msg {
				if err == nil || !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not contain %q", err, m)
				}
			}
			if err != nil && strings.Contains(err.Error(), testToken) {
				t.Errorf("error prints the token: %v", err)
			}
			if n != tt.attempts {
				t.Errorf("%d attempts, want %d", n, tt.attempts)
			}
			if tt.sleeps != nil {
				if diff := cmp.Diff(tt.sleeps, sl.list()); diff != "" {
					t.Errorf("sleeps (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nobody listens there now
	sl := &sleeps{}
	c, err := New("http://"+addr+"/", testToken, Options{Sleep: sl.sleep, MaxRetries: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Rerun(context.Background(), "run_1") // refused connections are retried even for rerun
	if kindOf(err) != KindUnavailable || !strings.Contains(err.Error(), "the execution service at http://"+addr+" could not be reached") ||
		!strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "(after 3 attempts)") {
		t.Errorf("error %v (kind %s)", err, kindOf(err))
	}
	if !IsTemporary(err) || len(sl.list()) != 2 {
		t.Errorf("temporary %v, sleeps %v", IsTemporary(err), sl.list())
	}
}

func TestNewRejectsBadServer(t *testing.T) {
	for _, s := range []string{"", "zof.example.com", "ftp://x", "http://", "http://u:pw@h/?q=1", ":"} {
		_, err := New(s, "t", Options{})
		if kindOf(err) != KindInvalid {
			t.Errorf("New(%q) = %v, want a usage error", s, err)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("New(%q) prints the password: %v", s, err)
		}
	}
	c, err := New("https://u:pw@zof.example.com/base/", "t", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.RunURL("run_1"); got != "https://zof.example.com/base/runs/run_1" {
		t.Errorf("RunURL = %q", got)
	}
}

func TestListQuery(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.RequestURI()
		writeJSON(w, 200, api.RunList{Runs: []api.Run{{ID: "run_2"}, {ID: "run_1"}}, Next: "c2"})
	}))
	defer srv.Close()
	c, _ := newClient(t, srv, Options{})
	list, err := c.List(context.Background(), ListOptions{Statuses: []api.Status{api.StatusQueued, api.StatusInitial}, Project: "shop", Environment: "stg", Limit: 5, Cursor: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "/v1/runs?cursor=c1&environment=stg&limit=5&project=shop&status=queued&status=initial"; got != want {
		t.Errorf("request %s, want %s", got, want)
	}
	if len(list.Runs) != 2 || list.Next != "c2" {
		t.Errorf("list %+v", list)
	}
}

func TestResponseTooLarge(t *testing.T) {
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"`)
		chunk := strings.Repeat("x", 1<<20)
		for i := 0; i <= MaxResponseBytes>>20; i++ {
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	c, _ := newClient(t, srv, Options{})
	_, err := c.Get(context.Background(), "run_1")
	if kindOf(err) != KindUnavailable || !strings.Contains(err.Error(), "larger than 32 MiB") || n != 1 {
		t.Errorf("err %v after %d attempts; want 69, larger than 32 MiB, 1 attempt", err, n)
	}
}

func TestRetryAfterParse(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := map[string]time.Duration{
		"":                              0,
		"0":                             0,
		"5":                             5 * time.Second,
		"-3":                            0,
		"soon":                          0,
		"99999999999999999999":          0,
		"1000000":                       MaxRetryAfter,
		"Tue, 01 Jan 2030 00:00:10 GMT": 10 * time.Second,
		"Mon, 31 Dec 2029 23:00:00 GMT": 0,
	}
	for in, want := range tests {
		if got := retryAfter(in, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestBackoff(t *testing.T) {
	top := func(n int64) int64 { return n - 1 }
	for attempt, want := range []time.Duration{250*time.Millisecond - 1, 500*time.Millisecond - 1, time.Second - 1, 2*time.Second - 1, 4*time.Second - 1, 8*time.Second - 1, 8*time.Second - 1} {
		if got := Backoff(attempt, BackoffBase, BackoffCap, top); got != want {
			t.Errorf("Backoff(%d) = %s, want %s", attempt, got, want)
		}
	}
	if got := Backoff(100, BackoffBase, BackoffCap, top); got != BackoffCap-1 {
		t.Errorf("Backoff(100) = %s, want the cap", got)
	}
	for range 100 {
		if d := Backoff(3, BackoffBase, BackoffCap, nil); d < 0 || d >= 2*time.Second {
			t.Fatalf("Backoff(3) = %s, outside [0, 2s)", d)
		}
	}
}

func TestContextEndsRetries(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, api.Problem{Status: 500, Title: "boom"})
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	c, _ := newClient(t, srv, Options{Sleep: func(ctx context.Context, d time.Duration) error {
		calls++
		cancel()
		return ctx.Err()
	}})
	_, err := c.Get(ctx, "run_1")
	if err == nil || calls != 1 || kindOf(err) != KindUnavailable {
		t.Errorf("err %v, %d sleeps", err, calls)
	}
}

// kindOf is the ErrorKind of err: 0 for nil, -1 when err is not an *Error.
func kindOf(err error) ErrorKind {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return -1
}
