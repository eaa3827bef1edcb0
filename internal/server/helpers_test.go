package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
	"github.com/zof-ai/zof-ci/internal/engine"
	"github.com/zof-ai/zof-ci/internal/engine/memstore"
	"github.com/zof-ai/zof-ci/internal/eventually"
	"github.com/zof-ai/zof-ci/internal/server"
	"github.com/zof-ai/zof-ci/internal/server/config"
	"github.com/zof-ai/zof-ci/internal/step"
)

// waitLimit bounds every wait in these tests; a correct server needs a fraction of it.
const waitLimit = 5 * time.Second

// Tokens of the test config (passed through the env lookup, as in production).
const (
	tokAlphaRunner = "alpha-runner-token-0123456789"
	tokAlphaViewer = "alpha-viewer-token-0123456789"
	tokAlphaAdmin  = "alpha-admin-token-01234567890"
	tokBetaRunner  = "beta-runner-token-01234567890"
	tokCmdRunner   = "cmd-runner-token-012345678901"
	tokMetrics     = "metrics-scraper-token-0123456"
)

var testEnv = map[string]string{
	"ALPHA_RUNNER": tokAlphaRunner,
	"ALPHA_VIEWER": tokAlphaViewer,
	"ALPHA_ADMIN":  tokAlphaAdmin,
	"BETA_RUNNER":  tokBetaRunner,
	"CMD_RUNNER":   tokCmdRunner,
	"METRICS":      tokMetrics,
}

const testConfig = `
listen: 127.0.0.1:0
public_url: http://zof.test
max_body: 1MiB
tenants:
  alpha:
    max_concurrent_runs: 2
    allowed_targets: ["http://127.0.0.1:*", "https://*.staging.example.com/api/**"]
    tokens:
      - {name: ci, role: runner, env: ALPHA_RUNNER}
      - {name: dashboard, role: viewer, env: ALPHA_VIEWER}
      - {name: ops, role: admin, env: ALPHA_ADMIN}
  beta:
    max_concurrent_runs: 1
    max_streams: 2
    allowed_targets: ["http://127.0.0.1:*"]
    tokens:
      - {name: ci, role: runner, env: BETA_RUNNER}
  cmd:
    allow_commands: true
    allowed_targets: ["http://127.0.0.1:*"]
    tokens:
      - {name: ci, role: runner, env: CMD_RUNNER}
`

func lookup(name string) (string, bool) {
	v, ok := testEnv[name]
	return v, ok
}

// gatedSteps is a StepRunner for tests that need to control timing: a step
// named "wait:KEY" blocks until the gate KEY opens (or the run is
// cancelled); "sleep:DURATION" takes that long; "out:N" passes with N bytes
// of output; every other step passes at once.
type gatedSteps struct {
	mu    sync.Mutex
	gates map[string]chan struct{}
}

var _ engine.StepRunner = (*gatedSteps)(nil)

func newGatedSteps() *gatedSteps { return &gatedSteps{gates: map[string]chan struct{}{}} }

func (g *gatedSteps) gate(key string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.gates[key]
	if !ok {
		c = make(chan struct{})
		g.gates[key] = c
	}
	return c
}

func (g *gatedSteps) open(key string) { close(g.gate(key)) }

func (g *gatedSteps) Run(ctx context.Context, s api.Step, _ step.Input) step.Output {
	if key, ok := strings.CutPrefix(s.Name, "wait:"); ok {
		select {
		case <-g.gate(key):
		case <-ctx.Done():
			return step.Output{Status: api.StepCancelled, Failure: &api.Failure{Message: "cancelled"}}
		}
	}
	if d, ok := strings.CutPrefix(s.Name, "sleep:"); ok {
		dur, _ := time.ParseDuration(d)
		select {
		case <-time.After(dur):
		case <-ctx.Done():
			return step.Output{Status: api.StepCancelled, Failure: &api.Failure{Message: "cancelled"}}
		}
	}
	var n int
	if _, err := fmt.Sscanf(s.Name, "out:%d", &n); err == nil {
		return step.Output{Status: api.StepPassed, Output: strings.Repeat("x", n)}
	}
	return step.Output{Status: api.StepPassed}
}

