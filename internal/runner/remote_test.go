package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/client"
	"github.com/zof-ai/zof-ci/internal/eventually"
	"github.com/zof-ai/zof-ci/internal/gate"
	"github.com/zof-ai/zof-ci/internal/reporters/console"
	"github.com/zof-ai/zof-ci/internal/reporters/report"
	"github.com/zof-ai/zof-ci/internal/reporters/reporttest"
)

// recording replays a recorded run log over HTTP the way zof serve publishes it: events
// become visible as the test publishes them, GET returns the fold of what is visible, the
// stream sends what is visible and waits for more. The faults under test are injected in
// front of it (hooks), as a broken network or proxy would; the server logic itself is not
// what these tests check (the integration tests run the real server).
type recording struct {
	t      *testing.T
	mu     sync.Mutex
	log    []api.Event
	shown  int
	wake   chan struct{}
	onStop func() []api.Event // events a cancel appends

	cancels    []string
	lastIDs    []string // Last-Event-ID of each stream request
	streamHook func(n int, w http.ResponseWriter, r *http.Request) bool
	getHook    func(n int, w http.ResponseWriter, r *http.Request) bool
	streams    int
	gets       int
	// waits are `wait` overlays (their data) sent after the event of each seq, to a
	// stream that asked for them (?wait=1) only, as zof serve does.
	waits    map[int64][]string
	waitAsks []bool // whether each stream request asked for them
}

func newRecording(t *testing.T, log []api.Event, shown int) *recording {
	return &recording{t: t, log: log, shown: shown, wake: make(chan struct{})}
}

// publish makes n more events visible.
func (rec *recording) publish(n int) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.shown = min(rec.shown+n, len(rec.log))
	close(rec.wake)
	rec.wake = make(chan struct{})
}

func (rec *recording) snapshot() *api.Run {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	r := &api.Run{}
	for _, e := range rec.log[:rec.shown] {
		if err := r.Apply(e); err != nil {
			rec.t.Errorf("recording: %v", err)
		}
	}
	return r
}

func (rec *recording) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := reporttest.RunID
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/runs/"+id:
		rec.mu.Lock()
		rec.gets++
		n := rec.gets
		rec.mu.Unlock()
		if rec.getHook != nil && rec.getHook(n, w, r) {
			return
		}
		writeTestJSON(w, http.StatusOK, rec.snapshot())
	case r.Method == http.MethodGet && r.URL.Path == "/v1/runs/"+id+"/events":
		rec.mu.Lock()
		rec.streams++
		n := rec.streams
		rec.lastIDs = append(rec.lastIDs, r.Header.Get(api.HeaderLastEventID))
		rec.waitAsks = append(rec.waitAsks, r.URL.Query().Get("wait") == "1")
		rec.mu.Unlock()
		if rec.streamHook != nil && rec.streamHook(n, w, r) {
			return
		}
		rec.stream(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/runs/"+id+"/cancel":
		var body api.CancelRequest
		json.NewDecoder(r.Body).Decode(&body)
		rec.mu.Lock()
		rec.cancels = append(rec.cancels, body.Reason)
		stop := rec.onStop
		rec.onStop = nil
		rec.mu.Unlock()
		if stop != nil {
			evs := stop()
			rec.mu.Lock()
			rec.log = append(rec.log[:rec.shown], evs...)
			rec.mu.Unlock()
			rec.publish(len(evs))
		}
		writeTestJSON(w, http.StatusAccepted, rec.snapshot())
	default:
		http.NotFound(w, r)
	}
}

