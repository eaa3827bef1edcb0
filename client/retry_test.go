package client

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// outage refuses connections, as a restarting server does, until the fake clock reaches up.
type outage struct {
	clock *sleeps
	up    time.Time
	tried atomic.Int32
}

func (o *outage) RoundTrip(r *http.Request) (*http.Response, error) {
	o.tried.Add(1)
	if o.clock.now().Before(o.up) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "connect: connection refused"}}
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestSubmitOutlivesRestart: a server that refuses connections for 8 s (a restart) under a
// 15 s deadline. The create is retried until the server is back, whatever the count; before
// the one policy it gave up after 5 attempts, within about 2 s.
func TestSubmitOutlivesRestart(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusCreated, api.Run{ID: "run_1", Status: api.StatusInitial})
	}))
	defer srv.Close()
	clk := &sleeps{t: testEpoch}
	down := &outage{clock: clk, up: testEpoch.Add(8 * time.Second)}
	for _, jitter := range []struct {
		name   string
		random func(int64) int64
	}{{"max jitter", func(n int64) int64 { return n - 1 }}, {"half jitter", func(n int64) int64 { return n / 2 }}, {"random", nil}} {
		t.Run(jitter.name, func(t *testing.T) {
			clk.t, clk.d = testEpoch, nil
			down.tried.Store(0)
			c, err := New(srv.URL, testToken, Options{HTTPClient: &http.Client{Transport: down}, Sleep: clk.sleep, Now: clk.now, Random: jitter.random})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithDeadline(context.Background(), testEpoch.Add(15*time.Second))
			defer cancel()
			run, _, err := c.Create(ctx, testRequest(), "k-1")
			if err != nil {
				t.Fatalf("create failed after %d attempts at +%s: %v", down.tried.Load(), clk.now().Sub(testEpoch), err)
			}
			if run.ID != "run_1" {
				t.Errorf("run %q", run.ID)
			}
			at := clk.now().Sub(testEpoch)
			if at < 8*time.Second || at > 15*time.Second {
				t.Errorf("succeeded at +%s, want after the 8 s outage and within the 15 s deadline", at)
			}
			t.Logf("%s: %d attempts, succeeded at +%s", jitter.name, down.tried.Load(), at)
		})
	}
}

// TestPersistent503GivesUpAtDeadline: a server that answers 503 with Retry-After: 1 for good
// is retried every second until the deadline, then the error is the 69 "could not be
// reached"; before, it gave up after 5 attempts (about 4 s into a 15 s deadline).
func TestPersistent503GivesUpAtDeadline(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Retry-After", "1")
		writeProblem(w, api.Problem{Status: 503, Title: "Service Unavailable"})
	}))
	defer srv.Close()
	clk := &sleeps{t: testEpoch}
	c, err := New(srv.URL, testToken, Options{Sleep: clk.sleep, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithDeadline(context.Background(), testEpoch.Add(15*time.Second))
	defer cancel()
	_, _, err = c.Create(ctx, testRequest(), "k-1")
	at := clk.now().Sub(testEpoch)
	if kindOf(err) != KindUnavailable || !strings.Contains(err.Error(), "503") {
		t.Fatalf("err = %v (kind %s), want the unavailable error", err, kindOf(err))
	}
	if at < 14*time.Second || at > 15*time.Second {
		t.Errorf("gave up at +%s after %d attempts, want within the last second before the 15 s deadline", at, n.Load())
	}
	if n.Load() != 15 {
		t.Errorf("%d attempts, want 15 (one a second, as Retry-After says)", n.Load())
	}
	for _, d := range clk.d {
		if d != time.Second {
			t.Fatalf("waited %s, want Retry-After's 1s: %v", d, clk.d)
		}
	}
}