// syncBuffer is an audit writer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harnessOpts struct {
	config     string
	steps      engine.StepRunner
	noEngine   bool // do not start engine.Run (runs stay initial)
	subBuffer  int
	now        func() time.Time
	configure  func(*server.Options)
	logs       io.Writer
	blockAfter time.Duration
	// engineConfig changes the engine's config before it is built.
	engineConfig func(*engine.Config)
}

// harness is a real server on a loopback listener over a real engine.
type harness struct {
	t   testing.TB
	url string
	// metricsURL is the metrics listener's (ServeMetrics).
	metricsURL string
	srv        *server.Server
	eng        *engine.Engine
	cfg        *config.Config
	steps      *gatedSteps
	audit      *syncBuffer
	client     *http.Client

	stop          context.CancelFunc
	served        chan error
	metricsServed chan error
	stopEngine    context.CancelFunc
	engineDone    chan struct{}
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	if o.config == "" {
		o.config = testConfig
	}
	cfg, err := config.Parse([]byte(o.config), "server.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, cfg: cfg, audit: &syncBuffer{}}
	if o.steps == nil {
		h.steps = newGatedSteps()
		o.steps = h.steps
	}
	blockAfter := cfg.BlockAfter
	if o.blockAfter > 0 {
		blockAfter = o.blockAfter
	}
	ecfg := engine.Config{
		Store:             memstore.New(),
		Steps:             o.steps,
		TenantLimit:       cfg.TenantLimit,
		RunURL:            cfg.RunURL,
		BlockAfter:        blockAfter,
		LeaveQueuedOnStop: true,
		SubscriberBuffer:  o.subBuffer,
		Now:               o.now,
	}
	if o.engineConfig != nil {
		o.engineConfig(&ecfg)
	}
	eng, err := engine.New(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	h.eng = eng
	engCtx, stopEngine := context.WithCancel(context.Background())
	h.stopEngine = stopEngine
	h.engineDone = make(chan struct{})
	if o.noEngine {
		close(h.engineDone)
	} else {
		go func() { defer close(h.engineDone); _ = eng.Run(engCtx) }()
	}
	logs := o.logs
	if logs == nil {
		logs = io.Discard
	}
	opts := server.Options{
		Config:    cfg,
		Engine:    eng,
		Logger:    slog.New(slog.NewTextHandler(logs, nil)),
		Audit:     h.audit,
		Keepalive: time.Second,
	}
	if o.configure != nil {
		o.configure(&opts)
	}
	srv, err := server.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &stallListener{Listener: tcp}
	h.url = "http://" + ln.Addr().String()
	ctx, stop := context.WithCancel(context.Background())
	h.stop = stop
	h.served = make(chan error, 1)
	go func() { h.served <- srv.Serve(ctx, ln) }()
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.metricsURL = "http://" + mln.Addr().String()
	h.metricsServed = make(chan error, 1)
	go func() { h.metricsServed <- srv.ServeMetrics(ctx, mln) }()
	h.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	t.Cleanup(h.close)
	return h
}

// startEngine starts engine.Run for a harness made with noEngine.
func (h *harness) startEngine() {
	ctx, stop := context.WithCancel(context.Background())
	h.stopEngine = stop
	h.engineDone = make(chan struct{})
	go func() { defer close(h.engineDone); _ = h.eng.Run(ctx) }()
}

// close shuts the server down and then the engine, the order zof serve uses.
func (h *harness) close() {
	// Connections dialed but never used count as active for 5 s in
	// http.Server.Shutdown; close them as a real client process would.
	h.client.CloseIdleConnections()
	h.stop()
	select {
	case err := <-h.served:
		if err != nil && h.t != nil {
			h.t.Errorf("Serve: %v", err)
		}
	case <-time.After(waitLimit):
		if h.t != nil {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			h.t.Errorf("Serve did not return after its context ended\n%s", buf[:n])
		}
	}
	select {
	case err := <-h.metricsServed:
		if err != nil && h.t != nil {
			h.t.Errorf("ServeMetrics: %v", err)
		}
	case <-time.After(waitLimit):
		if h.t != nil {
			h.t.Error("ServeMetrics did not return after its context ended")
		}
	}
	h.stopEngine()
	<-h.engineDone
	h.client.CloseIdleConnections()
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) problem(t testing.TB) api.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != api.MediaProblem {
		t.Fatalf("Content-Type = %q, want %s (status %d, body %s)", ct, api.MediaProblem, r.status, r.body)
	}
	var p api.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body %s: %v", r.body, err)
	}
	if p.Status != r.status || p.Type == "" || p.Title == "" || p.Detail == "" {
		t.Fatalf("incomplete problem for status %d: %+v", r.status, p)
	}
	return p
}