// stream writes the visible events after Last-Event-ID, then waits for more; after the
// terminal event it sends end and closes.
func (rec *recording) stream(w http.ResponseWriter, r *http.Request) {
	after, _ := strconv.ParseInt(r.Header.Get(api.HeaderLastEventID), 10, 64)
	w.Header().Set("Content-Type", api.MediaEventStream)
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	for {
		rec.mu.Lock()
		evs := append([]api.Event(nil), rec.log[:rec.shown]...)
		wake := rec.wake
		rec.mu.Unlock()
		for _, e := range evs {
			if e.Seq <= after {
				continue
			}
			io.WriteString(w, sseFrame(e))
			after = e.Seq
			if r.URL.Query().Get("wait") == "1" {
				for _, data := range rec.waits[e.Seq] {
					fmt.Fprintf(w, "event: %s\ndata: %s\n\n", api.EventWait, data)
				}
			}
			if e.Type == api.EventRunStatus && e.Status.Terminal() {
				fmt.Fprintf(w, "event: end\ndata: {\"run_id\":%q,\"status\":%q,\"last_seq\":%d}\n\n", e.RunID, e.Status, e.Seq)
				w.(http.Flusher).Flush()
				return
			}
		}
		w.(http.Flusher).Flush()
		select {
		case <-wake:
		case <-r.Context().Done():
			return
		}
	}
}

