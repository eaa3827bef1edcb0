package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tmaxmax/go-sse"
	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/server"
	"github.com/zof-ai/zof-ci/internal/step"
)

// manySteps is a run of one case with n passing steps.
func manySteps(n int, names ...string) *api.RunRequest {
	var steps []api.Step
	for i := range n {
		name := fmt.Sprintf("s%d", i)
		if i < len(names) {
			name = names[i]
		}
		steps = append(steps, httpStep(name))
	}
	return runReq("shop", "staging", steps)
}

func TestStreamWholeRunThenEnd(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	run := h.create(tokAlphaRunner, manySteps(3, "wait:w"))
	st, r := h.stream(tokAlphaViewer, run.ID, "")
	for name, want := range map[string]string{"Content-Type": api.MediaEventStream, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
		if got := r.header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	h.steps.open("w")
	evs, end := st.events(t)
	all, err := h.eng.Events(context.Background(), "alpha", run.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(seqs(all), seqs(evs)); diff != "" {
		t.Errorf("seqs (-stored +streamed):\n%s", diff)
	}
	if diff := cmp.Diff(all, evs); diff != "" {
		t.Errorf("events differ from the stored log:\n%s", diff)
	}
	if end != (api.EndData{RunID: run.ID, Status: api.StatusPassed, LastSeq: all[len(all)-1].Seq}) {
		t.Errorf("end %+v", end)
	}
	// A finished run's stream is the whole log, then end, then close.
	again, _ := h.stream(tokAlphaViewer, run.ID, "")
	evs2, end2 := again.events(t)
	if diff := cmp.Diff(seqs(all), seqs(evs2)); diff != "" || end2 != end {
		t.Errorf("replayed stream (-want +got):\n%s end %+v", diff, end2)
	}
}

func TestStreamResumeExactlyOnce(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	run := h.create(tokAlphaRunner, manySteps(6, "s0", "s1", "wait:mid"))
	first, _ := h.stream(tokAlphaViewer, run.ID, "")
	// Read a few events, then drop the connection while the run goes on.
	var got []api.Event
	for len(got) < 4 {
		f, ok := first.next(t)
		if !ok {
			t.Fatal("stream ended early")
		}
		got = append(got, decodeEvent(t, f))
	}
	first.close()
	h.steps.open("mid")
	last := got[len(got)-1].Seq
	rest, end := func() ([]api.Event, api.EndData) {
		st, _ := h.stream(tokAlphaViewer, run.ID, "", api.HeaderLastEventID, fmt.Sprint(last))
		return st.events(t)
	}()
	got = append(got, rest...)
	all, _ := h.eng.Events(context.Background(), "alpha", run.ID, 0)
	if diff := cmp.Diff(seqs(all), seqs(got)); diff != "" {
		t.Fatalf("resumed seqs (-want +got):\n%s", diff)
	}
	if end.LastSeq != all[len(all)-1].Seq {
		t.Errorf("end %+v", end)
	}

	// ?after= does the same, and the header wins over it.
	for _, c := range []struct {
		query string
		hdr   []string
		from  int64
	}{
		{"?after=3", nil, 3},
		{"?after=0", nil, 0},
		{"?after=2", []string{api.HeaderLastEventID, "5"}, 5},
		{"?after=", nil, 0},
	} {
		st, _ := h.stream(tokAlphaViewer, run.ID, c.query, c.hdr...)
		evs, _ := st.events(t)
		if diff := cmp.Diff(seqRange(c.from+1, all[len(all)-1].Seq), seqs(evs)); diff != "" {
			t.Errorf("%s %v (-want +got):\n%s", c.query, c.hdr, diff)
		}
	}
}

// TestStreamWithIndependentParser reads the stream with go-sse's parser: the
// wire format is what any EventSource implementation reads.
func TestStreamWithIndependentParser(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	run := h.create(tokAlphaRunner, manySteps(2))
	h.waitStatus(tokAlphaRunner, run.ID, api.StatusPassed)
	req, _ := http.NewRequest("GET", h.url+"/v1/runs/"+run.ID+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+tokAlphaRunner)
	req.Header.Set(api.HeaderLastEventID, "2")
	res, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var types, ids []string
	for ev, err := range sse.Read(res.Body, &sse.ReadConfig{MaxEventSize: 1 << 20}) {
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, ev.Type)
		ids = append(ids, ev.LastEventID)
	}
	all, _ := h.eng.Events(context.Background(), "alpha", run.ID, 2)
	var wantTypes, wantIDs []string
	for _, e := range all {
		wantTypes = append(wantTypes, string(e.Type))
		wantIDs = append(wantIDs, fmt.Sprint(e.Seq))
	}
	wantTypes = append(wantTypes, api.EventEnd)
	wantIDs = append(wantIDs, wantIDs[len(wantIDs)-1]) // end has no id: the last one stays
	if diff := cmp.Diff(wantTypes, types); diff != "" {
		t.Errorf("types (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantIDs, ids); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
}

func TestStreamBadEventIDs(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	run := h.create(tokAlphaRunner, manySteps(1))
	done := h.waitStatus(tokAlphaRunner, run.ID, api.StatusPassed)
	tests := []struct {
		name, query string
		hdr         []string
		want        string
	}{
		{"not a number", "", []string{api.HeaderLastEventID, "abc"}, "not an event id"},
		{"negative", "?after=-1", nil, "negative"},
		{"fraction", "?after=1.5", nil, "not an event id"},
		{"plus sign", "", []string{api.HeaderLastEventID, "+3"}, "not an event id"},
		{"overflow", "?after=99999999999999999999", nil, "too large"},
		{"twice", "?after=1&after=2", nil, "more than once"},
		{"from the future", fmt.Sprintf("?after=%d", done.LastSeq+1), nil, fmt.Sprintf("events up to %d", done.LastSeq)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, r := h.stream(tokAlphaRunner, run.ID, tt.query, tt.hdr...)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			if p := r.problem(t); !strings.Contains(p.Detail, tt.want) {
				t.Errorf("detail %q does not contain %q", p.Detail, tt.want)
			}
		})
	}
}

func TestStreamKeepalive(t *testing.T) {
	h := newHarness(t, harnessOpts{configure: func(o *server.Options) { o.Keepalive = 30 * time.Millisecond }})
	run := h.create(tokAlphaRunner, manySteps(1, "wait:k"))
	defer h.steps.open("k")
	st, _ := h.stream(tokAlphaRunner, run.ID, "")
	keepalives := 0
	timeout := time.After(waitLimit)
	for keepalives < 3 {
		select {
		case f := <-st.frames:
			for _, c := range f.comments {
				if c == "keepalive" {
					keepalives++
				}
			}
		case <-timeout:
			t.Fatalf("%d keepalives within %s", keepalives, waitLimit)
		}
	}
}

// TestReadTimeoutDoesNotCutStreams: the whole-request read deadline, which
// protects against slow bodies, must not end a stream that outlives it.
func TestReadTimeoutDoesNotCutStreams(t *testing.T) {
	h := newHarness(t, harnessOpts{configure: func(o *server.Options) {
		o.ReadTimeout = 100 * time.Millisecond
		o.Keepalive = 50 * time.Millisecond
	}})
	run := h.create(tokAlphaRunner, manySteps(2, "wait:long"))
	st, _ := h.stream(tokAlphaRunner, run.ID, "")
	time.Sleep(400 * time.Millisecond) // four read timeouts
	h.steps.open("long")
	evs, end := st.events(t)
	if end.Status != api.StatusPassed || evs[len(evs)-1].Seq != end.LastSeq {
		t.Fatalf("end %+v after %d events", end, len(evs))
	}
}

// TestSlowClientDoesNotBlockTheEngine: a client that stops reading is
// disconnected once it is further behind than the engine's subscriber buffer;
// the run finishes regardless, other clients get everything, and the slow
// one resumes without losing events. The client's stall is the server's
// writes held on its connection (stalledStream), so the test does not depend
// on how much the kernel's socket buffers absorb.
func TestSlowClientDoesNotBlockTheEngine(t *testing.T) {
	const subBuffer = 4
	logs := &syncBuffer{}
	h := newHarness(t, harnessOpts{subBuffer: subBuffer, logs: logs})
	// Every step adds events: far more than the subscriber buffer holds.
	run := h.create(tokAlphaRunner, manySteps(20, "wait:go"))
	slow, stalled := h.stalledStream(tokAlphaRunner, run.ID)
	// The server goes to write the events stored so far and blocks: the
	// stream has subscribed, so the run's next events go to its subscriber buffer (had
	// it subscribed after the run ended, it would read the store instead and
	// never fall behind).
	select {
	case <-stalled.blocked:
	case <-time.After(waitLimit):
		t.Fatal("the server never wrote to the stalled client")
	}
	fast, _ := h.stream(tokAlphaRunner, run.ID, "")
	fastDone := make(chan []api.Event, 1)
	go func() { fastDone <- h.followAll(fast, run.ID) }()
	h.steps.open("go")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	final, err := h.eng.Wait(ctx, "alpha", run.ID)
	if err != nil || final.Status != api.StatusPassed {
		t.Fatalf("the run did not finish while a client was stalled: %v %v", final, err)
	}
	all, _ := h.eng.Events(context.Background(), "alpha", run.ID, 0)
	if len(all) <= 2*subBuffer {
		t.Fatalf("the run has %d events; the test needs well over the subscriber buffer of %d", len(all), subBuffer)
	}
	select {
	case evs := <-fastDone:
		if diff := cmp.Diff(seqs(all), seqs(evs)); diff != "" {
			t.Errorf("fast client (-want +got):\n%s", diff)
		}
	case <-time.After(waitLimit):
		t.Fatal("the fast client did not finish")
	}
	// The slow client reads again: a prefix, then the close (no end event),
	// because the engine dropped its subscription when the buffer overflowed.
	stalled.release()
	var got []api.Event
	for {
		f, ok := slow.next(t)
		if !ok {
			break
		}
		if f.event == api.EventEnd {
			t.Fatal("the stalled client got to the end: its subscription was not dropped")
		}
		got = append(got, decodeEvent(t, f))
	}
	if len(got) >= len(all) {
		t.Fatalf("the stalled client got all %d events; it should have been dropped", len(got))
	}
	if !strings.Contains(logs.String(), "client fell behind and was disconnected") {
		t.Errorf("no log of the drop:\n%s", logs.String())
	}
	// It resumes where it was and loses nothing.
	last := int64(0)
	if len(got) > 0 {
		last = got[len(got)-1].Seq
	}
	resumed, _ := h.stream(tokAlphaRunner, run.ID, "", api.HeaderLastEventID, fmt.Sprint(last))
	rest, end := resumed.events(t)
	got = append(got, rest...)
	if diff := cmp.Diff(seqs(all), seqs(got)); diff != "" {
		t.Errorf("slow client after resuming (-want +got):\n%s", diff)
	}
	if end.Status != api.StatusPassed {
		t.Errorf("end %+v", end)
	}
}

func TestStreamLimit(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	run := h.create(tokBetaRunner, manySteps(1, "wait:lim"))
	defer h.steps.open("lim")
	a, _ := h.stream(tokBetaRunner, run.ID, "")
	b, _ := h.stream(tokBetaRunner, run.ID, "")
	_, r := h.stream(tokBetaRunner, run.ID, "")
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("third stream: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	if p := r.problem(t); !strings.Contains(p.Detail, "max_streams") {
		t.Errorf("detail %q", p.Detail)
	}
	// Another tenant is not affected.
	alphaRun := h.create(tokAlphaRunner, manySteps(1))
	if st, r := h.stream(tokAlphaRunner, alphaRun.ID, ""); st == nil {
		t.Fatalf("alpha stream: %d", r.status)
	}
	waitUntil(t, "sse gauge at 2", func() bool { v, _ := h.metric(`zof_sse_clients{tenant="beta"}`); return v == "2" })
	a.close()
	b.close()
	// Closed streams are released: no leak.
	waitUntil(t, "sse gauge back to 0", func() bool { v, _ := h.metric(`zof_sse_clients{tenant="beta"}`); return v == "0" })
	if st, r := h.stream(tokBetaRunner, run.ID, ""); st == nil {
		t.Fatalf("stream after closing others: %d", r.status)
	}
}

func TestGracefulShutdownEndsStreams(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	run := h.create(tokAlphaRunner, manySteps(1, "wait:sd"))
	defer h.steps.open("sd")
	st, _ := h.stream(tokAlphaRunner, run.ID, "")
	if f, ok := st.next(t); !ok || f.id != "1" {
		t.Fatalf("first frame %+v", f)
	}
	start := time.Now()
	h.stop()
	var comments []string
	for f := range st.frames {
		comments = append(comments, f.comments...)
	}
	if err := <-h.served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	h.served <- nil // for the cleanup
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown took %s with a stream open", d)
	}
	if !slicesContains(comments, "server shutting down; reconnect with Last-Event-ID") {
		t.Errorf("comments %q", comments)
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(h.url, "http://"), time.Second); err == nil {
		t.Error("the listener still accepts after shutdown")
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestSlowloris: a connection that dribbles its headers is closed after ReadHeaderTimeout.
func TestSlowloris(t *testing.T) {
	h := newHarness(t, harnessOpts{configure: func(o *server.Options) { o.ReadHeaderTimeout = 150 * time.Millisecond }})
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	closed := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, conn)
		closed <- err
	}()
	start := time.Now()
	msg := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 200)
	for i := 0; i < len(msg); i++ {
		if _, err := conn.Write([]byte{msg[i]}); err != nil {
			break // closed by the server
		}
		select {
		case <-closed:
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("closed after %s", d)
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	select {
	case <-closed:
	case <-time.After(waitLimit):
		t.Fatal("the server kept a dribbling connection open")
	}
}

// TestStreamBeforeTheEngineLoadsTheRun: right after a restart the engine
// has not loaded stored runs yet; a stream must wait for the run, not end it.
func TestStreamBeforeTheEngineLoadsTheRun(t *testing.T) {
	h := newHarness(t, harnessOpts{noEngine: true})
	run := h.create(tokAlphaRunner, manySteps(2))
	st, _ := h.stream(tokAlphaRunner, run.ID, "")
	if f, ok := st.next(t); !ok || f.id != "1" {
		t.Fatalf("first frame %+v", f)
	}
	select {
	case f, ok := <-st.frames:
		if ok && (f.event != "" || f.id != "") {
			t.Fatalf("unexpected frame before the engine runs: %+v", f)
		}
		if !ok {
			t.Fatal("the stream ended before the run did")
		}
	case <-time.After(150 * time.Millisecond):
	}
	h.startEngine()
	evs, end := st.events(t)
	if end.Status != api.StatusPassed || evs[0].Seq != 2 {
		t.Fatalf("end %+v, first %d", end, evs[0].Seq)
	}
}

// TestRealExecutor runs an http step with the real step executor against a
// local target and follows it over the stream.
func TestRealExecutor(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer target.Close()
	h := newHarness(t, harnessOpts{steps: step.NewExecutor(step.ExecutorOptions{})})
	req := runReq("shop", "staging", []api.Step{{Name: "health", HTTP: &api.HTTPRequest{Path: "/health"},
		Expect: &api.Expect{JSON: []api.JSONAssert{{Path: "$.ok", Equals: []byte("true")}}}}})
	req.Environment.URL = target.URL
	run := h.create(tokAlphaRunner, req)
	st, _ := h.stream(tokAlphaRunner, run.ID, "")
	evs, end := st.events(t)
	if end.Status != api.StatusPassed {
		t.Fatalf("end %+v; events %+v", end, evs)
	}
	final := h.do("GET", "/v1/runs/"+run.ID, tokAlphaRunner, nil).run(t)
	if final.Members[0].Steps[0].Status != api.StepPassed {
		t.Errorf("step %+v", final.Members[0].Steps[0])
	}
}

func TestHealthAndReadiness(t *testing.T) {
	var storeDown atomic.Bool
	h := newHarness(t, harnessOpts{configure: func(o *server.Options) {
		o.Ready = func(context.Context) error {
			if storeDown.Load() {
				return fmt.Errorf("disk gone")
			}
			return nil
		}
	}})
	if r := h.do("GET", "/readyz", "", nil); r.status != 200 {
		t.Fatalf("readyz %d", r.status)
	}
	storeDown.Store(true)
	r := h.do("GET", "/readyz", "", nil)
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("readyz with a failing store: %d", r.status)
	}
	if p := r.problem(t); strings.Contains(p.Detail, "disk gone") {
		t.Errorf("internal error leaked: %q", p.Detail)
	}
	if r := h.do("GET", "/healthz", "", nil); r.status != 200 || !strings.Contains(string(r.body), "ok") {
		t.Fatalf("healthz %d %s", r.status, r.body)
	}
}