func (r resp) run(t testing.TB) *api.Run {
	t.Helper()
	var run api.Run
	if err := json.Unmarshal(r.body, &run); err != nil || run.ID == "" {
		t.Fatalf("run body (status %d) %s: %v", r.status, r.body, err)
	}
	return &run
}

// do sends a request; body is JSON-encoded unless it is a string or []byte.
func (h *harness) do(method, path, token string, body any, hdr ...string) resp {
	h.t.Helper()
	r, err := h.try(method, path, token, body, hdr...)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func (h *harness) try(method, path, token string, body any, hdr ...string) (resp, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return resp{}, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		return resp{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		switch {
		case hdr[i+1] == "":
			req.Header.Del(hdr[i])
		case req.Header.Get(hdr[i]) != "" && hdr[i] != api.HeaderIdempotencyKey:
			req.Header.Set(hdr[i], hdr[i+1])
		default:
			req.Header.Add(hdr[i], hdr[i+1])
		}
	}
	res, err := h.client.Do(req)
	if err != nil {
		return resp{}, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: data}, err
}

// create submits a run and requires 201.
func (h *harness) create(token string, req *api.RunRequest, hdr ...string) *api.Run {
	h.t.Helper()
	r := h.do("POST", "/v1/runs", token, req, hdr...)
	if r.status != http.StatusCreated {
		h.t.Fatalf("create: status %d, body %s", r.status, r.body)
	}
	return r.run(h.t)
}

// waitStatus polls until the run has the status.
func (h *harness) waitStatus(token, id string, want api.Status) *api.Run {
	h.t.Helper()
	var run *api.Run
	if !eventually.Wait(h.t, waitLimit, func() bool {
		run = h.do("GET", "/v1/runs/"+id, token, nil).run(h.t)
		return run.Status == want
	}, fmt.Sprintf("run %s to be %s", id, want)) {
		h.t.Fatalf("run %s is still %s", id, run.Status)
	}
	return run
}

// runReq builds a run request of one case per step list.
func runReq(project, env string, cases ...[]api.Step) *api.RunRequest {
	req := &api.RunRequest{
		Project:     project,
		Environment: api.Environment{Name: env, URL: "http://127.0.0.1:9"},
		Selection:   api.Selection{Scope: "all", Effective: "all"},
		Source:      api.Source{Provider: "local", Trigger: "api"},
	}
	for i, steps := range cases {
		req.Cases = append(req.Cases, api.Case{ID: fmt.Sprintf("case-%d", i+1), Steps: steps})
	}
	return req
}

// httpStep is an http step against the environment; its name drives gatedSteps.
func httpStep(name string) api.Step {
	return api.Step{Name: name, HTTP: &api.HTTPRequest{Method: "GET", Path: "/health"}}
}

// frame is one SSE frame as written on the wire.
type frame struct {
	id, event, data string
	comments        []string
}

// sseConn is an open event stream read frame by frame.
type sseConn struct {
	res    *http.Response
	frames chan frame
	done   chan error // the read error at the end (nil: EOF)
}

// stream opens GET /v1/runs/{id}/events; hdr are header name/value pairs.
func (h *harness) stream(token, id, query string, hdr ...string) (*sseConn, resp) {
	h.t.Helper()
	req, err := http.NewRequest("GET", h.url+"/v1/runs/"+id+"/events"+query, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Accept", api.MediaEventStream)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		defer res.Body.Close()
		data, _ := io.ReadAll(res.Body)
		return nil, resp{status: res.StatusCode, header: res.Header, body: data}
	}
	c := &sseConn{res: res, frames: make(chan frame, 4096), done: make(chan error, 1)}
	go c.read()
	h.t.Cleanup(func() { res.Body.Close() })
	return c, resp{status: res.StatusCode, header: res.Header}
}

func (c *sseConn) read() {
	sc := bufio.NewScanner(c.res.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var f frame
	empty := true
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if !empty {
				c.frames <- f
			}
			f, empty = frame{}, true
			continue
		case strings.HasPrefix(line, ":"):
			f.comments = append(f.comments, strings.TrimSpace(line[1:]))
		case strings.HasPrefix(line, "id: "):
			f.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			f.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			f.data = line[6:]
		default:
			f.data = "UNEXPECTED LINE " + line
		}
		empty = false
	}
	close(c.frames)
	c.done <- sc.Err()
}