func sseFrame(e api.Event) string {
	b, _ := json.Marshal(e)
	return fmt.Sprintf("id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, b)
}

func writeTestJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func testRequest() *api.RunRequest {
	step := func(name string) api.Step { return api.Step{Name: name, Run: &api.Command{Command: "true"}} }
	return &api.RunRequest{
		Project: "shop", Environment: api.Environment{Name: "staging"},
		Cases: []api.Case{
			{ID: "login", Steps: []api.Step{step("sign in"), step("profile")}},
			{ID: "cart", Steps: []api.Step{step("add"), step("total")}},
			{ID: "health", Steps: []api.Step{step("ping")}},
		},
	}
}

// passingLog is a whole run: queued behind another, then three members pass.
func passingLog(t *testing.T) *reporttest.Builder {
	b := reporttest.NewBuilder(t, testRequest())
	b.RunStatus(api.StatusQueued, "").RunSubstate(api.SubstateQueuePosition, 2).RunSubstate(api.SubstateQueuePosition, 1)
	b.RunStatus(api.StatusRunning, "")
	for _, m := range []string{"login", "cart", "health"} {
		b.Pass(m, 100*time.Millisecond)
	}
	return b.RunStatus(api.StatusPassed, "")
}

// failingLog ends with cart failed.
func failingLog(t *testing.T) *reporttest.Builder {
	b := reporttest.NewBuilder(t, testRequest())
	b.RunStatus(api.StatusRunning, "")
	b.Pass("login", time.Second)
	b.Member("cart", api.StatusRunning, 1, "").Step("cart", 1, api.StepPassed, time.Second, "", nil)
	b.Step("cart", 2, api.StepFailed, time.Second, "total 12.62", &api.Failure{Message: "total differs", Expected: "12.50", Actual: "12.62"})
	b.Member("cart", api.StatusFailed, 0, "")
	b.Pass("health", time.Second)
	return b.RunStatus(api.StatusFailed, "")
}

// fastSleep keeps the real backoff arithmetic but sleeps a hundredth of it.
func fastSleep(ctx context.Context, d time.Duration) error { return client.Sleep(ctx, d/100) }

type harness struct {
	srv  *httptest.Server
	rec  *recording
	out  *lockedBuffer
	con  *console.Reporter
	c    *client.Client
	opts followOptions
	src  *remoteSource
}

func newHarness(t *testing.T, rec *recording, silence time.Duration) *harness {
	t.Helper()
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, "tok", client.Options{StreamSilence: silence, Sleep: fastSleep})
	if err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	con, err := console.NewConsole(report.Options{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{srv: srv, rec: rec, out: out, con: con, c: c}
	h.src = newRemoteSource(c, reporttest.RunID, false, 200*time.Millisecond)
	h.src.sleep = fastSleep
	h.opts = followOptions{RunID: reporttest.RunID, URL: c.RunURL(reporttest.RunID), Timeout: 5 * time.Second, CancelOnInterrupt: true, StopWait: 2 * time.Second}
	return h
}

func (h *harness) follow(ctx context.Context) followed {
	return follow(ctx, h.src, h.con, h.opts)
}

// lockedBuffer serialises the console's writes (the follower and the goroutine that
// cancels both write) with the test's reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (h *harness) output() string { return h.out.String() }

func seqs(evs []api.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

func wantSeqs(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i + 1)
	}
	return out
}

func TestFollowStream(t *testing.T) {
	b := passingLog(t)
	rec := newRecording(t, b.Events, 3)
	h := newHarness(t, rec, time.Second)
	go func() {
		for range len(b.Events) {
			time.Sleep(time.Millisecond)
			rec.publish(1)
		}
	}()
	out := h.follow(context.Background())
	if diff := cmp.Diff(b.Run, out.Run); diff != "" {
		t.Errorf("fold (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantSeqs(len(b.Events)), seqs(out.events)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	v := gate.Judge(out.Outcome, gate.AllOutcomes)
	code, verdict := v.Kind, v.Line
	if code != gate.Passed || verdict != "gate passed: 3 of 3 members passed" {
		t.Errorf("Verdict = %d %q", code, verdict)
	}
	for _, want := range []string{"run r-0001 Queued · In queue (position 2)", "run r-0001 Queued · In queue (position 1)", "✓ cart passed", "run r-0001 Passed"} {
		if !strings.Contains(h.output(), want) {
			t.Errorf("console lacks %q:\n%s", want, h.output())
		}
	}
	if strings.Contains(h.output(), "polling") || rec.gets != 0 {
		t.Errorf("polled %d times with a working stream:\n%s", rec.gets, h.output())
	}
}

// TestFollowSaysWhatHoldsTheRun: the stream's wait overlays (asked for with ?wait=1) are
// printed as the wait changes: a new kind at once, a new count of the same kind not within
// waitRepeat, the moment before the scheduler (kind queue) never, the same wait again only
// after the run stopped waiting.
func TestFollowSaysWhatHoldsTheRun(t *testing.T) {
	b := passingLog(t)
	rec := newRecording(t, b.Events, len(b.Events))
	limit := func(runs string) string {
		return fmt.Sprintf(`{"kind":"tenant_limit","since":"2026-12-06T15:00:00Z","message":"tenant acme at 2 of 2 running (%s)"}`, runs)
	}
	agent := `{"kind":"agent","since":"2026-12-06T15:00:01Z","message":"waiting for an agent of pool private: 0 online (never seen)"}`
	rec.waits = map[int64][]string{
		1: {`{"kind":"queue","since":"2026-12-06T15:00:00Z","message":"about to start: no limit of tenant acme holds it"}`},
		2: {limit("r_a, r_b")},
		3: {limit("r_a, r_c"), "{}"},
		4: {agent, agent},
		5: {"{}"},
		6: {agent},
	}
	h := newHarness(t, rec, time.Second)
	h.follow(context.Background())
	got := h.output()
	for want, n := range map[string]int{
		"run r-0001 is waiting: tenant acme at 2 of 2 running (r_a, r_b)": 1,
		"(r_a, r_c)":     0, // the same kind, a new count, within waitRepeat
		"about to start": 0,
		"run r-0001 is waiting: waiting for an agent of pool private: 0 online (never seen)": 2,
	} {
		if c := strings.Count(got, want); c != n {
			t.Errorf("console says %q %d times, want %d:\n%s", want, c, n, got)
		}
	}
	if len(rec.waitAsks) == 0 || !rec.waitAsks[0] {
		t.Errorf("the stream did not ask for wait reasons (?wait=1): %v", rec.waitAsks)
	}
}

// TestFollowPollingSaysWhatHoldsTheRun: polling reads the wait from the run (Run.Wait) and
// says it once, however many polls see it.
func TestFollowPollingSaysWhatHoldsTheRun(t *testing.T) {
	b := failingLog(t)
	rec := newRecording(t, b.Events, 1)
	rec.getHook = func(n int, w http.ResponseWriter, _ *http.Request) bool {
		snap := rec.snapshot()
		if n <= 5 {
			snap.Wait = &api.WaitReason{Kind: "pool_limit", Message: "pool private at 20 of 20 members"}
		}
		writeTestJSON(w, http.StatusOK, snap)
		if n == 5 {
			rec.publish(len(b.Events))
		}
		return true
	}
	h := newHarness(t, rec, time.Second)
	h.src.noStream = true
	h.follow(context.Background())
	if c := strings.Count(h.output(), "run r-0001 is waiting: pool private at 20 of 20 members"); c != 1 {
		t.Errorf("the wait is said %d times, want once:\n%s", c, h.output())
	}
}

// TestFollowResumesAfterDrop cuts the stream in the middle of an event, twice, and sends an
// event out of order once: the follower resumes from the last event it applied, and every
// event is folded exactly once.
func TestFollowResumesAfterDrop(t *testing.T) {
	b := failingLog(t)
	rec := newRecording(t, b.Events, len(b.Events))
	rec.streamHook = func(n int, w http.ResponseWriter, r *http.Request) bool {
		after, _ := strconv.ParseInt(r.Header.Get(api.HeaderLastEventID), 10, 64)
		w.Header().Set("Content-Type", api.MediaEventStream)
		switch n {
		case 1, 2: // three events, then half of the fourth, then the connection drops
			for _, e := range b.Events[after : after+3] {
				io.WriteString(w, sseFrame(e))
			}
			io.WriteString(w, sseFrame(b.Events[after+3])[:40])
			return true
		case 3: // a proxy that reorders: event after+2 before after+1
			io.WriteString(w, sseFrame(b.Events[after+1]))
			io.WriteString(w, sseFrame(b.Events[after]))
			return true
		}
		return false
	}
	h := newHarness(t, rec, time.Second)
	out := h.follow(context.Background())
	if diff := cmp.Diff(b.Run, out.Run); diff != "" {
		t.Errorf("fold (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantSeqs(len(b.Events)), seqs(out.events)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"", "3", "6", "6"}, rec.lastIDs); diff != "" {
		t.Errorf("Last-Event-ID of each connection (-want +got):\n%s", diff)
	}
	if code := gate.Judge(out.Outcome, gate.AllOutcomes).Kind; code != gate.Failed {
		t.Errorf("code %d, want 1", code)
	}
	if strings.Contains(h.output(), "polling") {
		t.Errorf("fell back to polling after drops that delivered events:\n%s", h.output())
	}
}

func TestFollowFallsBackToPolling(t *testing.T) {
	tests := []struct {
		name   string
		hook   func(n int, w http.ResponseWriter, r *http.Request) bool
		notice string
	}{
		{"proxy answers HTML", func(n int, w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html>502 Bad Gateway</html>")
			return true
		}, "stream unavailable (stream the events of run r-0001: the server answered 502 Bad Gateway with an HTML page"},
		{"proxy buffers the stream", func(n int, w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Content-Type", api.MediaEventStream)
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return true
		}, "stream unavailable (the event stream went silent: no event or keepalive for 150ms): polling every 200ms"},
		{"too many streams", func(n int, w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Content-Type", api.MediaProblem)
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"title":"Too Many Requests","status":429,"detail":"tenant acme has 10 open streams"}`)
			return true
		}, "tenant acme has 10 open streams"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := passingLog(t)
			rec := newRecording(t, b.Events, 2)
			rec.streamHook = tt.hook
			h := newHarness(t, rec, 150*time.Millisecond)
			go func() {
				for range len(b.Events) {
					time.Sleep(5 * time.Millisecond)
					rec.publish(1)
				}
			}()
			out := h.follow(context.Background())
			if diff := cmp.Diff(b.Run, out.Run); diff != "" {
				t.Errorf("fold (-want +got):\n%s", diff)
			}
			if code := gate.Judge(out.Outcome, gate.AllOutcomes).Kind; code != gate.Passed {
				t.Errorf("code %d, want 0", code)
			}
			if n := strings.Count(h.output(), "stream unavailable"); n != 1 || !strings.Contains(h.output(), tt.notice) {
				t.Errorf("told %d times, want once with %q:\n%s", n, tt.notice, h.output())
			}
			// Polled changes print as the console's own lines.
			for _, want := range []string{"run r-0001 created: shop on staging, 3 members", "✓ health passed", "run r-0001 Passed"} {
				if !strings.Contains(h.output(), want) {
					t.Errorf("console lacks %q:\n%s", want, h.output())
				}
			}
		})
	}
}

func TestFollowNoStream(t *testing.T) {
	b := failingLog(t)
	rec := newRecording(t, b.Events, 1)
	h := newHarness(t, rec, time.Second)
	h.src.noStream = true
	go func() {
		for range 4 {
			time.Sleep(10 * time.Millisecond)
			rec.publish(len(b.Events) / 3)
		}
	}()
	out := h.follow(context.Background())
	if rec.streams != 0 {
		t.Errorf("%d stream requests with --no-stream", rec.streams)
	}
	if diff := cmp.Diff(b.Run, out.Run); diff != "" {
		t.Errorf("fold (-want +got):\n%s", diff)
	}
	if code := gate.Judge(out.Outcome, gate.AllOutcomes).Kind; code != gate.Failed {
		t.Errorf("code %d, want 1", code)
	}
	if strings.Contains(h.output(), "stream unavailable") {
		t.Errorf("--no-stream told the person about a stream:\n%s", h.output())
	}
}

// TestFollowServerRestart takes the server away mid-run (connections refused by a proxy
// answering 503, then dropped) and brings it back: the follower resumes the stream from
// its last event and reaches the real verdict.
func TestFollowServerRestart(t *testing.T) {
	b := passingLog(t)
	rec := newRecording(t, b.Events, 6)
	var mu sync.Mutex
	down := false
	rec.streamHook = func(n int, w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		d := down
		mu.Unlock()
		if n == 1 {
			// The events so far, then the server dies.
			w.Header().Set("Content-Type", api.MediaEventStream)
			for _, e := range b.Events[:6] {
				io.WriteString(w, sseFrame(e))
			}
			mu.Lock()
			down = true
			mu.Unlock()
			time.AfterFunc(300*time.Millisecond, func() {
				mu.Lock()
				down = false
				mu.Unlock()
				rec.publish(len(b.Events))
			})
			return true
		}
		if d {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	rec.getHook = func(n int, w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	h := newHarness(t, rec, time.Second)
	out := h.follow(context.Background())
	if diff := cmp.Diff(b.Run, out.Run); diff != "" {
		t.Errorf("fold (-want +got):\n%s", diff)
	}
	if code := gate.Judge(out.Outcome, gate.AllOutcomes).Kind; code != gate.Passed {
		t.Errorf("code %d, want 0", code)
	}
	if rec.lastIDs[len(rec.lastIDs)-1] == "" {
		t.Errorf("the last stream did not resume: Last-Event-IDs %v", rec.lastIDs)
	}
}

func TestFollowInterrupt(t *testing.T) {
	for _, cancelOnInterrupt := range []bool{true, false} {
		t.Run(fmt.Sprintf("cancel-on-interrupt=%v", cancelOnInterrupt), func(t *testing.T) {
			b := reporttest.NewBuilder(t, testRequest())
			b.RunStatus(api.StatusRunning, "").Pass("login", time.Second).Member("cart", api.StatusRunning, 1, "")
			rec := newRecording(t, b.Events, len(b.Events))
			rec.onStop = func() []api.Event {
				b.Step("cart", 1, api.StepCancelled, 0, "", nil).Member("cart", api.StatusCancelled, 0, "interrupted (SIGINT/SIGTERM)")
				b.Member("health", api.StatusCancelled, 0, "interrupted (SIGINT/SIGTERM)").RunStatus(api.StatusCancelled, "interrupted (SIGINT/SIGTERM)")
				return b.Events[len(b.Events)-4:]
			}
			h := newHarness(t, rec, time.Second)
			h.opts.CancelOnInterrupt = cancelOnInterrupt
			ctx, interrupt := context.WithCancel(context.Background())
			go func() {
				// Interrupt once following has begun (or the wait gave up: the test fails).
				eventually.Wait(t, waitLimit, func() bool { return h.output() != "" }, "the follower's first output")
				interrupt()
			}()
			out := h.follow(ctx)
			code := gate.Judge(out.Outcome, gate.AllOutcomes).Kind
			if code != gate.Interrupted {
				t.Errorf("code %d, want 130", code)
			}
			if cancelOnInterrupt {
				if diff := cmp.Diff([]string{"interrupted (SIGINT/SIGTERM)"}, rec.cancels); diff != "" {
					t.Errorf("cancels (-want +got):\n%s", diff)
				}
				if out.Run.Status != api.StatusCancelled || out.Run.Member("login").Status != api.StatusPassed {
					t.Errorf("run %s, login %s: want cancelled with login passed", out.Run.Status, out.Run.Member("login").Status)
				}
			} else {
				if len(rec.cancels) != 0 {
					t.Errorf("cancelled with --cancel-on-interrupt=false: %v", rec.cancels)
				}
				if !strings.Contains(h.output(), "goes on (--cancel-on-interrupt=false); follow it with zof watch r-0001") {
					t.Errorf("console:\n%s", h.output())
				}
			}
		})
	}
}

func TestFollowDeadline(t *testing.T) {
	for _, cancelOnTimeout := range []bool{false, true} {
		t.Run(fmt.Sprintf("cancel-on-timeout=%v", cancelOnTimeout), func(t *testing.T) {
			b := reporttest.NewBuilder(t, testRequest())
			b.RunStatus(api.StatusRunning, "").Member("login", api.StatusRunning, 1, "")
			rec := newRecording(t, b.Events, len(b.Events))
			rec.onStop = func() []api.Event {
				for _, m := range []string{"login", "cart", "health"} {
					b.Member(m, api.StatusCancelled, 0, "timed out")
				}
				b.RunStatus(api.StatusCancelled, "timed out")
				return b.Events[len(b.Events)-4:]
			}
			// The server says what holds the run (a pool without agents).
			rec.getHook = func(_ int, w http.ResponseWriter, _ *http.Request) bool {
				snap := rec.snapshot()
				snap.Wait = &api.WaitReason{Kind: "agent", Message: "waiting for an agent of pool private: 0 online (never seen)"}
				writeTestJSON(w, http.StatusOK, snap)
				return true
			}
			h := newHarness(t, rec, time.Second)
			h.opts.Timeout = 100 * time.Millisecond
			h.opts.CancelOnTimeout = cancelOnTimeout
			out := h.follow(context.Background())
			if !strings.Contains(h.output(), "run r-0001 is waiting: waiting for an agent of pool private: 0 online (never seen)") {
				t.Errorf("console does not say why the run waits:\n%s", h.output())
			}
			if code := gate.Judge(out.Outcome, gate.AllOutcomes).Kind; code != gate.TimedOut {
				t.Errorf("code %d, want 4", code)
			}
			if got := len(rec.cancels) == 1; got != cancelOnTimeout {
				t.Errorf("cancels %v with --cancel-on-timeout=%v", rec.cancels, cancelOnTimeout)
			}
			if !cancelOnTimeout && !strings.Contains(h.output(), "run r-0001 is left running (http://127.0.0.1:") {
				t.Errorf("console does not say the run is left running:\n%s", h.output())
			}
		})
	}
}

// TestFollowUnreachable: a server that never answers fails the gate only at the deadline,
// and then with 69, not 4: nothing is known about the run.
func TestFollowUnreachable(t *testing.T) {
	rec := newRecording(t, nil, 0)
	h := newHarness(t, rec, time.Second)
	h.srv.Close()
	h.opts.Timeout = 300 * time.Millisecond
	start := time.Now()
	out := h.follow(context.Background())
	if time.Since(start) < h.opts.Timeout {
		t.Errorf("gave up after %s, before the deadline", time.Since(start))
	}
	v := gate.Judge(out.Outcome, gate.AllOutcomes)
	code, verdict := v.Kind, v.Line
	if ce := (*client.Error)(nil); code != gate.NoVerdict || !errors.As(v.Err, &ce) || ce.Kind != client.KindUnavailable || !strings.Contains(verdict, "connection refused") {
		t.Errorf("Judge = %s %q (%v), want no verdict, the service unavailable, naming the cause", code, verdict, v.Err)
	}
	if n := strings.Count(h.output(), "stream unavailable"); n != 1 {
		t.Errorf("told %d times about the stream:\n%s", n, h.output())
	}
}

// TestFollowTokenRevoked: a refusal is not transient: following ends at once with 77.
func TestFollowTokenRevoked(t *testing.T) {
	b := passingLog(t)
	rec := newRecording(t, b.Events, 4)
	rec.streamHook = func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n == 1 {
			return false
		}
		w.Header().Set("Content-Type", api.MediaProblem)
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"title":"Unauthorized","status":401}`)
		return true
	}
	h := newHarness(t, rec, time.Second)
	go func() {
		// Drop the stream once its 4 events are shown (the last: position 1).
		eventually.Wait(t, waitLimit, func() bool { return strings.Contains(h.output(), "In queue (position 1)") }, "the 4 visible events")
		h.srv.CloseClientConnections()
	}()
	out := h.follow(context.Background())
	v := gate.Judge(out.Outcome, gate.AllOutcomes)
	code, verdict := v.Kind, v.Line
	if ce := (*client.Error)(nil); code != gate.NoVerdict || !errors.As(v.Err, &ce) || ce.Kind != client.KindUnauthorized || !strings.Contains(verdict, "the server refused the token (401)") {
		t.Errorf("Judge = %s %q (%v), want no verdict, the token refused", code, verdict, v.Err)
	}
	if out.Run.LastSeq != 4 {
		t.Errorf("folded up to %d, want the 4 events before the refusal", out.Run.LastSeq)
	}
}

func TestSnapshotChanges(t *testing.T) {
	b := failingLog(t)
	at := reporttest.T0
	empty := &api.Run{}
	got := snapshotChanges(empty, b.Run, at)
	var lines []string
	for _, e := range got {
		lines = append(lines, fmt.Sprintf("%s %s %s", e.Type, e.Member, e.Status))
	}
	want := []string{"run.created  ", "member.status login passed", "member.status cart failed", "member.status health passed", "run.status  failed"}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if got := snapshotChanges(b.Run, b.Run, at); len(got) != 0 {
		t.Errorf("no change gave %v", got)
	}
}

// TestFollowResyncsOnBadEvent: an event that does not fit the fold (a server bug) is said
// plainly and the follower reads the snapshot instead of stalling.
func TestFollowResyncsOnBadEvent(t *testing.T) {
	b := passingLog(t)
	rec := newRecording(t, b.Events, len(b.Events))
	rec.streamHook = func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n > 1 {
			return false
		}
		w.Header().Set("Content-Type", api.MediaEventStream)
		for _, e := range b.Events[:3] {
			io.WriteString(w, sseFrame(e))
		}
		io.WriteString(w, sseFrame(api.Event{Seq: 4, Type: api.EventMemberStatus, RunID: reporttest.RunID, Member: "ghost", Status: api.StatusRunning}))
		return true
	}
	h := newHarness(t, rec, time.Second)
	out := h.follow(context.Background())
	if diff := cmp.Diff(b.Run, out.Run); diff != "" {
		t.Errorf("fold (-want +got):\n%s", diff)
	}
	if !strings.Contains(h.output(), "event log: event 4: unknown member ghost; reading the run's snapshot instead") {
		t.Errorf("console:\n%s", h.output())
	}
	if rec.gets != 1 {
		t.Errorf("%d snapshot reads, want 1", rec.gets)
	}
}

// TestFollowLeavesNoGoroutines: after follow returns, none of the follower's or the
// client's goroutines remain (streams closed, the source stopped), whatever the ending.
func TestFollowLeavesNoGoroutines(t *testing.T) {
	b := passingLog(t)
	for _, name := range []string{"verdict", "interrupt", "timeout"} {
		rec := newRecording(t, b.Events, 5)
		h := newHarness(t, rec, time.Second)
		h.opts.CancelOnInterrupt = false
		h.opts.Timeout = 100 * time.Millisecond
		ctx, cancel := context.WithCancel(context.Background())
		switch name {
		case "verdict":
			h.opts.Timeout = 5 * time.Second
			rec.publish(len(b.Events))
		case "interrupt":
			time.AfterFunc(20*time.Millisecond, cancel)
		}
		h.follow(ctx)
		cancel()
	}
	ours := regexp.MustCompile(`zof-ci/(runner\.\(\*remoteSource\)|runner\.follow|client\.)`)
	var stacks string
	if !eventually.Wait(t, waitLimit, func() bool {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		return !ours.MatchString(stacks)
	}, "the follower's and the client's goroutines to end") {
		t.Errorf("goroutines left behind:\n%s", stacks)
	}
}
