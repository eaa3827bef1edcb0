package retry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock advances only when slept on.
type fakeClock struct {
	t     time.Time
	slept []time.Duration
}

func (c *fakeClock) now() time.Time { return c.t }
func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	c.slept = append(c.slept, d)
	c.t = c.t.Add(d)
	return ctx.Err()
}

var errDown = errors.New("down")

func TestDoUntilDeadline(t *testing.T) {
	tests := []struct {
		name string
		// down is how long the attempts fail; after is the server's wait (0: none).
		down, after, deadline time.Duration
		maxAttempts           int
		wantErr               bool
		// giveUpAfter: the clock when the call gave up must be within [min, deadline].
		minElapsed time.Duration
	}{
		{name: "8s outage under 15s", down: 8 * time.Second, deadline: 15 * time.Second},
		{name: "8s outage with Retry-After 1", down: 8 * time.Second, after: time.Second, deadline: 15 * time.Second},
		{name: "persistent with Retry-After", down: time.Hour, after: time.Second, deadline: 15 * time.Second, wantErr: true, minElapsed: 14 * time.Second},
		{name: "persistent without Retry-After", down: time.Hour, deadline: 15 * time.Second, wantErr: true, minElapsed: 15*time.Second - FinalMargin},
		{name: "Retry-After past the deadline gives up at once", down: time.Hour, after: time.Minute, deadline: 15 * time.Second, wantErr: true},
		{name: "max attempts", down: time.Hour, deadline: time.Hour, maxAttempts: 3, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			clk := &fakeClock{t: start}
			ctx, cancel := context.WithDeadline(context.Background(), start.Add(tt.deadline))
			defer cancel()
			p := Policy{Sleep: clk.sleep, Now: clk.now, MaxAttempts: tt.maxAttempts, Random: func(n int64) int64 { return n - 1 }}
			n, err := p.Do(ctx, func(context.Context) (Decision, error) {
				if clk.t.Sub(start) < tt.down {
					return Decision{Retry: true, After: tt.after}, errDown
				}
				return Decision{}, nil
			})
			elapsed := clk.t.Sub(start)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v after %d attempts at %s, want error %v", err, n, elapsed, tt.wantErr)
			}
			if elapsed > tt.deadline {
				t.Errorf("gave up at %s, past the %s deadline", elapsed, tt.deadline)
			}
			if elapsed < tt.minElapsed {
				t.Errorf("gave up at %s, before %s", elapsed, tt.minElapsed)
			}
			if tt.maxAttempts > 0 && n != tt.maxAttempts {
				t.Errorf("%d attempts, want %d", n, tt.maxAttempts)
			}
			if !tt.wantErr && elapsed < tt.down {
				t.Errorf("succeeded at %s inside the outage", elapsed)
			}
		})
	}
}

func TestDoStopsOnFinalError(t *testing.T) {
	clk := &fakeClock{t: time.Now()}
	n, err := Policy{Sleep: clk.sleep, Now: clk.now}.Do(context.Background(), func(context.Context) (Decision, error) {
		return Decision{}, errDown
	})
	if n != 1 || !errors.Is(err, errDown) || len(clk.slept) != 0 {
		t.Fatalf("n=%d err=%v slept=%v, want one attempt", n, err, clk.slept)
	}
}

func TestDoWithoutDeadlineUsesBudget(t *testing.T) {
	clk := &fakeClock{t: time.Now()}
	start := clk.t
	_, err := Policy{Sleep: clk.sleep, Now: clk.now, Budget: 10 * time.Second}.Do(context.Background(), func(context.Context) (Decision, error) {
		return Decision{Retry: true}, errDown
	})
	if err == nil || clk.t.Sub(start) > 10*time.Second || clk.t.Sub(start) < 10*time.Second-DefaultCap {
		t.Fatalf("err=%v after %s, want a failure within the 10s budget", err, clk.t.Sub(start))
	}
}

func TestBackoff(t *testing.T) {
	top := func(n int64) int64 { return n - 1 }
	for attempt, want := range []time.Duration{DefaultBase - 1, 2*DefaultBase - 1, 4*DefaultBase - 1, 8*DefaultBase - 1, 16*DefaultBase - 1, DefaultCap - 1} {
		if got := Backoff(attempt, DefaultBase, DefaultCap, top); got != want {
			t.Errorf("Backoff(%d) = %s, want %s", attempt, got, want)
		}
	}
	if got := Backoff(100, DefaultBase, DefaultCap, top); got != DefaultCap-1 {
		t.Errorf("Backoff(100) = %s, want the cap", got)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"7":                             7 * time.Second,
		" 3 ":                           3 * time.Second,
		"-1":                            0,
		"1000000":                       MaxRetryAfter,
		"Fri, 02 Jan 2026 03:04:15 GMT": 10 * time.Second,
		"Fri, 02 Jan 2026 03:04:00 GMT": 0,
		"soon":                          0,
	} {
		if got := RetryAfter(in, now); got != want {
			t.Errorf("RetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"", "7", "-1", "99999999999999999999", "Fri, 02 Jan 2026 03:04:15 GMT"} {
		f.Add(s)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, s string) {
		if d := RetryAfter(s, now); d < 0 || d > MaxRetryAfter {
			t.Fatalf("RetryAfter(%q) = %s outside [0, %s]", s, d, MaxRetryAfter)
		}
	})
}

// TestTransport: a POST answered 503 twice is sent again with its body, and the
// third answer reaches the caller intact.
func TestTransport(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if string(b) != "payload" {
			t.Errorf("attempt %d got body %q", calls.Load()+1, b)
		}
		if calls.Add(1) < 3 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	clk := &fakeClock{t: time.Now()}
	hc := &http.Client{Transport: &Transport{Policy: Policy{Sleep: clk.sleep, Now: clk.now}, Classify: func(_ *http.Request, resp *http.Response, err error) Decision {
		if err != nil {
			return Decision{Retry: true}
		}
		return Decision{Retry: resp.StatusCode >= 500, After: RetryAfter(resp.Header.Get("Retry-After"), clk.now())}
	}}}
	resp, err := hc.Post(srv.URL, "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "ok" || calls.Load() != 3 {
		t.Fatalf("status %d body %q after %d calls, want 200 ok after 3", resp.StatusCode, b, calls.Load())
	}
	if len(clk.slept) != 2 || clk.slept[0] != time.Second {
		t.Errorf("slept %v, want Retry-After's 1s twice", clk.slept)
	}
}

// TestTransportGivesUpWithLastAnswer: when the policy gives up, the caller reads the last
// answer (status and body), not an error of the retry loop.
func TestTransportGivesUpWithLastAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "bad gateway page")
	}))
	defer srv.Close()
	clk := &fakeClock{t: time.Now()}
	hc := &http.Client{Transport: &Transport{Policy: Policy{Sleep: clk.sleep, Now: clk.now, MaxAttempts: 2}, Classify: func(_ *http.Request, resp *http.Response, err error) Decision {
		return Decision{Retry: true}
	}}}
	resp, err := hc.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadGateway || string(b) != "bad gateway page" {
		t.Fatalf("got %d %q", resp.StatusCode, b)
	}
}