func (c *sseConn) close() { c.res.Body.Close() }

// next returns the next frame that is not only a comment.
func (c *sseConn) next(t testing.TB) (frame, bool) {
	t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return frame{}, false
			}
			if f.event == "" && f.id == "" && f.data == "" {
				continue
			}
			return f, true
		case <-timer.C:
			t.Fatal("no event within the wait limit")
		}
	}
}

// events reads events until `end` and the close; it returns the events and the end data.
func (c *sseConn) events(t testing.TB) ([]api.Event, api.EndData) {
	t.Helper()
	var evs []api.Event
	for {
		f, ok := c.next(t)
		if !ok {
			t.Fatalf("stream closed without an end event after %d events", len(evs))
		}
		if f.event == api.EventEnd {
			var end api.EndData
			if err := json.Unmarshal([]byte(f.data), &end); err != nil {
				t.Fatalf("end data %q: %v", f.data, err)
			}
			if f.id != "" {
				t.Errorf("end event has id %q; it must not move Last-Event-ID", f.id)
			}
			if _, ok := c.next(t); ok {
				t.Fatal("data after the end event")
			}
			return evs, end
		}
		evs = append(evs, decodeEvent(t, f))
	}
}

func decodeEvent(t testing.TB, f frame) api.Event {
	t.Helper()
	var ev api.Event
	if err := json.Unmarshal([]byte(f.data), &ev); err != nil {
		t.Fatalf("event data %q: %v", f.data, err)
	}
	if f.id != fmt.Sprint(ev.Seq) || f.event != string(ev.Type) {
		t.Fatalf("frame id %q event %q do not match the data's seq %d type %s", f.id, f.event, ev.Seq, ev.Type)
	}
	return ev
}

func seqs(evs []api.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

func seqRange(from, to int64) []int64 {
	var out []int64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// auditEntries parses the audit log.
func (h *harness) auditEntries() []server.AuditEntry {
	h.t.Helper()
	var out []server.AuditEntry
	for _, line := range strings.Split(strings.TrimSpace(h.audit.String()), "\n") {
		if line == "" {
			continue
		}
		var e server.AuditEntry
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			h.t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

// metrics is GET /metrics on the metrics listener.
func (h *harness) metrics() []byte {
	h.t.Helper()
	res, err := h.client.Get(h.metricsURL + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		h.t.Fatalf("GET /metrics on the metrics listener: %d %v: %s", res.StatusCode, err, b)
	}
	return b
}

// metric returns the value of a sample line "name{labels} value" in /metrics.
func (h *harness) metric(sample string) (string, bool) {
	h.t.Helper()
	for _, line := range strings.Split(string(h.metrics()), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v, true
		}
	}
	return "", false
}

// waitUntil retries cond until it holds or the wait limit passes.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	eventually.Must(t, waitLimit, cond, what)
}

// followAll reads a stream to its end like a real client: when the server
// drops it, it reconnects with Last-Event-ID. Safe to call from a goroutine
// (it reports problems by returning what it got).
func (h *harness) followAll(st *sseConn, id string) []api.Event {
	var evs []api.Event
	for range 100 {
		for f := range st.frames {
			if f.event == api.EventEnd {
				return evs
			}
			if f.id == "" {
				continue
			}
			var ev api.Event
			if json.Unmarshal([]byte(f.data), &ev) != nil {
				return evs
			}
			evs = append(evs, ev)
		}
		last := "0"
		if len(evs) > 0 {
			last = fmt.Sprint(evs[len(evs)-1].Seq)
		}
		req, _ := http.NewRequest("GET", h.url+"/v1/runs/"+id+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+tokAlphaRunner)
		req.Header.Set(api.HeaderLastEventID, last)
		res, err := h.client.Do(req)
		if err != nil || res.StatusCode != http.StatusOK {
			return evs
		}
		st = &sseConn{res: res, frames: make(chan frame, 4096), done: make(chan error, 1)}
		go st.read()
	}
	return evs
}

// stallListener is the harness's listener: it can hold the server's writes
// of events on a connection, which is what a client that stops reading
// causes once the kernel's socket buffers are full, without depending on
// their size. A connection is held from the request carrying stallHeader on.
type stallListener struct {
	net.Listener
}

// stallHeader in a request makes its connection hold event writes (stalledStream).
const stallHeader = "X-Zof-Test-Stall"

func (l *stallListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &stallConn{Conn: c}, nil
}

// stallConn, once armed by a request with stallHeader, makes every write
// that carries an SSE event wait until released; the response's headers and
// comments pass, so the client sees the stream open.
type stallConn struct {
	net.Conn
	held atomic.Pointer[stall]
}

// stalls are the armed connections, by the value of their stallHeader.
var stalls = struct {
	sync.Mutex
	m map[string]*stall
}{m: map[string]*stall{}}

// stall is one held connection's state.
type stall struct {
	once     sync.Once
	released chan struct{}
	blocked  chan struct{} // closed when the server first waits to write an event
	blockOne sync.Once
}

func (s *stall) release() { s.once.Do(func() { close(s.released) }) }

func (c *stallConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if i := bytes.Index(b[:n], []byte(stallHeader+": ")); i >= 0 {
		key, _, _ := strings.Cut(string(b[i+len(stallHeader)+2:n]), "\r\n")
		stalls.Lock()
		if st := stalls.m[key]; st != nil {
			c.held.Store(st)
		}
		stalls.Unlock()
	}
	return n, err
}

func (c *stallConn) Write(b []byte) (int, error) {
	if st := c.held.Load(); st != nil && bytes.Contains(b, []byte("\nevent: ")) {
		st.blockOne.Do(func() { close(st.blocked) })
		<-st.released
	}
	return c.Conn.Write(b)
}

// stalledStream opens an event stream whose connection holds the server's
// event writes: the server sees a client that reads nothing. The returned
// stall's blocked is closed once the server waits to write; release lets
// the writes through.
func (h *harness) stalledStream(token, id string) (*sseConn, *stall) {
	h.t.Helper()
	key := fmt.Sprintf("%p", h) + "/" + id
	st := &stall{released: make(chan struct{}), blocked: make(chan struct{})}
	stalls.Lock()
	stalls.m[key] = st
	stalls.Unlock()
	h.t.Cleanup(func() {
		st.release()
		stalls.Lock()
		delete(stalls.m, key)
		stalls.Unlock()
	})
	c, _ := h.stream(token, id, "", stallHeader, key)
	if c == nil {
		h.t.Fatal("the stalled stream was refused")
	}
	return c, st
}
